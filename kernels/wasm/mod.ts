/**
 * The wasm engine: the ref engine's numerical contract in AssemblyScript kernels compiled to WebAssembly
 * SIMD, run by a plan that lowers each node once and threads over shared memory.
 *
 * fp16 and bf16 tensors are stored in 16 bits. In the default (exact) mode every op gives the ref
 * engine's bits: tests/wasm_engine_test.ts checks each op in each format and whole training runs.
 * `fast` loads the relaxed-SIMD build, whose gemm uses fused multiply-add: faster, not bit-exact, and
 * said so in its capabilities and environment.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import { ERFC_TABLE } from "../../lib/math.ts";
import { type Graph, type Node, sizeOf } from "../../lib/graph/graph.ts";
import { assertSupports, type Engine, type Executable, feedFor, type HostTensor } from "../engine.ts";
import { ASC_VERSION_USED, EXACT_WASM, FAST_WASM, type KernelExports, Map1 } from "./kernels_wasm.ts";
import { Arena, elementIndex, FORMAT_CODE } from "./memory.ts";
import { WASM } from "./spec.ts";
import { FORMATS } from "../../lib/formats/format.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { FP32, positional, split } from "./lowering.ts";
import {
  type LowerArgs,
  type Lowered,
  LOWERINGS,
  lowerMomentumPair,
  type Operand,
  type Runtime,
} from "./ops.ts";
import { place, swapState } from "../../lib/graph/plan.ts";
import { Pool } from "./pool.ts";

/** Options of the wasm engine. */
export interface WasmOptions {
  /** Threads (the calling thread plus workers); the results do not depend on it. Default: CPU count. */
  readonly threads?: number;
  /** Relaxed SIMD with fused multiply-add in the gemm: faster, not bit-exact with ref. */
  readonly fast?: boolean;
}

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The fp16 bit pattern -> f32 table the kernels use to load fp16 (exact for all 65536 patterns). */
function halfTable(): Float32Array {
  const bits = new Uint16Array(65536);
  for (let i = 0; i < bits.length; i++) bits[i] = i;
  return new Float32Array(new Float16Array(bits.buffer));
}

/** The kernel module on this thread over a fresh shared memory, its tables written and set. */
export interface Kernels {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** The module's exports. */
  readonly k: KernelExports;
  readonly arena: Arena;
  /** Addresses of the fp16 table and the erfc table (workers set them in their own instances). */
  readonly tables: { readonly half: number; readonly erfc: number };
}

/**
 * Development only (tests/bench/wasm_step.ts): while `times` is set, each run adds every step's wall time
 * to it in milliseconds, keyed by op, format and output shape; while `kernels` is set, every call of a
 * parallel kernel (kernels/wasm/pool.ts) adds its wall time, keyed by the kernel's name. The engine never
 * sets either.
 */
export const stepProfile: { times?: Map<string, number>; kernels?: Map<string, number> } = {};

/** Instantiates the exact (or `fast`) kernel module: what the engine starts from, and what tests call. */
export function instantiateKernels(fast = false): Kernels {
  const module = new WebAssembly.Module(decode(fast ? FAST_WASM : EXACT_WASM));
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
  const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } });
  // The exports are the module's own, typed by the signatures build.ts generated from the same sources.
  const k = instance.exports as unknown as KernelExports;
  const arena = new Arena(memory, k.heapBase());
  const half = arena.alloc(65536 * 4), erfc = arena.alloc(ERFC_TABLE.byteLength);
  arena.views.f32.set(halfTable(), elementIndex(half, 4));
  arena.views.f64.set(ERFC_TABLE, elementIndex(erfc, 8));
  k.setHalfTable(half);
  k.setErfcTable(erfc);
  return { module, memory, k, arena, tables: { half, erfc } };
}

