/**
 * Batch norm's moving variance as Keras computes it: on 4-D input (Keras's fused kernel) the moving average
 * takes the Bessel-corrected batch variance, var * n / (n - 1) with n = N*H*W; on 2-D input (tf.nn.moments)
 * the biased one. One training step of a batch norm on the data itself, whose statistics training cannot
 * change, checked against the formula in float64 on the ref engine, in fp32 and in standalone fp16 with
 * fp32 batch-norm statistics (`fp16`, which keeps them fp32 as stock Keras does).
 */

import assert from "node:assert/strict";
import type { Dataset } from "../datasets/dataset.ts";
import { createEngine } from "../kernels/ref/mod.ts";
import { batchNorm, dense, flatten, movingVarianceFactor } from "../lib/model/layers.ts";
import type { ModelDef } from "../lib/model/zoo.ts";
import { roundFp16 } from "../lib/formats/format.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { Rng } from "../lib/random.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { train } from "../lib/train/train.ts";

const [N, C, H, W] = [4, 2, 3, 3];

/** Batch norm straight on the input (4-D) or on its flattened form (2-D), then logits. */
const bnOnInput = (rank: 2 | 4): ModelDef => ({
  name: `bn-on-input-${rank}d`,
  description: "batch norm of the data, then dense logits",
  build: (b, x, o) => dense(b, flatten(b, batchNorm(b, rank === 4 ? x : flatten(b, x))), o.classes),
});

const rng = new Rng(5, "bn-variance");
const x = Float32Array.from({ length: N * C * H * W }, () => rng.uniform() * 4 - 1);
const data: Dataset = {
  name: "noise",
  classes: 3,
  shape: [C, H, W],
  train: { x, y: Uint8Array.from([0, 1, 2, 0]), count: N },
  test: { x, y: Uint8Array.from([0, 1, 2, 0]), count: N },
  provenance: {},
};

/** Biased variance of `count` values. */
function biasedVariance(values: (i: number) => number, count: number): number {
  const xs = Array.from({ length: count }, (_, i) => values(i));
  const m = xs.reduce((s, v) => s + v, 0) / count;
  return xs.reduce((s, v) => s + (v - m) ** 2, 0) / count;
}

Deno.test("movingVarianceFactor: n / (n - 1) over N*H*W for 4-D input, 1 for other ranks and for n = 1", () => {
  assert.equal(movingVarianceFactor([4, 2, 3, 3]), 36 / 35);
  assert.equal(movingVarianceFactor([1, 8, 1, 1]), 1);
  assert.equal(movingVarianceFactor([256, 4096]), 1);
});

for (const precision of ["fp32", "fp16"]) {
  Deno.test(`${precision}: one step moves the 4-D moving variance toward var * n/(n-1), the 2-D one toward var`, async () => {
    for (const rank of [4, 2] as const) {
      const r = await train({
        model: bnOnInput(rank),
        modelOptions: { classes: 3, hidden: [] },
        policy: parsePolicy(precision),
        optimizer: PAPER_SGD,
        batch: N,
        epochs: 1,
        seed: 1,
        data,
        engine: createEngine(),
      });
      const mv = r.weights["batch_normalization/moving_variance"];
      assert.equal(mv.format, "fp32", "batch-norm statistics stay fp32");
      const features = rank === 4 ? C : C * H * W;
      for (let f = 0; f < features; f++) {
        const at = rank === 4
          ? (i: number) => x[Math.floor(i / (H * W)) * C * H * W + f * H * W + (i % (H * W))]
          : (i: number) => x[i * C * H * W + f];
        const count = rank === 4 ? N * H * W : N;
        // The data as the step saw it, in the compute format.
        const v = biasedVariance((i) => (precision.startsWith("fp16") ? roundFp16(at(i)) : at(i)), count);
        const corrected = rank === 4 ? v * count / (count - 1) : v;
        const want = 1 - (1 - corrected) * 0.01;
        const got = Number(mv.data[f]);
        // The correction moves the value by 0.01 * v / (n - 1), far above fp32 rounding here.
        assert.ok(Math.abs(got - want) < 2e-6, `${rank}-D feature ${f}: ${got} vs ${want}`);
        if (rank === 4) assert.ok(Math.abs(got - (1 - (1 - v) * 0.01)) > 1e-5, "uncorrected value differs");
      }
    }
  });
}
