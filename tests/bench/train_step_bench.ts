/**
 * Training-step throughput of the ref engine per precision policy, measured
 * side by side in one run (ratios against fp32). MLP 784-128-10 and the small
 * CNN, batch 128, on synthetic data. Run: deno task bench.
 */

import { stepFeeds } from "../support/step_feeds.ts";
import { createEngine } from "../../kernels/ref/mod.ts";
import { modelByName } from "../../lib/model/zoo.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { PAPER_SGD } from "../../lib/train/optimizer.ts";
import { buildTrainGraph } from "../../lib/train/step.ts";

const BATCH = 128;
const engine = createEngine();

function setup(model: string, precision: string) {
  const policy = parsePolicy(precision);
  const t = buildTrainGraph({
    model: modelByName(model),
    modelOptions: { classes: 10, hidden: [128] },
    policy,
    optimizer: PAPER_SGD,
    inputShape: [1, 28, 28],
  }, BATCH);
  const exe = engine.compile(t.graph);
  const feeds = stepFeeds(t.graph, policy, [1, 28, 28], BATCH);
  return () => exe.run(feeds);
}

for (const model of ["mlp", "cnn"]) {
  for (const precision of ["fp32", "fp16", "mixed", "bf16", "params=fp16,compute=fp16,accumulate=fp16"]) {
    const step = setup(model, precision);
    Deno.bench(`${model} ${precision} step (batch ${BATCH})`, {
      group: model,
      baseline: precision === "fp32",
      n: model === "cnn" ? 5 : 20,
      warmup: 2,
    }, async () => {
      await step();
    });
  }
}