/** Creates the wasm engine (starting its worker threads). Call `close()` when done with it. */
export async function createEngine(options: WasmOptions = {}): Promise<Engine> {
  const fast = !!options.fast;
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new RangeError(`Thread count must be an integer from 1 to 256, got ${threads}`);
  }
  const { module, memory, k, arena, tables } = instantiateKernels(fast);
  const pool = await Pool.start(threads, { module, memory, tables }, k);
  const rt: Runtime = {
    k,
    arena,
    threads,
    parallel: (kernel, rows) => {
      const times = stepProfile.kernels, t0 = performance.now();
      pool.run(kernel, rows.map((row) => positional(kernel, row)));
      times?.set(kernel, (times.get(kernel) ?? 0) + performance.now() - t0);
    },
  };
  const engine: Engine = {
    name: fast ? "wasm-fast" : "wasm",
    description: fast
      ? "AssemblyScript wasm SIMD kernels, --fast: fused multiply-add, NOT bit-exact with ref"
      : "AssemblyScript wasm SIMD kernels, multi-threaded, bit-identical to ref",
    capabilities: {
      formats: ["fp32", "fp16", "bf16"],
      ops: Object.keys(LOWERINGS),
      bitExactWithRef: WASM.guarantee({ fast }).bitExactWithRef,
      deterministic: WASM.guarantee({ fast }).deterministic,
    },
    compile: (graph) => compile(engine, rt, graph),
    environment: () => ({
      kernels: `AssemblyScript ${ASC_VERSION_USED}, WebAssembly SIMD${fast ? " + relaxed SIMD (FMA)" : ""}`,
      mode: fast ? "fast (not bit-exact with ref)" : "exact (bit-identical to ref)",
      threads: String(threads),
    }),
    close: () => pool.close(),
  };
  return engine;
}

/**
 * Momentum updates that run as one pass (velocity id -> apply id): an sgd_apply with momentum and nearest
 * rounding that reads an sgd_velocity's output and the same weights, whose other inputs are ready where the
 * velocity runs, and whose result is a state's next value (placed for the whole step, so no value between
 * the two nodes shares its buffer).
 */
function momentumPairs(graph: Graph): Map<number, number> {
  const pairs = new Map<number, number>(), nexts = new Set(graph.state.map((s) => s.next));
  for (const a of graph.nodes) {
    if (a.op !== "sgd_apply" || !(Number(a.attrs.momentum) > 0) || a.attrs.stochastic || !nexts.has(a.id)) {
      continue;
    }
    const [w, d, ...rest] = a.inputs, v = graph.nodes[d];
    if (
      v.op === "sgd_velocity" && v.inputs[2] === w &&
      rest.every((i) => i < d || !graph.nodes[i].inputs.length)
    ) pairs.set(d, a.id);
  }
  return pairs;
}

/**
 * Casts that no step runs (cast id -> its input): the casts of a leaf (mixed precision's fp32 master weights
 * cast to fp16) read only as a matmul's B in a graph that accumulates in fp32. Each such matmul packs B from
 * the leaf and rounds as it packs, which gives the cast's values; the cast's 16-bit copy is never written.
 */
function fusedCasts(graph: Graph, live: ArrayLike<number>): Map<number, number> {
  const fused = new Map<number, number>();
  if (graph.accumulate !== "fp32") return fused;
  const kept = graph.results();
  const readers = new Map<number, Node[]>();
  for (const n of graph.nodes) {
    if (live[n.id]) { for (const i of n.inputs) readers.set(i, [...readers.get(i) ?? [], n]); }
  }
  for (const n of graph.nodes) {
    if (n.op !== "cast" || !live[n.id] || kept.has(n.id) || graph.nodes[n.inputs[0]].inputs.length) continue;
    const rs = readers.get(n.id) ?? [];
    if (rs.length && rs.every((r) => r.op === "matmul" && r.inputs[0] !== n.id)) fused.set(n.id, n.inputs[0]);
  }
  return fused;
}

