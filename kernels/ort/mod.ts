/**
 * The ort engine: the whole training step as one ONNX model, run by onnxruntime's CPU provider (the
 * library onnxruntime-node ships, called through its C API: kernels/ort/capi.ts).
 *
 * `compile` lowers the step graph (kernels/ort/model.ts); the first `run` creates one session for it, and
 * every run feeds the batch and the state and has onnxruntime write the outputs and the next state
 * straight into Float32Arrays this executable owns. State returned by one run and fed to the next is
 * passed on as the same buffer, without a copy or a conversion.
 *
 * What it guarantees: fp32, fp16 and bf16 storage, each op's output rounded to its format (a Cast after
 * every op, which no onnxruntime optimisation removes; tests/ort_engine_test.ts checks every op against
 * ref), fp32 accumulation (onnxruntime's own order, with fused multiply-add: not bit-exact with ref), and
 * the same bits on every run with the same thread count (deterministic compute on, one inter-op thread).
 * What it refuses: fp16/bf16 accumulation and stochastic rounding (ONNX has no per-op accumulation
 * format and no bit cast), and fp64 tensors.
 *
 * @module
 */

import { FORMAT_NAMES } from "../../lib/formats/format.ts";
import { type Graph, sizeOf } from "../../lib/graph/graph.ts";
import { assertSupports, type Engine, type Executable, feedFor, type HostTensor } from "../engine.ts";
import { ORT_CAPABILITIES } from "./capabilities.ts";
import { fillMask, type LoweredModel, lowerGraph } from "./model.ts";
import type { CSession, CSessionOptions, CTensor, OrtC } from "./capi.ts";
import { loadOrtC } from "./runtime.ts";
import { nchwcBlock } from "./nchwc.ts";

/** Options of the ort engine. */
export interface OrtOptions {
  /** onnxruntime intra-op threads. Default 1: ort's bits depend on it, so the default is the same everywhere. */
  readonly threads?: number;
}

/** The engine's session options; the run record states them (see `environment()`). */
export function sessionOptions(threads: number): CSessionOptions {
  return {
    intraOpThreads: threads,
    interOpThreads: 1,
    sequential: true,
    optimizationLevel: 99, // all
    config: { "session.use_deterministic_compute": "1" },
  };
}

class OrtExecutable implements Executable {
  readonly #graph: Graph;
  readonly #ort: OrtC;
  readonly #threads: number;
  readonly #nchwc: number;
  readonly #sessions: Set<CSession>;
  #ready?: Promise<{ session: CSession; model: LoweredModel; stateKeys: Set<string> }>;
  /** The output name behind each host tensor this executable returned. */
  readonly #mine = new WeakMap<HostTensor, string>();
  /** Buffers of next-state values that were fed back and consumed, ready to be written again. */
  readonly #free = new Map<string, Float32Array[]>();

  /** Float32 copies of feeds given as float64 (scalars, mostly), one reused buffer per input. */
  readonly #converted = new Map<string, Float32Array>();
  /** One reused buffer per dropout mask, refilled every run. */
  readonly #masks = new Map<string, Uint8Array>();

  constructor(graph: Graph, ort: OrtC, sessions: Set<CSession>, options: { threads: number; nchwc: number }) {
    this.#graph = graph;
    this.#ort = ort;
    this.#threads = options.threads;
    this.#nchwc = options.nchwc;
    this.#sessions = sessions;
  }

  #start() {
    this.#ready ??= (async () => {
      const model = await lowerGraph(this.#graph, { nchwc: this.#nchwc, exactInputs: true });
      const session = this.#ort.createSession(
        model.bytes,
        [...model.inputs.map((p) => p.name), ...model.masks.map((m) => m.name)],
        model.outputs.map((p) => p.name),
        sessionOptions(this.#threads),
      );
      this.#sessions.add(session);
      return { session, model, stateKeys: new Set(this.#graph.state.map((s) => s.name)) };
    })();
    return this.#ready;
  }

