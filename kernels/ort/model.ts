/**
 * Lowers a whole step graph (forward, loss, backward, optimizer update) to one ONNX model.
 *
 * Each live node becomes a few ONNX nodes that compute in float32 and one Cast that stores the result in
 * the node's format, so fp16/bf16 values are 16-bit tensors between ops. Leaves become graph inputs (or
 * initializers, for an exported model), outputs and next state values become graph outputs.
 *
 * At the JavaScript boundary fp16 and bf16 tensors travel as float32 holding their exact values and are
 * cast inside the model. This keeps the lowered model runnable by onnxruntime-node's JavaScript API too
 * (the tests check the engine against it): that API has no bfloat16 tensor type, and for float16 it turns
 * every Uint16Array into Deno's native Float16Array, which its native binding cannot read (it sees zero
 * bytes). Inside the model every computed fp16/bf16 value is a 16-bit tensor. The engine's fp16/bf16 inputs
 * hold exact values, so their float32 tensors are the float32 views the ops read (`exactInputs`); their
 * 16-bit forms are made only for the ops that move values (below).
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { Graph } from "../../lib/graph/graph.ts";
import type { HostTensor } from "../engine.ts";
import { CONV } from "./lower_conv.ts";
import { LINEAR } from "./lower_linear.ts";
import { NORM } from "./lower_norm.ts";
import { OPTIM } from "./lower_optim.ts";
import { POINTWISE } from "./lower_pointwise.ts";
import { dropoutKeeps } from "../ref/elementwise.ts";
import { cast, type Ctx, type Lowering, type MaskInput, roundTo } from "./lowering.ts";
import { ELEM, ELEM_OF, OnnxGraph } from "./onnx_graph.ts";
import { loadProto } from "./runtime.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { storedBytes } from "../../lib/formats/stored.ts";

/** Every lowering by op name. */
export const LOWERINGS: Readonly<Record<OpName, Lowering>> = {
  ...LINEAR,
  ...CONV,
  ...POINTWISE,
  ...NORM,
  ...OPTIM,
};

/**
 * Ops that only move values. On fp16 and bf16 values they run on the 16-bit tensors themselves, without
 * the Casts to float32 and back around them: the same bits (every value is copied, none computed), and
 * the Casts were a third of a ViT-8 fp16 step's kernel time (docs/benchmarks.md).
 */
const MOVES: ReadonlySet<string> = new Set<OpName>(["reshape", "transpose", "concat", "slice", "row"]);

/** The ONNX element type a tensor of `format` has at the JavaScript boundary. */
export function boundaryElem(format: FormatName): number {
  return format === "fp64" ? ELEM.DOUBLE : ELEM.FLOAT;
}

/** A graph input or output and the step-graph tensor it carries. */
export interface Port {
  /** Name in the ONNX model. */
  readonly name: string;
  /** Leaf name (inputs), output or state name (outputs). */
  readonly key: string;
  readonly id: number;
  readonly format: FormatName;
  readonly shape: readonly number[];
}

/** A lowered step graph. */
export interface LoweredModel {
  /** The serialised ModelProto. */
  readonly bytes: Uint8Array;
  readonly inputs: readonly Port[];
  readonly outputs: readonly Port[];
  /** Dropout masks the host computes and feeds each step. */
  readonly masks: readonly MaskInput[];
}

/** Options of {@linkcode lowerGraph}. */
export interface LowerOptions {
  /** Leaves embedded as initializers (an exported model's weights) instead of inputs. */
  readonly constants?: Readonly<Record<string, HostTensor>>;
  /** Model name and doc string. */
  readonly name?: string;
  readonly doc?: string;
  /**
   * onnxruntime's NCHWc block size (kernels/ort/nchwc.ts): convolutions then run on its blocked kernel
   * (kernels/ort/lower_conv.ts says which). 0 or absent: plain ONNX only (an exported model).
   */
  readonly nchwc?: number;
  /**
   * The host feeds 16-bit inputs as float32 holding exact values (the engine's HostTensor contract), so
   * that tensor serves as their float32 view. Absent: the model rounds its float32 inputs to their formats
   * (an exported model, whose users feed any float32).
   */
  readonly exactInputs?: boolean;
}

/** Writes dropout mask `m` for the step seed `seed` into `keep` (ref's counter hash, 1 = kept) and returns it. */
export function fillMask(m: MaskInput, seed: number, keep: Uint8Array): Uint8Array {
  for (let i = 0; i < m.size; i++) keep[i] = dropoutKeeps(seed, m.salt, i, m.rate) ? 1 : 0;
  return keep;
}

