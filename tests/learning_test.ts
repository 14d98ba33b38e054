/**
 * The acceptance check for the training core: a 784-128-10 MLP learns
 * the documented synthetic task (datasets/synthetic.ts) in fp32, standalone
 * fp16 and mixed precision, and fp16 ends within a few points of fp32.
 */

import assert from "node:assert/strict";
import { synthetic } from "../datasets/synthetic.ts";
import { createEngine } from "../kernels/ref/mod.ts";
import { modelByName } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { train } from "../lib/train/train.ts";

Deno.test("784-128-10 MLP learns in fp32, fp16 and mixed; fp16 within 3 points of fp32", async () => {
  const data = synthetic({ train: 2000, test: 500 });
  const acc: Record<string, number> = {};
  for (const precision of ["fp32", "fp16", "mixed"]) {
    const r = await train({
      model: modelByName("mlp"),
      modelOptions: { classes: 10, hidden: [128] },
      policy: parsePolicy(precision),
      optimizer: PAPER_SGD,
      batch: 128,
      epochs: 3,
      seed: 1,
      data,
      engine: createEngine(),
    });
    assert.equal(r.divergence, null);
    acc[precision] = r.epochs.at(-1)!.testAccuracy;
  }
  for (const [p, a] of Object.entries(acc)) {
    assert.ok(a > 0.6, `${p} test accuracy ${a} is not well above chance`);
  }
  assert.ok(Math.abs(acc.fp16 - acc.fp32) < 0.03, `fp16 ${acc.fp16} vs fp32 ${acc.fp32}`);
  assert.ok(Math.abs(acc.mixed - acc.fp32) < 0.03, `mixed ${acc.mixed} vs fp32 ${acc.fp32}`);
  console.log(`test accuracy after 3 epochs: ${JSON.stringify(acc)}`);
});

Deno.test("the small CNN learns in fp32 and fp16 (and the two stay close)", async () => {
  const data = synthetic({ train: 600, test: 200 });
  const acc: Record<string, number> = {};
  for (const precision of ["fp32", "fp16"]) {
    const r = await train({
      model: modelByName("cnn"),
      modelOptions: { classes: 10, hidden: [] },
      policy: parsePolicy(precision),
      optimizer: { ...PAPER_SGD, lr: 0.05 },
      batch: 50,
      epochs: 2,
      seed: 1,
      data,
      engine: createEngine(),
    });
    assert.equal(r.divergence, null);
    acc[precision] = r.epochs.at(-1)!.testAccuracy;
  }
  for (const [p, a] of Object.entries(acc)) {
    assert.ok(a > 0.3, `${p} test accuracy ${a} is not well above chance`);
  }
  assert.ok(Math.abs(acc.fp16 - acc.fp32) < 0.1, `fp16 ${acc.fp16} vs fp32 ${acc.fp32}`);
  console.log(`cnn test accuracy after 2 epochs: ${JSON.stringify(acc)}`);
});
