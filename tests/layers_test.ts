/**
 * Every layer the paper's CIFAR-10 zoo needs, composed into one small
 * network (conv, batch norm, depthwise conv, max/average pooling with a
 * residual add, channel padding, global average pooling, 3-D dense,
 * multi-head self-attention, layer norm, GELU, dropout): its whole-model
 * gradient matches float64 central finite differences, and it trains in the
 * 16-bit policies without going non-finite.
 */

import assert from "node:assert/strict";
import type { Dataset } from "../datasets/dataset.ts";
import { createEngine } from "../kernels/ref/mod.ts";
import {
  activation,
  batchNorm,
  conv2d,
  dense,
  dropout,
  flatten,
  globalAvgPool,
  layerNorm,
  pool,
  selfAttention,
} from "../lib/model/layers.ts";
import type { ModelDef } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { Rng } from "../lib/random.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { train } from "../lib/train/train.ts";
import { checkModelGradient } from "./support/model_grad.ts";

const ZOO_PARTS: ModelDef = {
  name: "zoo-parts",
  description: "every zoo layer in one small network",
  build(b, x, o) {
    let h = conv2d(b, x, 8, 3, { padding: "same", activation: "relu" });
    h = batchNorm(b, h);
    h = activation(b, conv2d(b, h, 8, 3, { depthwise: true, padding: "same" }), "relu");
    const main = pool(b, h, "max", 3, 2, "same"), shortcut = pool(b, h, "avg", 2, 2);
    h = b.op("pad_channels", [b.op("add", [main, shortcut])], { before: 2, after: 2 }); // [N, 12, 4, 4]
    const pooled = globalAvgPool(b, h);
    const [n, c, hh, ww] = b.shape(h);
    let t = b.op("transpose", [b.op("reshape", [h], { shape: [n, c, hh * ww] })], { perm: [0, 2, 1] }); // [N, 16, 12]
    t = dense(b, t, 12);
    t = layerNorm(b, b.op("add", [t, selfAttention(b, t, 2, 4)]), 1e-6);
    t = b.op("add", [t, dense(b, dense(b, t, 16, "gelu"), 12)]);
    const f = dropout(b, flatten(b, t), 0.3);
    return b.op("add", [dense(b, f, o.classes), dense(b, pooled, o.classes)]);
  },
};

Deno.test("a network of every zoo layer: whole-model gradient equals float64 finite differences", () => {
  const r = checkModelGradient({ model: ZOO_PARTS, input: [4, 3, 8, 8], labels: [0, 3, 1, 4], classes: 5 });
  assert.ok(r.checked >= 3 * 20, `checked ${r.checked} parameter elements`);
  console.log(
    `zoo-parts gradient: ${r.checked} elements of ${r.params} parameters, worst relative error ${
      r.worst.toExponential(2)
    }`,
  );
});

Deno.test("the zoo-layer network trains in fp32, fp16 (with bn=fp32) and mixed without going non-finite", async () => {
  const rng = new Rng(11, "layers-data");
  const make = (n: number) => ({
    x: Float32Array.from({ length: n * 192 }, () => rng.uniform() * 2 - 1),
    y: Uint8Array.from({ length: n }, () => rng.below(5)),
    count: n,
  });
  const data: Dataset = {
    name: "noise",
    classes: 5,
    shape: [3, 8, 8],
    train: make(64),
    test: make(16),
    provenance: {},
  };
  for (const precision of ["fp32", "fp16,bn=fp32", "mixed"]) {
    const r = await train({
      model: ZOO_PARTS,
      modelOptions: { classes: 5, hidden: [] },
      policy: parsePolicy(precision),
      optimizer: PAPER_SGD,
      batch: 16,
      epochs: 3,
      seed: 1,
      data,
      engine: createEngine(),
    });
    assert.equal(r.divergence, null, precision);
    assert.ok(r.epochs.every((e) => Number.isFinite(e.trainLoss)), precision);
    assert.ok(
      r.epochs[2].trainLoss < r.epochs[0].trainLoss,
      `${precision}: ${r.epochs.map((e) => e.trainLoss)}`,
    );
  }
});
