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
