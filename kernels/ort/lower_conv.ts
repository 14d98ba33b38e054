/**
 * Lowerings of the convolution and its two gradients, shaped for onnxruntime's fast paths.
 *
 * - onnxruntime's blocked kernel (com.microsoft.nchwc Conv), when the engine found its block size b
 *   (`ctx.nchwc`, kernels/ort/nchwc.ts) and the channels fill whole blocks: the input reordered into channel
 *   blocks and back, the kernel written in the layout that kernel reads ([C/b, kh, kw, b] depthwise,
 *   [O/b, C/b, kh, kw, b, b] dense). The plain Conv runs each image as an im2col and a product, a depthwise
 *   one as a tiny product per image and channel; the blocked kernel convolves directly. Used for
 *   depthwise convolutions and dense ones with a kernel larger than 1x1: the forward pass, the input
 *   gradient (stride 1; strided depthwise ones too, below) and the weight gradient (below). 1x1
 *   convolutions stay plain Conv and products (no im2col there; the blocked kernel measured slower). The layout contract is onnxruntime's own (its NCHWc
 *   transformer writes the same layouts for constant weights); tests/ort_engine_test.ts checks the results.
 *   Measured on training steps at batch 128 (docs/benchmarks.md): forward and input gradients made
 *   MobileNet and VGG-16 about a quarter faster, AlexNet about a tenth; the weight gradients then took
 *   ResNet-32's step to 0.77-0.92 of its time and MobileNet's to 0.51-0.97, VGG-16 and AlexNet within the
 *   noise.
 * - Weight gradient on the blocked kernel: the sums of dW are a convolution of the input with the output
 *   gradient as a kernel dilated by the stride, batch and channels swapped (depthwise: the input as one
 *   image of N*C channels, summed over the images afterwards). Elsewhere an explicit im2col and one matrix
 *   product: the input's windows are cut out by strided Slices of the (padded) input, channels first, and
 *   concatenated into columns [C*kh*kw, N*oh*ow]; the gradient is then dY [O, N*oh*ow] times the columns'
 *   transpose, one Gemm (a batched MatMul per group for grouped and depthwise convolutions). The same
 *   convolution as plain Conv runs as one small product per input channel (measured: the weight gradients
 *   were 42% of a ResNet-32 step); the im2col's copies were still about a quarter of a ResNet-32 step.
 * - Input gradient: for a stride-1 convolution, a Conv of the output gradient with the flipped, transposed
 *   kernel (pads k-1-p). A strided depthwise one on the blocked kernel is the same after the output gradient
 *   is spread with zeros (s^2 times the products, few for a depthwise kernel); other strided ones (or ones
 *   padded by more than k-1) stay a ConvTranspose, which onnxruntime runs as a product per image (and per
 *   channel, depthwise: 94 ms of a MobileNet step).
 *
 * Every product accumulates in float32, as the ops they replace, and nothing is rounded in between.
 *
 * @module
 */

import type { OnnxAttr, OnnxGraph } from "./onnx_graph.ts";
import { NCHWC_DOMAIN } from "./nchwc.ts";
import { type Ctx, list, type Lowering, num, reduce } from "./lowering.ts";
import type { OpName } from "../../lib/graph/ops.ts";

function transpose(g: OnnxGraph, t: string, perm: readonly number[]): string {
  return g.node("Transpose", [t], { perm });
}

function reshape(g: OnnxGraph, t: string, shape: readonly number[]): string {
  return g.node("Reshape", [t, g.i64(shape)]);
}

/** The ONNX window attributes of the conv node. */
function window(ctx: Ctx) {
  return { strides: list(ctx.node, "stride"), pads: list(ctx.node, "pads") };
}

/** output_padding that makes the ConvTranspose produce `size` along each spatial axis. */
function outputPadding(ctx: Ctx, out: readonly number[], size: readonly number[], k: readonly number[]) {
  const [sh, sw] = list(ctx.node, "stride"), [pt, pl, pb, pr] = list(ctx.node, "pads");
  return [size[0] - ((out[0] - 1) * sh + k[0] - pt - pb), size[1] - ((out[1] - 1) * sw + k[1] - pl - pr)];
}