/** Lowers the live part of `graph`; throws naming the first op without a lowering. */
export async function lowerGraph(graph: Graph, options: LowerOptions = {}): Promise<LoweredModel> {
  const g = new OnnxGraph();
  const live = graph.live();
  const stored: string[] = [], asF32: string[] = [];
  const inputs: Port[] = [], masks: MaskInput[] = [];
  // Output names: a state's next value shares its leaf's (input's) name, so it becomes "<name>:next".
  const taken = new Set(
    graph.nodes.filter((n) => live[n.id] && !n.inputs.length && !options.constants?.[n.name!]).map((n) =>
      n.name!
    ),
  );
  const ports = [...Object.entries(graph.outputs), ...graph.state.map((s) => [s.name, s.next] as const)].map(
    ([key, id]) => {
      const name = taken.has(key) ? `${key}:next` : key;
      taken.add(name);
      return { key, id, name };
    },
  );
  const produced = new Set<string>();
  // A value's stored form; a 16-bit input's is cast from its float32 boundary tensor when first asked for.
  const st = (id: number) => {
    const { name, format } = graph.nodes[id];
    return (stored[id] ??= cast(g, name!, ELEM_OF[format!]));
  };
  const f32 = (id: number) => {
    const f = graph.nodes[id].format!;
    return (asF32[id] ??= f === "fp32" ? stored[id] : cast(g, st(id), ELEM.FLOAT));
  };
  for (const n of graph.nodes) {
    if (!live[n.id]) continue;
    const format = n.format!;
    if (n.inputs.length === 0) {
      const c = options.constants?.[n.name!];
      if (c) {
        // Initializers are stored in their own format: an exported fp16 model is half the size.
        if (c.format !== format) {
          throw new Error(`Constant ${n.name} is ${c.format}, the graph wants ${format}`);
        }
        stored[n.id] = g.tensor(ELEM_OF[format], n.shape, storedBytes(c), n.name);
        continue;
      }
      const name = n.name!;
      g.input(name, boundaryElem(format), n.shape);
      inputs.push({ name, key: name, id: n.id, format, shape: n.shape });
      // An exact 16-bit input's float32 tensor is already its float32 view: no Cast to 16 bits and back,
      // and no second float32 copy of every weight, live for the whole step.
      if (boundaryElem(format) === ELEM_OF[format]) stored[n.id] = name;
      else if (options.exactInputs) asF32[n.id] = name;
      else stored[n.id] = cast(g, name, ELEM_OF[format]);
      continue;
    }
    const lower = LOWERINGS[n.op as OpName]; // Graph.add admits only ops of lib/graph/ops.ts
    if (!lower) throw new Error(`Op ${n.op} has no ONNX lowering`);
    const moves = format !== "fp32" && MOVES.has(n.op) &&
      n.inputs.every((i) => graph.nodes[i].format === format);
    const ctx: Ctx = {
      g,
      node: n,
      graph,
      x: moves ? (k) => st(n.inputs[k]) : (k) => f32(n.inputs[k]),
      shape: (k) => graph.nodes[n.inputs[k]].shape,
      round: (t) => roundTo(g, t, format),
      nchwc: options.nchwc ?? 0,
      mask: (seed, salt, rate, size) => {
        const known = masks.find((m) =>
          m.seed === seed && m.salt === salt && m.rate === rate && m.size === size
        );
        if (known) return known.name;
        const name = `dropout_mask_${masks.length}`;
        g.input(name, ELEM.BOOL, [size]);
        masks.push({ name, seed, salt, rate, size });
        return name;
      },
    };
    const y = lower(ctx);
    if (moves) stored[n.id] = y;
    else if (format !== "fp32") stored[n.id] = cast(g, y, ELEM_OF[format]);
    else {
      // An fp32 graph output is written under its own name by the node that computes it: no Identity copy.
      // (Not when y is another value's float32 view, as a cast lowering returns: renaming would orphan it.)
      const port = ports.find((p) => p.id === n.id);
      const direct = port !== undefined && !asF32.includes(y) && g.renameLast(y, port.name);
      if (direct) produced.add(port.name);
      stored[n.id] = asF32[n.id] = direct ? port.name : y;
    }
  }
  const outputs: Port[] = [];
  for (const p of ports) {
    const node = graph.nodes[p.id], elem = boundaryElem(node.format!);
    if (!produced.has(p.name)) {
      const same = elem === ELEM_OF[node.format!];
      g.nodeTo(same ? "Identity" : "Cast", [st(p.id)], p.name, same ? {} : { to: elem });
    }
    g.output(p.name, elem, node.shape);
    outputs.push({ name: p.name, key: p.key, id: p.id, format: node.format!, shape: node.shape });
  }
  const bytes = g.encode(await loadProto(), options.name ?? "f16repro_step", options.doc);
  return { bytes, inputs, outputs, masks };
}
