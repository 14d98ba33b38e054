/**
 * The engine interface every kernel engine (ref, wasm, ort, webgpu) implements.
 *
 * An engine receives a finished step graph (formats decided, backward and
 * optimizer update included) and returns an executable that runs it once per
 * call. Engines declare what they can do; {@linkcode assertSupports} turns a
 * request they cannot serve into an error that says why, so there is never a
 * silent fallback to another engine.
 *
 * @module
 */

import type { FormatName } from "../lib/formats/format.ts";
import type { Graph, Node } from "../lib/graph/graph.ts";
import type { Policy } from "../lib/policy/policy.ts";
import { UsageError } from "../lib/errors.ts";

/** Element storage of host tensors (values are exact in the tensor's format either way). */
export type TensorData = Float64Array | Float32Array;

/** A tensor on the host: values already exactly representable in `format`. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly format: FormatName;
  readonly data: TensorData;
}

/** What an engine can run and which guarantees its results carry. */
export interface EngineCapabilities {
  /** Storage/compute formats the engine implements exactly. */
  readonly formats: readonly FormatName[];
  /** Op names it has kernels or lowerings for. */
  readonly ops: readonly string[];
  /** True when every op gives the same bits as the ref engine. */
  readonly bitExactWithRef: boolean;
  /** True when a run gives the same bits when repeated on the same machine. */
  readonly deterministic: boolean;
  /** Accumulation formats it honours; absent: every format in `formats`. */
  readonly accumulate?: readonly FormatName[];
  /** False when it cannot round parameter updates stochastically; absent: it can. */
  readonly stochasticRounding?: boolean;
  /**
   * The 16-bit formats whose arithmetic runs in 16-bit instructions (webgpu's fp16 in WGSL f16); absent or
   * empty: every 16-bit format is emulated (f32 or f64 arithmetic, results rounded in software).
   */
  readonly native16?: readonly FormatName[];
  /** Why a format is missing from `formats` on this machine (webgpu's fp16 without shader-f16), by format. */
  readonly unavailable?: Readonly<Partial<Record<FormatName, string>>>;
}