/**
 * x [N, C, H, W] with its channels in blocks of b (ReorderInput): the shape stays [N, C, H, W], the values
 * lie in the order [N, C/b, H, W, b].
 */
function blocked(g: OnnxGraph, x: string): string {
  return g.node(`${NCHWC_DOMAIN}:ReorderInput`, [x]);
}

/** Conv(x, w) with w of shape `ws`, on the NCHWc kernel where it applies (see the top). */
function conv(
  ctx: Ctx,
  [x, w]: readonly [string, string],
  ws: readonly number[],
  attrs: Record<string, OnnxAttr>,
) {
  const g = ctx.g, b = ctx.nchwc, [o, cg, kh, kw] = ws;
  const depthwise = cg === 1 && o === attrs.group, dense = attrs.group === 1 && kh * kw > 1 && cg % b === 0;
  if (!(b > 0 && o % b === 0 && (depthwise || dense))) return g.node("Conv", [x, w], attrs);
  return blockedConv(ctx, blocked(g, x), blockedKernel(ctx, w, ws), ws, attrs);
}

/** Kernel w of shape `ws` in the blocked kernel's layout (see the top). */
function blockedKernel(ctx: Ctx, w: string, ws: readonly number[]): string {
  const g = ctx.g, b = ctx.nchwc, [o, cg, kh, kw] = ws;
  return cg === 1
    ? transpose(g, reshape(g, w, [o / b, b, kh, kw]), [0, 2, 3, 1])
    : transpose(g, reshape(g, w, [o / b, b, cg / b, b, kh, kw]), [0, 2, 4, 5, 3, 1]);
}

/** The NCHWc Conv of a blocked input with a blocked kernel (logical shape `ws`), back in NCHW. */
function blockedConv(
  ctx: Ctx,
  x: string,
  kernel: string,
  ws: readonly number[],
  attrs: Record<string, OnnxAttr>,
): string {
  const g = ctx.g;
  const y = g.node(`${NCHWC_DOMAIN}:Conv`, [x, reshape(g, kernel, ws)], attrs);
  return g.node(`${NCHWC_DOMAIN}:ReorderOutput`, [y], { channels: ws[0] });
}

const conv2d: Lowering = (ctx) =>
  conv(ctx, [ctx.x(0), ctx.x(1)], ctx.shape(1), { ...window(ctx), group: num(ctx.node, "groups") });

/** W [O, Cg, kh, kw] as the kernel of the transposed convolution: [C, Og, kh, kw], flipped in space. */
function flippedTransposed(g: OnnxGraph, w: string, ws: readonly number[], groups: number): string {
  const [o, cg, kh, kw] = ws, og = o / groups;
  // Og and Cg swap within each group; with either of them 1 (depthwise) that moves nothing.
  const t = og === 1 || cg === 1
    ? reshape(g, w, [cg * groups, og, kh, kw])
    : groups === 1
    ? transpose(g, w, [1, 0, 2, 3])
    : reshape(g, transpose(g, reshape(g, w, [groups, og, cg, kh, kw]), [0, 2, 1, 3, 4]), [
      cg * groups,
      og,
      kh,
      kw,
    ]);
  if (kh === 1 && kw === 1) return t;
  // Steps of -1 from the last element; an end of -(k+1) clamps to "before the first".
  return g.node("Slice", [t, g.i64([-1, -1]), g.i64([-kh - 1, -kw - 1]), g.i64([2, 3]), g.i64([-1, -1])]);
}

/**
 * dY [N, C, oh, ow] blocked, with s-1 zeros after each value along each spatial axis (stride s), cut to
 * `len` (what lies past it reaches only the padding): the output gradient of a strided convolution as that
 * of a stride-1 one. Spread in the blocked layout, the pad copies whole blocks of b channels.
 */
function spreadBlocked(ctx: Ctx, dy: string, [sh, sw]: number[], len: number[]) {
  const g = ctx.g, b = ctx.nchwc, [n, c, oh, ow] = ctx.shape(0);
  const spread = g.node("Pad", [
    reshape(g, blocked(g, dy), [n, c / b, oh, 1, ow, 1, b]),
    g.i64([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1, 0]),
  ]);
  const u = reshape(g, spread, [n, c / b, oh * sh, ow * sw, b]);
  const cut = len[0] === oh * sh && len[1] === ow * sw
    ? u
    : g.node("Slice", [u, g.i64([0, 0]), g.i64(len), g.i64([2, 3])]);
  return reshape(g, cut, [n, c, len[0], len[1]]); // the shape the blocked kernel expects of its input
}

