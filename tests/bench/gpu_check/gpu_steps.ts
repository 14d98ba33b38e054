/**
 * The timing part of the GPU check (tests/bench/gpu_check/run.sh): one training step of each network on the
 * webgpu engine in fp32, fp16 and mixed, each in a fresh process (tests/bench/zoo_step.ts, bench:zoo's step),
 * and the same networks on the PyTorch peer (tests/bench/zoo_peer.py) in fp32, autocast fp16 with a
 * GradScaler and standalone `.half()`, on CUDA. Network by network, the peer runs first, then each policy,
 * so drift hits both sides alike. A part that fails or outruns the time budget is recorded with its reason
 * and the rest go on. Writes one JSON file ({@linkcode GpuSteps}).
 *
 * Without CUDA the peer is skipped, except in --smoke mode, which runs it on the CPU and says so: gpu_result.ts
 * never reports a CPU figure as a GPU one.
 *
 * @module
 */

import { loadEngine } from "../../../kernels/registry.ts";
import { parseFlags, positiveInt } from "../../../lib/cli/parse.ts";
import { UsageError } from "../../../lib/errors.ts";
import { findPeer, type Peer, probePeer, runPeer } from "../peer.ts";
import { median } from "../timing.ts";
import { paperOptimizer, runStepChild } from "../zoo_step.ts";

/** The networks, policies and peer modes of the check. */
export const GPU_MODELS = ["mlp", "resnet32", "vgg16", "vit8"] as const;
export const GPU_POLICIES = ["fp32", "fp16", "mixed"] as const;
export const PEER_MODES = ["fp32", "autocast", "half"] as const;

/** One measured (or failed) configuration. */
export interface StepRow {
  readonly model: string;
  /** The webgpu policy, or the peer's mode. */
  readonly config: string;
  readonly ms?: readonly number[];
  readonly medianMs?: number;
  /** Flops of one step (ours; the peer's steps do the same work when its parameter count matches). */
  readonly flops?: number;
  readonly params?: number;
  readonly compileMs?: number;
  readonly error?: string;
}

/** What gpu_steps.ts writes. */
export interface GpuSteps {
  readonly smoke: boolean;
  readonly batch: number;
  readonly warmup: number;
  readonly steps: number;
  /** The webgpu engine's environment (adapter, driver, features, limits), or `error`: why it did not load. */
  readonly webgpuEnvironment: Record<string, string>;
  readonly webgpu: readonly StepRow[];
  /** The peer: its label and device, or why it did not run. */
  readonly peer: { readonly label: string; readonly device: "cuda" | "cpu"; readonly gpu?: string } | {
    readonly skipped: string;
  };
  readonly torch: readonly StepRow[];
}

const HELP = `Usage: gpu_steps.ts --out FILE [--smoke] [--python PATH] [--budget-s N]

Times one training step of ${GPU_MODELS.join(", ")} on webgpu (${GPU_POLICIES.join(", ")}) and on the
PyTorch peer (${PEER_MODES.join(", ")}) at batch 256, 2 warm-up and 5 timed steps; --smoke: the MLP at
batch 2, 1 step. --python: the peer's Python (default: the bench:zoo venv, else python3 on
the PATH). --budget-s: stop starting new processes after N seconds (default 240).`;

/** Parses the flags; "help" for --help. */
export function parseStepsArgs(args: readonly string[]) {
  const { values: v } = parseFlags(args, {
    out: { type: "string" },
    smoke: { type: "boolean" },
    python: { type: "string" },
    "budget-s": { type: "string" },
    help: { type: "boolean" },
  });
  if (v.help) return "help" as const;
  if (!v.out) throw new UsageError("--out FILE is required");
  const smoke = v.smoke === true;
  return {
    out: v.out,
    smoke,
    python: v.python,
    budgetS: v["budget-s"] === undefined ? 240 : positiveInt("--budget-s", v["budget-s"]),
    // On lavapipe one ResNet-32 step at batch 2 takes minutes (shader compiles dominate): the smoke mode
    // times the MLP only; the conformance suite covers every op on lavapipe.
    models: smoke ? ["mlp"] : [...GPU_MODELS],
    batch: smoke ? 2 : 256,
    warmup: smoke ? 0 : 2,
    steps: smoke ? 1 : 5,
  };
}