/** A compiled step graph. */
export interface Executable {
  /**
   * Runs the graph once. `feeds` holds every input and persistent leaf by name.
   * The result holds every named graph output and, under each state binding's
   * name, that tensor's next value. Callers must not modify returned tensors:
   * an engine may recognise one fed back as state and keep its own copy. A
   * returned state tensor fed back into the same executable is consumed: read
   * or copy its data before that run if it is needed afterwards. ort
   * double-buffers state, so a later run may write over it; wasm leaves state
   * in its own memory until the data is first read, and a consumed state
   * tensor that was never read throws when read. webgpu leaves state on the
   * GPU: its data is readable after {@linkcode Engine.settle} (or a later run
   * that does not consume it) has copied it out.
   */
  run(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>>;
}

/** A kernel engine. */
export interface Engine {
  /** Name used on the CLI and in run records. */
  readonly name: string;
  /** One line for `--help` and the README. */
  readonly description: string;
  readonly capabilities: EngineCapabilities;
  /** Compiles a graph; throws if the graph needs something the engine lacks. */
  compile(graph: Graph): Executable;
  /**
   * Makes the data of `tensors` (results of this engine's runs; others are ignored) readable. An engine that
   * keeps returned state on a device copies it to the host here; callers await it before reading state
   * outside a run. Engines whose results are always readable omit it.
   */
  settle?(tensors: Iterable<HostTensor>): Promise<void>;
  /** Runtime facts for the run record (library versions, thread counts, flags). */
  environment(): Record<string, string>;
  /** Releases threads and native resources; engines without any omit it. */
  close?(): void;
}

/** Options an engine may take (each engine reads the ones it has). */
export interface EngineOptions {
  /** Worker threads (wasm); results do not depend on it. */
  readonly threads?: number;
  /** Faster, not bit-exact kernels (wasm: relaxed SIMD with fused multiply-add). */
  readonly fast?: boolean;
  /**
   * False: run as if the adapter lacked WGSL's `shader-f16` feature (webgpu), so fp16 is refused as it is
   * there; results of what runs do not change.
   */
  readonly shaderF16?: boolean;
}

/** The feed of leaf `node`, checked against the node's shape and format (an error says what differs). */
export function feedFor(node: Node, feeds: Readonly<Record<string, HostTensor>>): HostTensor {
  const t = feeds[node.name!];
  if (!t) throw new Error(`Missing feed "${node.name}"`);
  if (
    t.format !== node.format || t.shape.length !== node.shape.length ||
    t.shape.some((d, i) => d !== node.shape[i])
  ) {
    throw new Error(
      `Feed "${node.name}" is [${t.shape}] ${t.format}, the graph wants [${node.shape}] ${node.format}`,
    );
  }
  return t;
}

/** Why an engine with `caps` cannot train under `policy` (a format, its accumulation or rounding), or undefined. */
export function policyProblem(
  caps: Pick<EngineCapabilities, "formats" | "accumulate" | "stochasticRounding" | "unavailable">,
  policy: Pick<Policy, "params" | "compute" | "accumulate" | "state" | "bn" | "rounding">,
): string | undefined {
  const formats = [policy.params, policy.compute, policy.accumulate, policy.state, policy.bn]
    .filter((f): f is FormatName => f !== "params" && !caps.formats.includes(f));
  if (formats.length) {
    const missing = [...new Set(formats)];
    const why = [...new Set(missing.map((f) => caps.unavailable?.[f]).filter((w) => w !== undefined))];
    return `it has no ${missing.join(", ")}${why.length ? ` (${why.join("; ")})` : ""}`;
  }
  return arithmeticProblem(caps, policy.accumulate, policy.rounding);
}

/** Why an engine with `caps` cannot accumulate in `accumulate` or round as `rounding` says, or undefined. */
function arithmeticProblem(
  caps: Pick<EngineCapabilities, "accumulate" | "stochasticRounding">,
  accumulate: FormatName,
  rounding: string,
): string | undefined {
  if (caps.accumulate && !caps.accumulate.includes(accumulate)) {
    return `it cannot accumulate in ${accumulate} (only ${caps.accumulate.join(", ")})`;
  }
  if (caps.stochasticRounding === false && rounding === "stochastic") return "it cannot round stochastically";
  return undefined;
}

/**
 * Throws an error naming every op and format of `graph` that `engine` does not support: a user's request
 * (this model or policy on this engine), so it is a {@linkcode UsageError}, printed as one line.
 */
export function assertSupports(engine: Engine, graph: Graph): void {
  const ops = new Set(engine.capabilities.ops);
  const formats = new Set(engine.capabilities.formats);
  const badOps = new Set<string>();
  const badFormats = new Set<string>();
  for (const n of graph.nodes) {
    if (n.inputs.length > 0 && !ops.has(n.op)) badOps.add(n.op);
    if (n.format === undefined) {
      throw new Error(`Node ${n.id} (${n.op}) has no format: run the policy pass first`);
    }
    if (!formats.has(n.format)) badFormats.add(n.format);
  }
  if (!formats.has(graph.accumulate)) badFormats.add(graph.accumulate);
  const why: string[] = [];
  if (badOps.size) why.push(`ops ${[...badOps].sort().join(", ")}`);
  if (badFormats.size) why.push(`formats ${[...badFormats].sort().join(", ")}`);
  const rounding = graph.nodes.some((n) => n.attrs.stochastic) ? "stochastic" : "nearest";
  const arithmetic = arithmeticProblem(engine.capabilities, graph.accumulate, rounding);
  if (why.length || arithmetic) {
    const lacks = why.length ? [`it lacks ${why.join(" and ")}`] : [];
    throw new UsageError(
      `Engine ${engine.name} cannot run this step graph: ${[...lacks, arithmetic ?? []].flat().join("; ")}`,
    );
  }
}