const conv2dGradInput: Lowering = (ctx) => {
  const gs = ctx.shape(0), ws = ctx.shape(1), inShape = list(ctx.node, "inShape");
  const groups = num(ctx.node, "groups"), k = [ws[2], ws[3]];
  const [sh, sw] = list(ctx.node, "stride"), [pt, pl, pb, pr] = list(ctx.node, "pads");
  const back = [k[0] - 1 - pt, k[1] - 1 - pl, k[0] - 1 - pb, k[1] - 1 - pr];
  const kernel = () => flippedTransposed(ctx.g, ctx.x(1), ws, groups);
  const kernelShape = [ws[1] * groups, ws[0] / groups, k[0], k[1]];
  if (sh === 1 && sw === 1 && back.every((p) => p >= 0)) {
    return conv(ctx, [ctx.x(0), kernel()], kernelShape, { strides: [1, 1], pads: back, group: groups });
  }
  // A strided depthwise one on the blocked kernel (see the top).
  const depthwise = ws[1] === 1 && groups === ws[0];
  if (depthwise && ctx.nchwc > 0 && groups % ctx.nchwc === 0 && back[0] >= 0 && back[1] >= 0) {
    const len = [Math.min(gs[2] * sh, inShape[2] + pt), Math.min(gs[3] * sw, inShape[3] + pl)];
    const pads = [back[0], back[1], inShape[2] + pt - len[0], inShape[3] + pl - len[1]];
    const u = spreadBlocked(ctx, ctx.x(0), [sh, sw], len);
    const attrs = { strides: [1, 1], pads, group: groups };
    return blockedConv(ctx, u, blockedKernel(ctx, kernel(), kernelShape), kernelShape, attrs);
  }
  return ctx.g.node("ConvTranspose", [ctx.x(0), ctx.x(1)], {
    ...window(ctx),
    kernel_shape: k,
    group: groups,
    output_padding: outputPadding(ctx, [gs[2], gs[3]], [inShape[2], inShape[3]], k),
  });
};

/** im2col of x [N, C, H, W]: columns [C, kh*kw*N, oh, ow] (window offset, then sample, per channel). */
function columns(ctx: Ctx, out: readonly number[]): string {
  const { g } = ctx;
  const [kh, kw] = list(ctx.node, "kernel"), [sh, sw] = list(ctx.node, "stride");
  const [pt, pl, pb, pr] = list(ctx.node, "pads");
  // [C, N, H, W]: each slice below is then one block per channel.
  let xt = transpose(g, ctx.x(0), [1, 0, 2, 3]);
  if (pt || pl || pb || pr) xt = g.node("Pad", [xt, g.i64([0, 0, pt, pl, 0, 0, pb, pr])]);
  const [h, w] = [ctx.shape(0)[2] + pt + pb, ctx.shape(0)[3] + pl + pr];
  const slices: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const end = [i + (out[0] - 1) * sh + 1, j + (out[1] - 1) * sw + 1];
      const whole = i === 0 && j === 0 && end[0] === h && end[1] === w && sh === 1 && sw === 1;
      slices.push(
        whole ? xt : g.node("Slice", [xt, g.i64([i, j]), g.i64(end), g.i64([2, 3]), g.i64([sh, sw])]),
      );
    }
  }
  return slices.length === 1 ? slices[0] : g.node("Concat", slices, { axis: 1 });
}

/**
 * The weight gradient of a dense or depthwise convolution as one convolution on the NCHWc kernel (see the
 * top), the output gradient dY [N, O, oh, ow] the kernel, dilated by the stride, and written straight into
 * the blocked layout (ReorderInput blocks channels; whole blocks move after it):
 * - dense: batch and channels swapped, the input [C, N, H, W] convolved with dY as [O, N, oh, ow] gives
 *   [C, O, kh, kw];
 * - depthwise: the input as one image of N*C channels convolved depthwise with dY as N*C kernels gives each
 *   image's [N, C, kh, kw], summed over the images.
 */
