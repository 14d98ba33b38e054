/**
 * The ort engine: the whole training step as one ONNX model, run by onnxruntime-node's CPU provider.
 *
 * `compile` lowers the step graph (kernels/ort/model.ts); the first `run` creates one InferenceSession for
 * it, and every run feeds the batch and the state and reads back the outputs and the next state. State
 * returned by one run and fed to the next is passed on as the same onnxruntime tensor, without a copy
 * or a conversion.
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

import { FORMAT_NAMES, type FormatName } from "../../lib/formats/format.ts";
import type { Graph } from "../../lib/graph/graph.ts";
import { dropoutKeeps } from "../ref/elementwise.ts";
import { assertSupports, type Engine, type Executable, feedFor, type HostTensor } from "../engine.ts";
import { ORT_CAPABILITIES } from "./capabilities.ts";
import { type LoweredModel, lowerGraph } from "./model.ts";
import { loadOrt, type Ort, type OrtSession, type OrtTensor, ortVersion } from "./runtime.ts";

/** Options of the ort engine. */
export interface OrtOptions {
  /** onnxruntime intra-op threads. Default 1: ort's bits depend on it, so the default is the same everywhere. */
  readonly threads?: number;
}

/** onnxruntime session options: the run record states them (see `environment()`). */
function sessionOptions(threads: number): Record<string, unknown> {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    extra: { session: { use_deterministic_compute: "1" } },
  };
}

/** A host tensor as an onnxruntime float32 tensor, its boundary type (see kernels/ort/model.ts; no fp64 here). */
function toOrt(ort: Ort, t: HostTensor): OrtTensor {
  const data = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
  return new ort.Tensor("float32", data, t.shape);
}

/** An onnxruntime float32 result as a host tensor. */
function fromOrt(t: OrtTensor, format: FormatName, shape: readonly number[]): HostTensor {
  if (!(t.data instanceof Float32Array)) {
    throw new Error(`Unexpected onnxruntime output type ${t.type}`);
  }
  return { shape, format, data: t.data };
}

/** The bool mask of one dropout node for this step's seed. */
function maskData(seed: number, salt: number, rate: number, size: number): Uint8Array {
  const keep = new Uint8Array(size);
  for (let i = 0; i < size; i++) keep[i] = dropoutKeeps(seed, salt, i, rate) ? 1 : 0;
  return keep;
}

class OrtExecutable implements Executable {
  readonly #graph: Graph;
  readonly #ort: Ort;
  readonly #threads: number;
  readonly #sessions: Set<OrtSession>;
  #ready?: Promise<{ ort: Ort; session: OrtSession; model: LoweredModel; stateKeys: Set<string> }>;
  /** The onnxruntime tensor behind each host tensor this executable returned, and its output name. */
  readonly #mine = new WeakMap<HostTensor, { name: string; tensor: OrtTensor }>();
  /** Output buffers of next-state values that were fed back and consumed, ready to be written again. */
  readonly #free = new Map<string, OrtTensor[]>();

  constructor(graph: Graph, ort: Ort, threads: number, sessions: Set<OrtSession>) {
    this.#graph = graph;
    this.#ort = ort;
    this.#threads = threads;
    this.#sessions = sessions;
  }

  #start() {
    this.#ready ??= (async () => {
      const ort = this.#ort;
      const model = await lowerGraph(this.#graph);
      const session = await ort.InferenceSession.create(model.bytes, sessionOptions(this.#threads));
      this.#sessions.add(session);
      return { ort, session, model, stateKeys: new Set(this.#graph.state.map((s) => s.name)) };
    })();
    return this.#ready;
  }

  async run(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>> {
    const { ort, session, model, stateKeys } = await this.#start();
    const nodes = this.#graph.nodes;
    const input: Record<string, OrtTensor> = {}, consumed: { name: string; tensor: OrtTensor }[] = [];
    for (const p of model.inputs) {
      const t = feedFor(nodes[p.id], feeds), mine = this.#mine.get(t);
      input[p.name] = mine?.tensor ?? toOrt(ort, t);
      if (mine && stateKeys.has(p.key)) consumed.push(mine), this.#mine.delete(t);
    }
    for (const m of model.masks) {
      const seed = feedFor(nodes[m.seed], feeds).data[0];
      input[m.name] = new ort.Tensor("bool", maskData(seed, m.salt, m.rate, m.size), [m.size]);
    }
    // Next-state values are written into the buffers of state consumed two runs ago (double buffering):
    // no allocation, no copy. Other results get fresh memory.
    const fetches: Record<string, OrtTensor | null> = {};
    for (const p of model.outputs) fetches[p.name] = this.#free.get(p.name)?.pop() ?? null;
    const out = await session.run(input, fetches);
    for (const c of consumed) {
      if (!this.#free.has(c.name)) this.#free.set(c.name, []);
      this.#free.get(c.name)!.push(c.tensor);
    }
    const result: Record<string, HostTensor> = {};
    for (const p of model.outputs) {
      const tensor = fetches[p.name] ?? out[p.name];
      const t = fromOrt(tensor, p.format, p.shape);
      this.#mine.set(t, { name: p.name, tensor });
      result[p.key] = t;
    }
    return result;
  }
}

/** Creates the ort engine, loading onnxruntime-node (it needs --allow-ffi; without it this throws NotCapable). */
export async function createEngine(options: OrtOptions = {}): Promise<Engine> {
  const threads = options.threads ?? 1;
  const sessions = new Set<OrtSession>();
  const ort = await loadOrt();
  const engine: Engine = {
    name: "ort",
    description:
      "the whole step as one ONNX model on onnxruntime-node (fast, not bit-exact, needs --allow-ffi)",
    capabilities: ORT_CAPABILITIES,
    compile(graph: Graph): Executable {
      assertSupports(engine, graph);
      return new OrtExecutable(graph, ort, threads, sessions);
    },
    environment: () => ({
      kernels: `onnxruntime-node ${ortVersion(ort)}, CPU execution provider`,
      threads: `${threads} intra-op, 1 inter-op, sequential`,
      deterministic: "session.use_deterministic_compute=1",
      optimization: "graphOptimizationLevel all; every op's result cast to its format",
      boundary: "fp16/bf16 tensors cross to JavaScript as float32 holding their exact values; 16-bit inside",
      unsupported: `accumulate=${
        FORMAT_NAMES.filter((f) => f !== "fp32").join("/")
      }, rounding=stochastic, fp64`,
    }),
    close() {
      for (const s of sessions) void s.release();
      sessions.clear();
    },
  };
  return engine;
}