function compile(engine: Engine, rt: Runtime, graph: Graph): Executable {
  assertSupports(engine, graph);
  const nodes = graph.nodes, live = graph.live();
  const count = (id: number) => sizeOf(nodes[id].shape);
  const size = (id: number) => count(id) * FORMATS[nodes[id].format!].bytes;
  // Two plans over one region, alternating run by run: in the second, each state leaf and its next value
  // trade buffers, so the state a run leaves is already where the next run reads it.
  const even = place(graph, size), plans = [even, swapState(graph, even, size)];
  const base = rt.arena.alloc(even.bytes);
  const acc = FORMAT_CODE[graph.accumulate]!;
  const leaves = nodes.filter((n) => live[n.id] && !n.inputs.length);
  const resultIds = [
    ...Object.entries(graph.outputs),
    ...graph.state.map((s): [string, number] => [s.name, s.next]),
  ];
  const nextOf = new Map(graph.state.map((s) => [s.name, s.next]));
  const pairs = momentumPairs(graph), fused = fusedCasts(graph, live);
  const compiled = plans.map(({ offset }, p) => {
    const operand = (id: number): Operand => {
      const cast = fused.get(id);
      if (cast !== undefined) return { ...operand(cast), roundTo: FORMAT_CODE[nodes[id].format!]! };
      return {
        ptr: base + offset[id],
        fmt: FORMAT_CODE[nodes[id].format!]!,
        format: nodes[id].format!,
        shape: nodes[id].shape,
        size: count(id),
      };
    };
    const args = (n: Node): LowerArgs => ({ node: n, x: n.inputs.map(operand), y: operand(n.id), acc, rt });
    const paired = new Map<number, Lowered>();
    for (const [v, a] of pairs) {
      const [fused, rest] = lowerMomentumPair(args(nodes[v]), args(nodes[a]));
      paired.set(v, fused).set(a, rest);
    }
    const stepNodes = nodes.filter((n) => live[n.id] && n.inputs.length && !fused.has(n.id));
    return {
      steps: stepNodes.map((n) => paired.get(n.id) ?? LOWERINGS[n.op as OpName](args(n)) // Graph.add admits only known ops
      ),
      labels: stepNodes.map((n) =>
        `${n.op}${paired.has(n.id) ? " (fused pair)" : ""} ${n.format} [${n.shape}]`
      ),
      // For state: where the other plan's run (the last one) left its next value.
      inputs: leaves.map((n) => {
        const next = nextOf.get(n.name!);
        return {
          node: n,
          at: base + offset[n.id],
          from: next === undefined ? -1 : base + plans[1 - p].offset[next],
        };
      }),
      results: resultIds.map(([name, id]) => ({
        name,
        at: base + offset[id],
        n: count(id),
        shape: nodes[id].shape,
        format: nodes[id].format!,
      })),
    };
  });
  const scratch = rt.arena.alloc(Math.max(0, ...compiled[0].steps.map((s) => s.scratch)));
  // 16-bit results are widened to f32 in wasm, then copied out in one slice (Float16Array reads are slow).
  // The same buffer stages 16-bit feeds.
  const wide = rt.arena.alloc(
    4 * Math.max(0, ...compiled[0].results.map((r) => r.n), ...leaves.map((n) => count(n.id))),
  );
  const stateNames = new Set(graph.state.map((s) => s.name));
  let last: Record<string, HostTensor> = {}, parity = 0;
  return {
    run(feeds) {
      try {
        return Promise.resolve(runPlan(feeds));
      } catch (e) {
        last = {}; // a failed run may have written over state: take every input from the feeds next time
        throw e;
      }
    },
  };

  function runPlan(feeds: Readonly<Record<string, HostTensor>>): Record<string, HostTensor> {
    // The plan whose leaves are where the last run left its state.
    const plan = compiled[parity ^ 1];
    // State the last run left unread: what this run consumes stays in wasm memory and is never copied out;
    // the rest is copied out now, before this run reuses the memory. A run never writes its leaves, so what it
    // consumes stays readable until it succeeds (a failed run leaves the caller's state intact).
    const consumed: StateResult[] = [];
    for (const [name, t] of Object.entries(last)) {
      if (!(t instanceof StateResult)) continue;
      if (feeds[name] === t) consumed.push(t);
      else t.keep();
    }
    for (const { node, at, from } of plan.inputs) {
      const t = feedFor(node, feeds);
      if (from >= 0 && last[node.name!] === t) {
        // State fed back unchanged from this executable's last run is in wasm memory, in place as a rule.
        const fmt = FORMAT_CODE[node.format!]!;
        if (from !== at) rt.k.copy(from, fmt, 0, at, fmt, 0, sizeOf(node.shape));
      } else if (node.format === "fp32") rt.arena.write(at, "fp32", t.data);
      else {
        // 16-bit feeds (the batch, in fp16 and bf16 policies) are staged as f32 and cast in wasm: storing
        // through a Float16Array costs about 1 ns per element. Host values are exact in their format, so
        // the f32 stage and the cast change no bit.
        const n = t.data.length;
        rt.arena.views.f32.set(t.data, elementIndex(wide, 4));
        const args = {
          op: Map1.CAST,
          x: wide,
          fx: FP32,
          y: at,
          fy: FORMAT_CODE[node.format!]!,
          n,
          factor: 0,
        };
        split(rt, "map1", args, { x: "fx", y: "fy" }, "n");
      }
    }
    const times = stepProfile.times;
    if (!times) { for (const s of plan.steps) s.run(scratch); }
    else {
      for (const [i, s] of plan.steps.entries()) {
        const t0 = performance.now();
        s.run(scratch);
        times.set(plan.labels[i], (times.get(plan.labels[i]) ?? 0) + performance.now() - t0);
      }
    }
    for (const t of consumed) t.consume();
    const out: Record<string, HostTensor> = {};
    for (const { name, at, n, shape, format } of plan.results) {
      const copyOut = () => {
        let from = at;
        if (format !== "fp32") {
          split(rt, "widen", { x: at, fx: FORMAT_CODE[format]!, y: wide, n }, { x: "fx", y: "f32" }, "n");
          from = wide;
        }
        return rt.arena.views.f32.slice(elementIndex(from, 4), elementIndex(from, 4) + n);
      };
      // A training loop feeds state back unread: it stays in wasm memory until something reads it.
      out[name] = stateNames.has(name)
        ? new StateResult(shape, format, copyOut)
        : { shape, format, data: copyOut() };
    }
    last = out;
    parity ^= 1;
    return out;
  }
}

/**
 * A state result of a run, left in wasm memory: its data is copied out when first read, or before the next
 * run of its executable reuses the memory, unless that run consumes it (it is fed back), after which it
 * cannot be read (the engine contract: read a state tensor before feeding it back if it is needed after).
 */
class StateResult implements HostTensor {
  #data: Float32Array | null = null;
  #copyOut: (() => Float32Array) | null;

  constructor(readonly shape: readonly number[], readonly format: FormatName, copyOut: () => Float32Array) {
    this.#copyOut = copyOut;
  }

  /** The values, as f32 (exact for every storage format). */
  get data(): Float32Array {
    if (!this.#data) {
      if (!this.#copyOut) {
        throw new Error(
          "State tensor read after a later run consumed it: read or copy it before feeding it back",
        );
      }
      this.#data = this.#copyOut();
      this.#copyOut = null;
    }
    return this.#data;
  }

  /** Copies the values out now (the next run may overwrite them in wasm memory). */
  keep(): void {
    void this.data;
  }

  /** The next run reads the values in place and may overwrite them: unread, they are gone. */
  consume(): void {
    this.#copyOut = null;
  }
}