  /** A feed's values as float32, the boundary type (see kernels/ort/model.ts; exact, no fp64 here). */
  #asF32(name: string, data: HostTensor["data"]): Float32Array {
    if (data instanceof Float32Array) return data;
    let buf = this.#converted.get(name);
    if (!buf) this.#converted.set(name, buf = new Float32Array(data.length));
    buf.set(data);
    return buf;
  }

  async run(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>> {
    const { session, model, stateKeys } = await this.#start();
    const nodes = this.#graph.nodes;
    const inputs: Record<string, CTensor> = {}, consumed: [string, Float32Array][] = [];
    for (const p of model.inputs) {
      const t = feedFor(nodes[p.id], feeds), mine = this.#mine.get(t);
      inputs[p.name] = { data: this.#asF32(p.name, t.data), shape: p.shape };
      if (mine && stateKeys.has(p.key)) consumed.push([mine, t.data as Float32Array]), this.#mine.delete(t);
    }
    for (const m of model.masks) {
      const seed = feedFor(nodes[m.seed], feeds).data[0];
      let keep = this.#masks.get(m.name);
      if (!keep) this.#masks.set(m.name, keep = new Uint8Array(m.size));
      inputs[m.name] = { data: fillMask(m, seed, keep), shape: [m.size] };
    }
    // Next-state values are written into the buffers of state consumed two runs ago (double buffering):
    // no allocation, no copy. Other results get fresh memory.
    const outputs: Record<string, CTensor> = {};
    for (const p of model.outputs) {
      outputs[p.name] = {
        data: this.#free.get(p.name)?.pop() ?? new Float32Array(sizeOf(p.shape)),
        shape: p.shape,
      };
    }
    session.run(inputs, outputs);
    for (const [name, data] of consumed) {
      if (!this.#free.has(name)) this.#free.set(name, []);
      this.#free.get(name)!.push(data);
    }
    const result: Record<string, HostTensor> = {};
    for (const p of model.outputs) {
      const t: HostTensor = { shape: p.shape, format: p.format, data: outputs[p.name].data as Float32Array };
      this.#mine.set(t, p.name);
      result[p.key] = t;
    }
    return result;
  }
}

/** Creates the ort engine, loading onnxruntime-node (it needs --allow-ffi; without it this throws NotCapable). */
export async function createEngine(options: OrtOptions = {}): Promise<Engine> {
  const threads = options.threads ?? 1;
  const sessions = new Set<CSession>();
  const ort = await loadOrtC();
  const nchwc = await nchwcBlock(ort);
  const engine: Engine = {
    name: "ort",
    description:
      "the whole step as one ONNX model on onnxruntime-node (fast, not bit-exact, needs --allow-ffi)",
    capabilities: ORT_CAPABILITIES,
    compile(graph: Graph): Executable {
      assertSupports(engine, graph);
      return new OrtExecutable(graph, ort, sessions, { threads, nchwc });
    },
    environment: () => ({
      kernels: `onnxruntime ${ort.version} (onnxruntime-node's library, C API), CPU execution provider`,
      threads: `${threads} intra-op, 1 inter-op, sequential`,
      deterministic: "session.use_deterministic_compute=1",
      optimization: "graphOptimizationLevel all; every op's result cast to its format",
      convolutions: nchwc
        ? `onnxruntime's NCHWc kernel in channel blocks of ${nchwc} (depthwise, and dense ones larger than 1x1)`
        : "plain Conv (this onnxruntime has no NCHWc kernel)",
      boundary: "fp16/bf16 tensors cross to JavaScript as float32 holding their exact values; 16-bit inside",
      unsupported: `accumulate=${
        FORMAT_NAMES.filter((f) => f !== "fp32").join("/")
      }, rounding=stochastic, fp64`,
    }),
    close() {
      for (const s of sessions) s.release();
      sessions.clear();
    },
  };
  return engine;
}
