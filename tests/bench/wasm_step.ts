/**
 * Where a wasm training step spends its time: one zoo network's step (tests/bench/zoo_step.ts builds it)
 * on the wasm engine, each step of its plan timed (kernels/wasm/mod.ts's development hook), summed over the
 * timed runs and printed by op, format and output shape, largest first, with each line's share of the step.
 * Development only, like tests/bench/ort_step.ts for onnxruntime:
 *
 *   deno run --allow-read --allow-env tests/bench/wasm_step.ts --models resnet32 --precisions fp32 \
 *     --batch 128 --threads 2 [--steps 2] [--top 15] [--by-op | --by-kernel]
 *
 * --by-op sums over formats and shapes; --by-kernel lists the parallel kernels' calls instead of the plan's
 * steps (a gemm's packing and tiles, the gathers: the time inside the convolutions).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createEngine, stepProfile } from "../../kernels/wasm/mod.ts";
import { zooStepGraph } from "./zoo_step.ts";

const str = (d: string) => ({ type: "string", default: d }) as const;
let args;
try {
  args = parseArgs({
    args: Deno.args,
    options: {
      models: str("resnet32"),
      precisions: str("fp32"),
      batch: str("128"),
      threads: str("2"),
      steps: str("2"),
      top: str("15"),
      "by-op": { type: "boolean", default: false },
      "by-kernel": { type: "boolean", default: false },
    },
  }).values;
} catch (err) {
  console.error((err as Error).message);
  Deno.exit(2);
}
const [batch, threads, steps, top] = [args.batch, args.threads, args.steps, args.top].map(Number);
const engine = await createEngine({ threads });
try {
  for (const model of args.models.split(",")) {
    for (const policy of args.precisions.split(",")) {
      const { graph, feeds } = zooStepGraph({ model, policy, batch, bare: false });
      const exe = engine.compile(graph);
      let state = { ...feeds, ...await exe.run(feeds) }; // warm-up, not timed
      const times = stepProfile.times = new Map<string, number>();
      const calls = stepProfile.kernels = new Map<string, number>();
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) state = { ...state, ...await exe.run(state) };
      const wall = (performance.now() - t0) / steps;
      stepProfile.times = stepProfile.kernels = undefined;
      const sums = new Map<string, number>();
      for (const [key, ms] of args["by-kernel"] ? calls : times) {
        const k = args["by-op"] ? key.split(" ")[0] : key;
        sums.set(k, (sums.get(k) ?? 0) + ms / steps);
      }
      const planMs = [...times.values()].reduce((a, b) => a + b, 0) / steps;
      console.log(
        `${model} ${policy} batch ${batch} threads ${threads}: ${wall.toFixed(1)} ms/step, ` +
          `${planMs.toFixed(1)} ms in the plan's steps (mean of ${steps})`,
      );
      for (const [k, ms] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        console.log(`  ${k.padEnd(70)} ${ms.toFixed(1).padStart(8)} ms ${(100 * ms / wall).toFixed(1)}%`);
      }
    }
  }
} finally {
  engine.close?.();
}
