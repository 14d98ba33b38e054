/**
 * Development tool: times one training step of zoo networks on the ort engine's lowered model and, with
 * --profile, prints onnxruntime's own per-node times summed by ONNX op type (its profiler, enabled through
 * kernels/ort/capi.ts's development-only option). The session options are the engine's (deterministic
 * compute, sequential, optimisation level all) with the given intra-op threads.
 *
 * Run (the ort lockfile, as every process that loads onnxruntime-node):
 *   deno run --lock=kernels/ort/deno.lock --allow-ffi --allow-read --allow-write --allow-env --allow-sys \
 *     tests/bench/ort_step.ts --models resnet32,mobilenet --precisions fp32,fp16 --batch 32 --threads 2 \
 *     [--steps 5] [--profile [--shapes]] [--top 12] [--optimized DIR] [--plain-conv]
 * --config key=value adds a session config entry (repeatable); --optimized writes each model as
 * onnxruntime's optimizer left it (to see its layout transformations); --plain-conv lowers the
 * convolutions to plain Conv nodes, as an exported model does, instead of onnxruntime's NCHWc kernel.
 * Compare lowerings in separate processes run alternately: two sessions in one process disturb each other
 * (each has its own spinning thread pool; measured: a MobileNet step's NCHWc gain shrank from about 15% to
 * 1% with both sessions in one process on 2 cores).
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { feedFor } from "../../kernels/engine.ts";
import type { CSessionOptions, CTensor } from "../../kernels/ort/capi.ts";
import { fillMask, lowerGraph } from "../../kernels/ort/model.ts";
import { loadOrtC } from "../../kernels/ort/runtime.ts";
import { sessionOptions } from "../../kernels/ort/mod.ts";
import { nchwcBlock } from "../../kernels/ort/nchwc.ts";
import { sizeOf } from "../../lib/graph/graph.ts";
import { modelByName } from "../../lib/model/zoo.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { PAPER_SGD } from "../../lib/train/optimizer.ts";
import { buildTrainGraph } from "../../lib/train/step.ts";
import { stepFeeds } from "../support/step_feeds.ts";

const str = (d?: string) => ({ type: "string", default: d }) as const;
/** The parsed flags; a bad flag is a one-line error (see the end of this file). */
function flags() {
  return parseArgs({
    args: Deno.args,
    options: {
      models: str("resnet32"),
      precisions: str("fp32"),
      batch: str("32"),
      threads: str("2"),
      steps: str("5"),
      top: str("12"),
      optimized: { type: "string" },
      config: { type: "string", multiple: true, default: [] },
      profile: { type: "boolean", default: false },
      shapes: { type: "boolean", default: false },
      "plain-conv": { type: "boolean", default: false },
    },
  }).values;
}

let args: ReturnType<typeof flags>;
try {
  args = flags();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  Deno.exit(2);
}
const batch = Number(args.batch), threads = Number(args.threads), steps = Number(args.steps);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A ready step: a session and its feeds and output buffers. */
async function prepare(model: string, precision: string, profilePrefix?: string) {
  const def = modelByName(model), policy = parsePolicy(precision);
  const { graph } = buildTrainGraph({
    model: def,
    modelOptions: { classes: 10, hidden: [] },
    policy,
    optimizer: PAPER_SGD,
    inputShape: def.input ?? [3, 32, 32],
  }, batch);
  const ort = await loadOrtC();
  // --plain-conv lowers as an exported model does: no NCHWc kernels (to compare).
  const lowered = await lowerGraph(graph, { nchwc: args["plain-conv"] ? 0 : await nchwcBlock(ort) });
  const feeds = stepFeeds(graph, policy, def.input ?? [3, 32, 32], batch);
  const inputs: Record<string, CTensor> = {};
  for (const p of lowered.inputs) {
    inputs[p.name] = { data: Float32Array.from(feedFor(graph.nodes[p.id], feeds).data), shape: p.shape };
  }
  for (const m of lowered.masks) {
    inputs[m.name] = { data: fillMask(m, 1, new Uint8Array(m.size)), shape: [m.size] };
  }
  const outputs: Record<string, CTensor> = {};
  for (const p of lowered.outputs) {
    outputs[p.name] = { data: new Float32Array(sizeOf(p.shape)), shape: p.shape };
  }
  const engine = sessionOptions(threads);
  const options: CSessionOptions = {
    ...engine,
    // --config key=value adds session config entries (to try one, e.g. session.set_denormal_as_zero=1).
    config: { ...engine.config, ...Object.fromEntries(args.config!.map((kv) => kv.split("=", 2))) },
    profilePrefix,
    optimizedModelPath: args.optimized ? `${args.optimized}/${model}_${precision}.onnx` : undefined,
  };
  const session = ort.createSession(
    lowered.bytes,
    [...lowered.inputs.map((p) => p.name), ...lowered.masks.map((m) => m.name)],
    lowered.outputs.map((p) => p.name),
    options,
  );
  return { session, run: () => session.run(inputs, outputs), nodes: graph.nodes.length };
}

/** Per-op-type kernel times (ms per step) from an onnxruntime profile file. */
function opTimes(file: string, runs: number): [string, number][] {
  const events = JSON.parse(Deno.readTextFileSync(file)) as {
    cat: string;
    name: string;
    dur: number;
    args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
  }[];
  const sum = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || !e.args?.op_name) continue;
    // --shapes: one line per op type and input shapes (which Conv is slow: forward, gradient, 1x1).
    const shapes = args.shapes
      ? " " + JSON.stringify(e.args.input_type_shape?.map((s) => Object.entries(s)[0]))
      : "";
    const key = e.args.op_name + shapes;
    sum.set(key, (sum.get(key) ?? 0) + e.dur / 1000 / runs);
  }
  return [...sum].sort((a, b) => b[1] - a[1]);
}

/** Times (and profiles) every model and precision asked for. */
async function main() {
  for (const model of args.models!.split(",")) {
    for (const precision of args.precisions!.split(",")) {
      const dir = args.profile ? Deno.makeTempDirSync({ prefix: "ort_profile_" }) : undefined;
      const step = await prepare(model, precision, dir && `${dir}/p`);
      step.run(); // warm-up: first-run allocations and kernel choices
      // Wall time and the process's CPU time: on a shared machine the CPU time at one thread is the steadier
      // measure of the work a lowering asks for (wall time there includes waiting for a core).
      const ms: number[] = [], cpu: number[] = [];
      for (let i = 0; i < steps; i++) {
        const c0 = process.cpuUsage(), t0 = performance.now();
        step.run();
        ms.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1000);
      }
      step.session.release(); // writes the profile
      const m = median(ms);
      console.log(
        `${model} ${precision} batch ${batch} threads ${threads}: ${m.toFixed(1)} ms/step, ` +
          `${(batch / m * 1000).toFixed(1)} samples/s, CPU ${
            median(cpu).toFixed(1)
          } ms/step (medians of ${steps})`,
      );
      if (dir) {
        const file = [...Deno.readDirSync(dir)][0];
        const times = opTimes(`${dir}/${file.name}`, steps + 1);
        const total = times.reduce((s, [, t]) => s + t, 0);
        for (const [op, t] of times.slice(0, Number(args.top))) {
          console.log(
            `  ${op.padEnd(args.shapes ? 70 : 24)} ${t.toFixed(1).padStart(8)} ms ${
              (100 * t / total).toFixed(1)
            }%`,
          );
        }
        Deno.removeSync(dir, { recursive: true });
      }
    }
  }
}

try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  Deno.exit(1);
}
