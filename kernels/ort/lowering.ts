/**
 * What a lowering receives: the node, its inputs as float32 ONNX tensors, and helpers that round to
 * the node's format the way the ref kernels do.
 *
 * Every op computes in float32 (one lowering serves every format, as one ref kernel does) and the driver
 * stores its result in the node's format with one Cast: fp16 and bf16 values live in 16-bit ONNX tensors
 * between ops, so each op's output is really rounded to its format. Where a ref kernel rounds an
 * intermediate (the optimizer updates, as Keras does), the lowering calls `round`.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { Graph, Node } from "../../lib/graph/graph.ts";
import { ELEM, ELEM_OF, type OnnxGraph } from "./onnx_graph.ts";

/** A dropout mask the host computes per step and feeds as a bool input (see kernels/ort/model.ts). */
export interface MaskInput {
  readonly name: string;
  /** Node id of the scalar seed input. */
  readonly seed: number;
  readonly salt: number;
  readonly rate: number;
  readonly size: number;
}

/** Arguments of one lowering. */
export interface Ctx {
  readonly g: OnnxGraph;
  readonly node: Node;
  readonly graph: Graph;
  /** Input `k` as a float32 tensor. */
  x(k: number): string;
  /** Input `k`'s shape. */
  shape(k: number): readonly number[];
  /** Rounds a float32 tensor to the node's format and back (nothing for fp32). */
  round(t: string): string;
  /** onnxruntime's NCHWc block size, 0 for plain ONNX (kernels/ort/nchwc.ts). */
  readonly nchwc: number;
  /** The name of a bool mask input the host feeds (dropout). */
  mask(seed: number, salt: number, rate: number, size: number): string;
}

/** A lowering: emits ONNX nodes for `ctx.node` and returns its value as a float32 tensor name. */
export type Lowering = (ctx: Ctx) => string;

/** Casts `t` to `elem` (an ONNX element type). */
export function cast(g: OnnxGraph, t: string, elem: number): string {
  return g.node("Cast", [t], { to: elem });
}

/** Rounds a float32 tensor to `format` and back to float32 (identity for fp32). */
export function roundTo(g: OnnxGraph, t: string, format: FormatName): string {
  return format === "fp32" ? t : cast(g, cast(g, t, ELEM_OF[format]), ELEM.FLOAT);
}

export { list, num } from "../ref/kernel.ts";

/** The axes 0..rank-1 without those in `keep`. */
export function axesExcept(rank: number, keep: readonly number[]): number[] {
  return Array.from({ length: rank }, (_, i) => i).filter((i) => !keep.includes(i));
}

/** ReduceSum or ReduceMean of `t` over `axes` (opset 18: axes as an input). */
export function reduce(
  g: OnnxGraph,
  op: "ReduceSum" | "ReduceMean",
  t: string,
  axes: readonly number[],
  keepdims: boolean,
): string {
  return g.node(op, [t, g.i64(axes)], { keepdims: keepdims ? 1 : 0 });
}

/** A binary float op with a float32 scalar constant on the right. */
export function withScalar(g: OnnxGraph, op: string, t: string, value: number): string {
  return g.node(op, [t, g.f32(value)]);
}
