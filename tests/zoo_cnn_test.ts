/**
 * The paper's CIFAR-10 convolutional networks (lib/model/zoo_cnn.ts): each
 * builds on 32x32 input with logits of the class count, its parameter count
 * is pinned (so an architecture change cannot go unnoticed next to the
 * counts printed in Table 5), and its whole training step graph builds under
 * the fp16 policy, which needs a backward rule for every op it uses. No step
 * is executed: these networks are far too large for the reference engine in a
 * unit test.
 */

import assert from "node:assert/strict";
import { ModelBuilder } from "../lib/model/builder.ts";
import { ZOO_CNN } from "../lib/model/zoo_cnn.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { buildTrainGraph } from "../lib/train/step.ts";

const OPTIONS = { classes: 10, hidden: [] };

/**
 * Expected Keras "Total params" (trainable + batch-norm moving statistics),
 * exact, with the Table 5 figure beside it. Only AlexNet matches (its printed
 * "2.09" is a misprint of the 20.97M PAPER.md gives by count); the other
 * gaps are explained at each model in zoo_cnn.ts: no reading of the text
 * gives 33.76 for VGG-16, the printed VGG-19 38.36 is VGG-16 with extra convs
 * in blocks 4-5 only, and the printed MobileNet 2.27 is Keras's real
 * MobileNetV2, not the V1-like network of the authors' code.
 */
const COUNTS: Record<string, { trainable: number; nonTrainable: number; printed: number }> = {
  alexnet: { trainable: 20_972_394, nonTrainable: 0, printed: 20.97 },
  vgg16: { trainable: 33_641_162, nonTrainable: 2_944, printed: 33.76 },
  vgg19: { trainable: 38_950_858, nonTrainable: 2_944, printed: 38.36 },
  mobilenet: { trainable: 3_217_226, nonTrainable: 21_888, printed: 2.27 },
};

function forward(name: string) {
  const b = new ModelBuilder(true);
  const x = b.input("x", [2, 3, 32, 32]);
  const logits = ZOO_CNN[name].build(b, x, OPTIONS);
  return { b, logits };
}

function leafSize(b: ModelBuilder, kind: "param" | "state"): number {
  return b.graph.leaves(kind).reduce((s, n) => s + n.shape.reduce((p, v) => p * v, 1), 0);
}

const millions = (n: number) => Math.round(n / 1e4) / 100;

Deno.test("zoo_cnn registers exactly the four networks, each under its own name", () => {
  assert.deepEqual(Object.keys(ZOO_CNN).sort(), Object.keys(COUNTS).sort());
  for (const [key, def] of Object.entries(ZOO_CNN)) assert.equal(def.name, key);
});

for (const name of Object.keys(COUNTS)) {
  Deno.test(`${name}: builds on [2, 3, 32, 32] with logits [2, 10]`, () => {
    const { b, logits } = forward(name);
    assert.deepEqual(b.shape(logits), [2, 10]);
  });

  Deno.test(`${name}: parameter count`, () => {
    const { b } = forward(name);
    const want = COUNTS[name];
    const trainable = leafSize(b, "param"), nonTrainable = leafSize(b, "state");
    assert.equal(trainable, want.trainable);
    assert.equal(nonTrainable, want.nonTrainable);
    const total = millions(trainable + nonTrainable);
    if (name === "alexnet") assert.equal(total, want.printed);
    else assert.notEqual(total, want.printed, "now matches Table 5: update the notes in zoo_cnn.ts");
  });

  Deno.test(`${name}: the fp16 training step graph builds (every op has a backward rule)`, () => {
    const spec = {
      model: ZOO_CNN[name],
      modelOptions: OPTIONS,
      policy: parsePolicy("fp16,bn=fp32"),
      optimizer: PAPER_SGD,
      inputShape: [3, 32, 32],
    };
    const { graph, grads } = buildTrainGraph(spec, 2);
    assert.equal(grads.length, graph.leaves("param").length);
    for (const g of grads) assert.ok(g !== undefined && g >= 0);
  });
}
