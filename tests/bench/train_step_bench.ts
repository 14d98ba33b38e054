/**
 * Training-step throughput of the ref engine per precision policy, measured
 * side by side in one run (ratios against fp32). MLP 784-128-10 and the small
 * CNN, batch 128, on synthetic data. Run: deno task bench.
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { createEngine } from "../../kernels/ref/mod.ts";
import { rounder } from "../../lib/formats/format.ts";
import { modelByName } from "../../lib/model/zoo.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { initialState } from "../../lib/train/init.ts";
import { PAPER_SGD } from "../../lib/train/optimizer.ts";
import { buildTrainGraph } from "../../lib/train/step.ts";
import { Rng } from "../../lib/random.ts";

const BATCH = 128;
const engine = createEngine();
const scalar = (v: number): HostTensor => ({ shape: [], format: "fp32", data: Float64Array.of(v) });

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
  const rng = new Rng(1, "bench"), r = rounder(policy.compute);
  const feeds: Record<string, HostTensor> = {
    ...initialState(t.graph, 1),
    x: {
      shape: [BATCH, 1, 28, 28],
      format: policy.compute,
      data: Float64Array.from({ length: BATCH * 784 }, () => r(rng.uniform() - 0.5)),
    },
    labels: {
      shape: [BATCH],
      format: "fp32",
      data: Float64Array.from({ length: BATCH }, () => rng.below(10)),
    },
    loss_scale: scalar(policy.lossScale.kind === "dynamic" ? 32768 : 1),
    inv_loss_scale: scalar(policy.lossScale.kind === "dynamic" ? 1 / 32768 : 1),
    step_seed: scalar(1),
    adam_alpha: scalar(0.001),
  };
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
