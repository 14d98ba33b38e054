/**
 * A seeded synthetic image task for tests and smoke runs (never for
 * reports): 10 classes of 1x28x28 images. Each class has a prototype, a
 * random 7x7 field upsampled to 28x28; an example is its class prototype plus
 * per-pixel noise (approximately normal, std `noise`, the sum of four
 * uniforms). With noise 1.5 a 784-128-10 MLP reaches about 88% test accuracy
 * after 3 epochs on 2000 examples (fp32, SGD 0.01, momentum 0.9), so
 * precision effects are visible and chance (10%) is far away.
 *
 * @module
 */

import { Rng } from "../lib/random.ts";
import { type Dataset, normalizeGlobal, type Split } from "./dataset.ts";

/** Options of the synthetic task. */
export interface SyntheticOptions {
  readonly train?: number;
  readonly test?: number;
  readonly noise?: number;
  readonly seed?: number;
}

const SIDE = 28, CELL = 4, CLASSES = 10;

/** Generates the synthetic dataset (deterministic for the same options). */
export function synthetic(o: SyntheticOptions = {}): Dataset {
  const nTrain = o.train ?? 2000, nTest = o.test ?? 500, noise = o.noise ?? 1.5, seed = o.seed ?? 1;
  const proto = new Float64Array(CLASSES * SIDE * SIDE);
  const pr = new Rng(seed, "synthetic/prototypes");
  const cells = SIDE / CELL;
  for (let c = 0; c < CLASSES; c++) {
    const field = Array.from({ length: cells * cells }, () => pr.uniform());
    for (let i = 0; i < SIDE; i++) {
      for (let j = 0; j < SIDE; j++) {
        proto[(c * SIDE + i) * SIDE + j] = field[Math.floor(i / CELL) * cells + Math.floor(j / CELL)];
      }
    }
  }
  const make = (n: number, stream: string): Split => {
    const r = new Rng(seed, stream);
    const x = new Float32Array(n * SIDE * SIDE), y = new Uint8Array(n);
    for (let k = 0; k < n; k++) {
      const c = r.below(CLASSES);
      y[k] = c;
      for (let p = 0; p < SIDE * SIDE; p++) {
        const z = (r.uniform() + r.uniform() + r.uniform() + r.uniform() - 2) * Math.sqrt(3);
        x[k * SIDE * SIDE + p] = proto[c * SIDE * SIDE + p] + noise * z;
      }
    }
    return { x, y, count: n };
  };
  const train = make(nTrain, "synthetic/train"), test = make(nTest, "synthetic/test");
  const { mean, std } = normalizeGlobal(train.x, test.x);
  return {
    name: "synthetic",
    classes: CLASSES,
    shape: [1, SIDE, SIDE],
    train,
    test,
    provenance: {
      source: "generated",
      synthetic: true,
      rule: `10 classes, 7x7 prototype fields upsampled to 28x28 plus noise ${noise}; seed ${seed}`,
      mean,
      std,
    },
  };
}
