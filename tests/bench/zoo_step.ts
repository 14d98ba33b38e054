/**
 * One configuration of `deno task bench:zoo` (tests/bench/zoo.ts), in a process of its own so that its peak
 * resident memory is its own: builds the training step `train` runs for a Table 5 network (forward, loss,
 * backward, the paper profile's optimizer, the update checks unless told otherwise) on random 3x32x32
 * images, compiles it on one engine, runs `warmup` steps, times `steps` more, and prints one JSON line
 * ({@linkcode ZooStepResult}). Its argument is one JSON {@linkcode ZooStepConfig}.
 *
 * @module
 */

import process from "node:process";
import { stepFeeds } from "../support/step_feeds.ts";
import { engineSpec, loadEngine } from "../../kernels/registry.ts";
import { sizeOf } from "../../lib/graph/graph.ts";
import { modelByName } from "../../lib/model/zoo.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import type { OptimizerConfig } from "../../lib/record/schema.ts";
import { profileByName } from "../../lib/reproduce/profiles.ts";
import { PAPER_SGD } from "../../lib/train/optimizer.ts";
import { buildTrainGraph, UPDATE_CHECKS } from "../../lib/train/step.ts";
import { stepFlops } from "./step_flops.ts";

/** The one image shape of the zoo (CIFAR-10's). */
export const ZOO_INPUT = [3, 32, 32] as const;

/** The MLP's hidden widths: the quick profile's (only the MLP reads them; zoo_peer.py builds the same). */
export const ZOO_MLP_HIDDEN = [128] as const;

/** What one child process measures. */
export interface ZooStepConfig {
  readonly model: string;
  readonly engine: string;
  readonly policy: string;
  readonly batch: number;
  readonly threads: number;
  readonly warmup: number;
  readonly steps: number;
  /** Leave out the update checks (lost updates, finite parameters): the work of PyTorch's loop. */
  readonly bare: boolean;
}

/** What it prints. */
export interface ZooStepResult {
  /** Trainable parameter elements. */
  readonly params: number;
  /** Flops of one step (tests/bench/step_flops.ts). */
  readonly flops: number;
  /** The forward pass's share of them. */
  readonly forwardFlops: number;
  /** Milliseconds to build and compile the step graph. */
  readonly compileMs: number;
  /** Milliseconds of each timed step. */
  readonly ms: readonly number[];
  /** Peak resident memory of the whole process at the end, in KiB ({@linkcode peakResidentKiB}). */
  readonly peakKiB: number;
}

/** The optimizer the paper profile trains `model` with (ViT without momentum, ResNets with weight decay). */
export function paperOptimizer(model: string): OptimizerConfig {
  const e = profileByName("paper").experiments.find((x) => x.model === model);
  return e?.variants?.[0]?.optimizer ?? PAPER_SGD;
}

/**
 * The peak resident set of this process in KiB: getrusage's ru_maxrss, the figure /proc/self/status calls
 * VmHWM (Deno lets only --allow-all read /proc/self).
 */
export function peakResidentKiB(): number {
  return process.resourceUsage().maxRSS;
}

/** The training step of one configuration: its graph, and feeds of random images with fresh state. */
export function zooStepGraph(c: Pick<ZooStepConfig, "model" | "policy" | "batch" | "bare">) {
  const policy = parsePolicy(c.policy);
  const t = buildTrainGraph({
    model: modelByName(c.model),
    modelOptions: { classes: 10, hidden: [...ZOO_MLP_HIDDEN] },
    policy,
    optimizer: paperOptimizer(c.model),
    inputShape: ZOO_INPUT,
  }, c.batch);
  if (c.bare) { for (const name of UPDATE_CHECKS) delete t.graph.outputs[name]; }
  return { graph: t.graph, feeds: stepFeeds(t.graph, policy, ZOO_INPUT, c.batch) };
}

/** Builds, compiles and times one configuration. */
export async function measureZooStep(c: ZooStepConfig): Promise<ZooStepResult> {
  const t0 = performance.now();
  const t = zooStepGraph(c);
  const engine = await loadEngine(c.engine, { threads: c.threads });
  try {
    const exe = engine.compile(t.graph);
    const compileMs = performance.now() - t0;
    let feeds = t.feeds;
    // Each step feeds the state the previous one returned, as training does.
    const step = async () => (feeds = { ...feeds, ...await exe.run(feeds) });
    for (let i = 0; i < c.warmup; i++) await step();
    const ms: number[] = [];
    for (let i = 0; i < c.steps; i++) {
      const s = performance.now();
      await step();
      ms.push(performance.now() - s);
    }
    const params = t.graph.leaves("param").reduce((n, p) => n + sizeOf(p.shape), 0);
    const flops = stepFlops(t.graph);
    return {
      params,
      flops: flops.total,
      forwardFlops: flops.forward,
      compileMs,
      ms,
      peakKiB: peakResidentKiB(),
    };
  } finally {
    engine.close?.();
  }
}

/**
 * Runs one configuration in a fresh Deno process with the engine's own Deno flags and returns what it
 * printed; an Error carries the child's last stderr line. `timeoutMs` (default none) kills a child that
 * runs longer.
 */
export async function runStepChild(c: ZooStepConfig, timeoutMs?: number): Promise<ZooStepResult> {
  const flags = ["--allow-read", "--allow-env", "--allow-sys", ...engineSpec(c.engine).spec.denoFlags];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, new URL(import.meta.url).pathname, JSON.stringify(c)],
    cwd: new URL("../../", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    child.kill();
  }, timeoutMs);
  const out = await child.output().finally(() => clearTimeout(timer));
  if (timedOut) throw new Error(`stopped after ${timeoutMs} ms (the time budget of one step process)`);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
    throw new Error(err || `exit code ${out.code}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

if (import.meta.main) {
  try {
    console.log(JSON.stringify(await measureZooStep(JSON.parse(Deno.args[0]) as ZooStepConfig)));
  } catch (e) {
    // The driver shows this line in the row of the configuration that failed.
    console.error((e instanceof Error ? e.message : String(e)).split("\n")[0]);
    Deno.exit(1);
  }
}
