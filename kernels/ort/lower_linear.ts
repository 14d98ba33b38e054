/**
 * Lowerings of the dot-product and window ops: matmul, bias, pools (convolutions: kernels/ort/lower_conv.ts).
 *
 * Max-pool gradients scatter-add into the
 * positions MaxPool's second output names (the first maximum of each window, as in ref).
 *
 * @module
 */

import { windowOut } from "../../lib/graph/ops.ts";
import type { OnnxGraph } from "./onnx_graph.ts";
import { axesExcept, type Ctx, list, type Lowering, num, reduce } from "./lowering.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { sizeOf } from "../../lib/graph/graph.ts";

/** The ONNX window attributes of a conv or pool node. */
function window(ctx: Ctx, kernel?: readonly number[]) {
  const a: Record<string, readonly number[]> = {
    strides: list(ctx.node, "stride"),
    pads: list(ctx.node, "pads"),
  };
  if (kernel) a.kernel_shape = kernel;
  return a;
}

/** output_padding that makes a transposed window op produce `size` along each spatial axis. */
function outputPadding(ctx: Ctx, out: readonly number[], size: readonly number[], k: readonly number[]) {
  const [sh, sw] = list(ctx.node, "stride"), [pt, pl, pb, pr] = list(ctx.node, "pads");
  return [size[0] - ((out[0] - 1) * sh + k[0] - pt - pb), size[1] - ((out[1] - 1) * sw + k[1] - pl - pr)];
}

function transpose(g: OnnxGraph, t: string, perm: readonly number[]): string {
  return g.node("Transpose", [t], { perm });
}

const matmul: Lowering = (ctx) => {
  const { g, node } = ctx;
  const ta = node.attrs.transA ? 1 : 0, tb = node.attrs.transB ? 1 : 0;
  if (ctx.shape(0).length === 2) return g.node("Gemm", [ctx.x(0), ctx.x(1)], { transA: ta, transB: tb });
  const a = ta ? transpose(g, ctx.x(0), [0, 2, 1]) : ctx.x(0);
  const b = tb ? transpose(g, ctx.x(1), [0, 2, 1]) : ctx.x(1);
  return g.node("MatMul", [a, b]);
};

const biasAdd: Lowering = (ctx) => {
  const rank = ctx.shape(0).length, bs = ctx.shape(1), after = rank - num(ctx.node, "axis") - bs.length;
  const b = after === 0
    ? ctx.x(1)
    : ctx.g.node("Reshape", [ctx.x(1), ctx.g.i64([...bs, ...new Array(after).fill(1)])]);
  return ctx.g.node("Add", [ctx.x(0), b]);
};

const sumTo: Lowering = (ctx) => {
  const axis = num(ctx.node, "axis"), rank = num(ctx.node, "rank");
  const axes = axesExcept(ctx.shape(0).length, Array.from({ length: rank }, (_, i) => axis + i));
  return axes.length ? reduce(ctx.g, "ReduceSum", ctx.x(0), axes, false) : ctx.g.node("Identity", [ctx.x(0)]);
};

const maxpool: Lowering = (ctx) => ctx.g.node("MaxPool", [ctx.x(0)], window(ctx, list(ctx.node, "kernel")));

const maxpoolGrad: Lowering = (ctx) => {
  const { g } = ctx;
  const xs = ctx.shape(0), size = sizeOf(xs);
  const [, at] = g.nodeN("MaxPool", [ctx.x(0)], window(ctx, list(ctx.node, "kernel")), 2);
  const flat = g.i64([-1]);
  const zeros = g.node("ConstantOfShape", [g.i64([size])]);
  const routed = g.node("ScatterElements", [
    zeros,
    g.node("Reshape", [at, flat]),
    g.node("Reshape", [ctx.x(1), flat]),
  ], {
    axis: 0,
    reduction: "add",
  });
  return g.node("Reshape", [routed, g.i64(xs)]);
};

const avgpool: Lowering = (ctx) =>
  ctx.g.node("AveragePool", [ctx.x(0)], { ...window(ctx, list(ctx.node, "kernel")), count_include_pad: 0 });

/** Number of in-bounds elements of each window along one axis. */
function counts(size: number, k: number, stride: number, before: number, after: number): number[] {
  return Array.from({ length: windowOut(size, k, stride, before, after) }, (_, o) => {
    const lo = o * stride - before;
    return Math.min(lo + k, size) - Math.max(lo, 0);
  });
}

const avgpoolGrad: Lowering = (ctx) => {
  const { g, node } = ctx;
  const inShape = list(node, "inShape"), k = list(node, "kernel"), [sh, sw] = list(node, "stride");
  const [pt, pl, pb, pr] = list(node, "pads"), gs = ctx.shape(0), ch = inShape[1];
  const rows = counts(inShape[2], k[0], sh, pt, pb), cols = counts(inShape[3], k[1], sw, pl, pr);
  const n = g.f32(rows.flatMap((r) => cols.map((c) => r * c)), [1, 1, rows.length, cols.length]);
  const share = g.node("Div", [ctx.x(0), n]);
  if (
    pt + pl + pb + pr === 0 && sh === k[0] && sw === k[1] && inShape[2] === gs[2] * sh &&
    inShape[3] === gs[3] * sw
  ) {
    // Windows that tile the input: each input element gets its one window's share, a broadcast (a depthwise
    // ConvTranspose runs a tiny product per image and channel: 27 ms of a MobileNet step for a 2x2 pool).
    const [b, c, oh, ow] = gs;
    const spread = g.node("Expand", [
      g.node("Reshape", [share, g.i64([b, c, oh, 1, ow, 1])]),
      g.i64([1, 1, 1, sh, 1, sw]),
    ]);
    return g.node("Reshape", [spread, g.i64(inShape)]);
  }
  const ones = g.f32(new Array(ch * k[0] * k[1]).fill(1), [ch, 1, k[0], k[1]]);
  return g.node("ConvTranspose", [share, ones], {
    ...window(ctx, k),
    group: ch,
    output_padding: outputPadding(ctx, [gs[2], gs[3]], [inShape[2], inShape[3]], k),
  });
};

/** Lowerings of this file by op name. */
export const LINEAR = {
  matmul,
  bias_add: biasAdd,
  sum_to: sumTo,
  maxpool,
  maxpool_grad: maxpoolGrad,
  avgpool,
  avgpool_grad: avgpoolGrad,
} satisfies Partial<Record<OpName, Lowering>>;
