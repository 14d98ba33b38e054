/**
 * Known datasets by name. Each loader returns a normalised {@linkcode Dataset}.
 *
 * @module
 */

import type { Dataset } from "./dataset.ts";
import { synthetic } from "./synthetic.ts";

/** A dataset loader; `limits` optionally caps the split sizes. */
export type Loader = (limits: { train?: number; test?: number }) => Promise<Dataset>;

const LOADERS: Record<string, { description: string; load: Loader }> = {
  synthetic: {
    description: "seeded synthetic 10-class 28x28 task (tests and smoke runs only)",
    load: (l) => Promise.resolve(synthetic({ train: l.train, test: l.test })),
  },
};

/** Names of the known datasets. */
export const DATASET_NAMES: readonly string[] = Object.keys(LOADERS);

/** Loads a dataset by name, or throws an error listing the known names. */
export async function loadDataset(
  name: string,
  limits: { train?: number; test?: number } = {},
): Promise<Dataset> {
  const l = LOADERS[name];
  if (!l) throw new RangeError(`Unknown dataset "${name}": expected one of ${DATASET_NAMES.join(", ")}`);
  return await l.load(limits);
}

/** One-line description of a dataset. */
export function describeDataset(name: string): string {
  return LOADERS[name]?.description ?? "";
}
