/**
 * `matrix.json`: which record belongs to which experiment of the profile, so
 * the report can keep the pitfall experiments (Adam epsilon, accumulation) out
 * of the main comparison and draw them in their own figures.
 *
 * @module
 */

import { writeAtomic } from "../record/atomic.ts";
import type { Cell, Cuts, Profile } from "./profiles.ts";
import { MATRIX_SCHEMA } from "../record/schema.ts";

/**
 * Writes `<dir>/matrix.json` for `cells` (with their record ids, in the same order) and the cuts that made
 * the profile smaller than it is defined (`{}` when none).
 */
export async function writeMatrix(
  dir: string,
  p: Profile,
  cells: readonly Cell[],
  ids: readonly string[],
  cuts: Cuts = {},
): Promise<void> {
  const experiments = p.experiments.map((e, ei) => ({
    name: e.name,
    kind: e.kind,
    description: e.description,
    cells: cells.flatMap((c, k) =>
      c.experiment === ei ? [{ id: ids[k], variant: c.variant, precision: c.precision, seed: c.seed }] : []
    ),
  }));
  await writeAtomic(
    `${dir}/matrix.json`,
    JSON.stringify({ schema: MATRIX_SCHEMA, profile: p.name, cuts, experiments }, null, 2) + "\n",
  );
}