function gradWeightNchwc(ctx: Ctx, depthwise: boolean): string {
  const { g } = ctx, b = ctx.nchwc;
  const [n, c, h, w] = ctx.shape(0), [, o, oh, ow] = ctx.shape(1);
  const [kh, kw] = list(ctx.node, "kernel"), [sh, sw] = list(ctx.node, "stride");
  const [pt, pl] = list(ctx.node, "pads");
  // Bottom and right pads that make the output kh x kw; where the forward windows left the last rows or
  // columns unused, zero pads and a slice that cuts the extra ones off.
  const pb = Math.max(0, kh + (oh - 1) * sh - h - pt), pr = Math.max(0, kw + (ow - 1) * sw - w - pl);
  const window = { strides: [1, 1], pads: [pt, pl, pb, pr], dilations: [sh, sw] };
  const cut = (t: string) =>
    h + pt + pb - (oh - 1) * sh === kh && w + pl + pr - (ow - 1) * sw === kw
      ? t
      : g.node("Slice", [t, g.i64([0, 0]), g.i64([kh, kw]), g.i64([2, 3])]);
  if (depthwise) {
    const kernel = blocked(g, reshape(g, ctx.x(1), [1, n * c, oh, ow]));
    const image = blocked(g, reshape(g, ctx.x(0), [1, n * c, h, w]));
    const each = cut(blockedConv(ctx, image, kernel, [n * c, 1, oh, ow], { ...window, group: n * c }));
    return reshape(g, reduce(g, "ReduceSum", reshape(g, each, [n, c * kh * kw]), [0], false), [c, 1, kh, kw]);
  }
  const blocks = reshape(g, blocked(g, ctx.x(1)), [n / b, b, o / b, oh, ow, b]);
  const kernel = transpose(g, blocks, [2, 0, 3, 4, 1, 5]);
  const x = blocked(g, transpose(g, ctx.x(0), [1, 0, 2, 3]));
  const dw = cut(blockedConv(ctx, x, kernel, [o, n, oh, ow], { ...window, group: 1 }));
  return transpose(g, dw, [1, 0, 2, 3]);
}

const conv2dGradWeight: Lowering = (ctx) => {
  const { g } = ctx;
  const [n, c] = ctx.shape(0), gs = ctx.shape(1), groups = num(ctx.node, "groups");
  const [kh, kw] = list(ctx.node, "kernel"), o = gs[1], p = gs[2] * gs[3], k = kh * kw;
  const b = ctx.nchwc;
  // 1x1 kernels keep the product: they need no im2col (measured slower as a blocked convolution).
  if (b > 0 && k > 1 && p > 1) {
    if (groups === 1 && n % b === 0 && o % b === 0) return gradWeightNchwc(ctx, false);
    if (groups === c && o === c && (n * c) % b === 0) return gradWeightNchwc(ctx, true);
  }
  const cols = columns(ctx, [gs[2], gs[3]]);
  if (groups === 1) {
    const dy = reshape(g, transpose(g, ctx.x(1), [1, 0, 2, 3]), [o, n * p]);
    const dw = g.node("Gemm", [dy, reshape(g, cols, [c * k, n * p])], { transB: 1 });
    return reshape(g, dw, [o, c, kh, kw]);
  }
  const cg = c / groups, og = o / groups;
  // Per group: columns [Cg*k, N*P] times dY's [N*P, Og], then [Og, Cg*k] per group.
  const dy = reshape(g, transpose(g, reshape(g, ctx.x(1), [n, groups, og, p]), [1, 0, 3, 2]), [
    groups,
    n * p,
    og,
  ]);
  const dw = g.node("MatMul", [reshape(g, cols, [groups, cg * k, n * p]), dy]);
  return reshape(g, og === 1 ? dw : transpose(g, dw, [0, 2, 1]), [o, cg, kh, kw]);
};

/** Lowerings of this file by op name. */
export const CONV = {
  conv2d,
  conv2d_grad_input: conv2dGradInput,
  conv2d_grad_weight: conv2dGradWeight,
} satisfies Partial<Record<OpName, Lowering>>;