type Options = Exclude<ReturnType<typeof parseStepsArgs>, "help">;

/** The peer and the device it runs on, or why there is none. */
async function choosePeer(o: Options): Promise<{ peer: Peer; device: "cuda" | "cpu" } | string> {
  const found = o.python ? await probePeer(o.python, ` (${o.python})`) : await findPeer();
  if (typeof found === "string") return found;
  if (found.cuda) return { peer: found, device: "cuda" };
  // A CPU figure is no peer of a GPU: only the smoke mode runs it, to check the script.
  return o.smoke ? { peer: found, device: "cpu" } : `${found.label} sees no CUDA GPU`;
}

/** The adapter, driver, features and limits the webgpu engine finds (its run-record environment). */
async function webgpuEnvironment(): Promise<Record<string, string>> {
  try {
    const engine = await loadEngine("webgpu");
    try {
      return engine.environment();
    } finally {
      engine.close?.();
    }
  } catch (e) {
    return { error: (e as Error).message.split("\n")[0] };
  }
}

/** Runs every configuration within the time budget and returns the measurements. */
export async function gpuSteps(
  o: Options,
  progress = (line: string) => console.error(line),
): Promise<GpuSteps> {
  const deadline = performance.now() + o.budgetS * 1000;
  const left = () => deadline - performance.now();
  const chosen = await choosePeer(o);
  const peer = typeof chosen === "string"
    ? { skipped: chosen }
    : { label: chosen.peer.label, device: chosen.device };
  const webgpu: StepRow[] = [], torch: StepRow[] = [];
  let gpu: string | undefined;
  const environment = await webgpuEnvironment();
  const { batch, warmup, steps } = o;
  // One process may take at most this long, so that one slow configuration leaves time for the others.
  const perChild = () => Math.round(Math.min(left(), 90_000));
  const show = (r: StepRow) => r.medianMs === undefined ? r.error : `${r.medianMs.toFixed(1)} ms`;
  for (const model of o.models) {
    const opt = paperOptimizer(model);
    for (const mode of PEER_MODES) {
      if (typeof chosen === "string") break;
      if (left() < 5000) {
        torch.push({ model, config: mode, error: "skipped: the time budget ran out" });
        continue;
      }
      try {
        const p = await runPeer(chosen.peer, {
          ...{ model, batch, threads: navigator.hardwareConcurrency, warmup, steps },
          ...{ momentum: opt.momentum, decay: opt.weightDecay, device: chosen.device, mode },
        });
        gpu ??= p.gpu;
        torch.push({ model, config: mode, ms: p.ms, medianMs: median(p.ms), params: p.params });
      } catch (e) {
        torch.push({ model, config: mode, error: (e as Error).message });
      }
      progress(`torch ${model} ${mode}: ${show(torch.at(-1)!)}`);
    }
    for (const policy of GPU_POLICIES) {
      if (left() < 5000) {
        webgpu.push({ model, config: policy, error: "skipped: the time budget ran out" });
        continue;
      }
      try {
        const m = await runStepChild(
          { model, engine: "webgpu", policy, batch, threads: 1, warmup, steps, bare: false },
          perChild(),
        );
        const { ms, flops, params, compileMs } = m;
        webgpu.push({ model, config: policy, ms, medianMs: median(ms), flops, params, compileMs });
      } catch (e) {
        webgpu.push({ model, config: policy, error: (e as Error).message });
      }
      progress(`webgpu ${model} ${policy}: ${show(webgpu.at(-1)!)}`);
    }
  }
  return {
    ...{ smoke: o.smoke, batch, warmup, steps },
    webgpuEnvironment: environment,
    webgpu,
    peer: gpu && "label" in peer ? { ...peer, gpu } : peer,
    torch,
  };
}

if (import.meta.main) {
  try {
    const o = parseStepsArgs(Deno.args);
    if (o === "help") {
      console.log(HELP);
    } else {
      await Deno.writeTextFile(o.out, JSON.stringify(await gpuSteps(o), null, 2) + "\n");
    }
  } catch (e) {
    console.error(`gpu_steps: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
