/**
 * The in-memory form of a dataset that training consumes.
 *
 * @module
 */

/** One split: images [N, C, H, W] flattened, labels [N]. */
export interface Split {
  readonly x: Float32Array;
  readonly y: Uint8Array;
  readonly count: number;
}

/** A loaded, normalised dataset. */
export interface Dataset {
  readonly name: string;
  readonly classes: number;
  /** One example's shape [C, H, W]. */
  readonly shape: readonly [number, number, number];
  readonly train: Split;
  readonly test: Split;
  /** Where the data came from, for the run record (source, checksum, split rule, normalisation). */
  readonly provenance: Readonly<Record<string, string | number | boolean>>;
}

/** Normalises both splits with one global mean and std of the training pixels: (x - mean) / (std + 1e-7), PAPER.md. */
export function normalizeGlobal(train: Float32Array, test: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (let i = 0; i < train.length; i++) s += train[i];
  const mean = s / train.length;
  let q = 0;
  for (let i = 0; i < train.length; i++) q += (train[i] - mean) * (train[i] - mean);
  const std = Math.sqrt(q / train.length);
  for (const a of [train, test]) for (let i = 0; i < a.length; i++) a[i] = (a[i] - mean) / (std + 1e-7);
  return { mean, std };
}

/** Raw examples of one split before normalisation: pixels in [0, 1] after `scale`. */
export interface RawSplit {
  readonly pixels: Uint8Array | Float32Array;
  readonly labels: Uint8Array;
}

/** Split-size limits (the first N examples of each split). */
export interface Limits {
  readonly train?: number;
  readonly test?: number;
}

function take(split: RawSplit, per: number, scale: number, limit: number | undefined): Split {
  const total = split.labels.length;
  const count = Math.min(total, limit ?? total);
  const x = new Float32Array(count * per);
  for (let i = 0; i < x.length; i++) x[i] = split.pixels[i] * scale;
  return { x, y: split.labels.slice(0, count), count };
}

/**
 * Builds a normalised {@linkcode Dataset} from raw splits: the first `limits`
 * examples of each, pixels times `scale`, then one global mean/std from the
 * training split (PAPER.md). Provenance gets the normalisation constants.
 */
export function buildDataset(
  name: string,
  classes: number,
  shape: readonly [number, number, number],
  raw: { train: RawSplit; test: RawSplit },
  scale: number,
  limits: Limits,
  provenance: Record<string, string | number | boolean>,
): Dataset {
  const per = shape[0] * shape[1] * shape[2];
  const train = take(raw.train, per, scale, limits.train), test = take(raw.test, per, scale, limits.test);
  const { mean, std } = normalizeGlobal(train.x, test.x);
  return {
    name,
    classes,
    shape,
    train,
    test,
    provenance: { ...provenance, trainCount: train.count, testCount: test.count, mean, std },
  };
}
