/**
 * Layers, each a small function over the {@linkcode ModelBuilder} that adds
 * primitive ops. These are the pieces the paper's CIFAR-10 networks are made
 * of (PAPER.md): dense, conv (plain, depthwise and separable), pooling, batch
 * and layer norm, dropout, activations, residual add, concat, channel padding
 * and multi-head attention. Defaults follow Keras.
 *
 * @module
 */

import { padsFor } from "../graph/ops.ts";
import type { ModelBuilder } from "./builder.ts";
import { sizeOf } from "../graph/graph.ts";

/** Activation names a layer accepts. */
export type Activation = "relu" | "tanh" | "gelu" | "linear";

/** Applies an activation. */
export function activation(b: ModelBuilder, x: number, act: Activation): number {
  return act === "linear" ? x : b.op(act, [x]);
}

/** Dense layer on the last axis: x W + bias, then the activation. Inputs of rank > 2 are flattened around it. */
export function dense(
  b: ModelBuilder,
  x: number,
  units: number,
  act: Activation = "linear",
  name = b.layerName("dense"),
): number {
  const s = b.shape(x), d = s.at(-1)!;
  const w = b.param(`${name}/kernel`, [d, units], { kind: "glorot_uniform", fanIn: d, fanOut: units });
  const bias = b.param(`${name}/bias`, [units], { kind: "zeros" });
  const x2 = s.length === 2 ? x : b.op("reshape", [x], { shape: [sizeOf(s.slice(0, -1)), d] });
  let y = b.op("bias_add", [b.op("matmul", [x2, w]), bias], { axis: 1 });
  if (s.length !== 2) y = b.op("reshape", [y], { shape: [...s.slice(0, -1), units] });
  return activation(b, y, act);
}

/**
 * Window padding: TensorFlow's "same" or "valid", or a number of pixels on
 * every side (Keras's ZeroPadding2D followed by a "valid" window).
 */
export type Padding = "same" | "valid" | number;

/** The [top, left, bottom, right] pads of a `kernel` window moving by `stride` over an [.., h, w] input. */
function windowPads(padding: Padding, h: number, w: number, kernel: number, stride: number): number[] {
  if (typeof padding === "number") return [padding, padding, padding, padding];
  const [pt, pb] = padsFor(padding, h, kernel, stride), [pl, pr] = padsFor(padding, w, kernel, stride);
  return [pt, pl, pb, pr];
}

/** Options of {@linkcode conv2d}. */
export interface ConvOptions {
  stride?: number;
  /** Convolutions pad with zeros, so a number is exactly Keras's ZeroPadding2D before the conv. */
  padding?: Padding;
  activation?: Activation;
  useBias?: boolean;
  /** Depthwise: one filter per input channel (filters must equal the channel count). */
  depthwise?: boolean;
  name?: string;
}

/** 2-D convolution on NCHW input, square kernel. */
export function conv2d(
  b: ModelBuilder,
  x: number,
  filters: number,
  kernel: number,
  o: ConvOptions = {},
): number {
  const [, c, h, w] = b.shape(x);
  const stride = o.stride ?? 1, groups = o.depthwise ? c : 1;
  if (o.depthwise && filters !== c) throw new Error(`Depthwise conv needs filters = channels (${c})`);
  const name = o.name ?? b.layerName(o.depthwise ? "depthwise_conv2d" : "conv2d");
  const rf = kernel * kernel;
  const fanIn = (c / groups) * rf * (o.depthwise ? groups : 1), fanOut = (o.depthwise ? 1 : filters) * rf;
  const kw = b.param(`${name}/kernel`, [filters, c / groups, kernel, kernel], {
    kind: "glorot_uniform",
    fanIn,
    fanOut,
  });
  const pads = windowPads(o.padding ?? "valid", h, w, kernel, stride);
  let y = b.op("conv2d", [x, kw], { stride: [stride, stride], pads, groups });
  if (o.useBias ?? true) {
    y = b.op("bias_add", [y, b.param(`${name}/bias`, [filters], { kind: "zeros" })], { axis: 1 });
  }
  return activation(b, y, o.activation ?? "linear");
}

/**
 * Keras's SeparableConv2D without bias (stride 1): a depthwise conv, rounded
 * as its own tensor as TensorFlow does, then a 1x1 pointwise conv; both
 * kernels glorot-uniform.
 */
export function separableConv2d(
  b: ModelBuilder,
  x: number,
  filters: number,
  kernel: number,
  padding: Padding = "valid",
): number {
  const name = b.layerName("separable_conv2d"), c = b.shape(x)[1];
  const opts = { padding, useBias: false, depthwise: true, name: `${name}/depthwise` };
  const d = conv2d(b, x, c, kernel, opts);
  return conv2d(b, d, filters, 1, { useBias: false, name: `${name}/pointwise` });
}

/**
 * Max or average pooling (TensorFlow padding semantics: padded taps take no
 * part in a window). A numeric padding is therefore NOT Keras's ZeroPadding2D
 * in general; it equals it for a max pool over non-negative input (a ReLU
 * output), where a zero never exceeds the window's largest real value.
 */
export function pool(
  b: ModelBuilder,
  x: number,
  kind: "max" | "avg",
  size: number,
  stride = size,
  padding: Padding = "valid",
): number {
  const [, , h, w] = b.shape(x);
  return b.op(kind === "max" ? "maxpool" : "avgpool", [x], {
    kernel: [size, size],
    stride: [stride, stride],
    pads: windowPads(padding, h, w, size, stride),
  });
}

/** Global average pooling: [N, C, H, W] -> [N, C]. */
export function globalAvgPool(b: ModelBuilder, x: number): number {
  const [n, c, h, w] = b.shape(x);
  const y = b.op("avgpool", [x], { kernel: [h, w], stride: [h, w], pads: [0, 0, 0, 0] });
  return b.op("reshape", [y], { shape: [n, c] });
}

/** Flatten to [N, rest]. */
export function flatten(b: ModelBuilder, x: number): number {
  const s = b.shape(x);
  return s.length === 2 ? x : b.op("reshape", [x], { shape: [s[0], sizeOf(s.slice(1))] });
}

/**
 * The factor Keras's fused batch norm applies to the batch variance it feeds the moving variance: Bessel's
 * correction n / (n - 1) over the n = N*H*W values of a channel, for 4-D input only (Keras fuses 4-D input;
 * other ranks take `tf.nn.moments`, the biased variance). TensorFlow's FusedBatchNorm kernel
 * (tensorflow/core/kernels/fused_batch_norm_op.cc: `batch_var = variance * rest_size_adjust`) uses 1 for
 * n = 1, and Keras keeps the corrected value (`_bessels_correction_test_only` is true in
 * keras/layers/normalization/batch_normalization.py).
 */
export function movingVarianceFactor(shape: readonly number[]): number {
  if (shape.length !== 4) return 1;
  const n = shape[0] * shape[2] * shape[3];
  return n > 1 ? n / (n - 1) : 1;
}

/**
 * Batch normalisation over axis 1 (Keras defaults: momentum 0.99, epsilon 1e-3). In training the batch is
 * normalised with its biased variance and the moving variance averages the Bessel-corrected one, as Keras
 * does ({@linkcode movingVarianceFactor}). The correction is a `scale` of the moments in the batch-norm
 * format: one more rounding point (the product), as in TensorFlow's float32 product; our factor is the exact
 * n / (n - 1), which TensorFlow rounds to float32 first.
 */
export function batchNorm(b: ModelBuilder, x: number, momentum = 0.99, eps = 1e-3): number {
  const name = b.layerName("batch_normalization"), c = b.shape(x)[1];
  const gamma = b.param(`${name}/gamma`, [c], { kind: "ones" }, "bn");
  const beta = b.param(`${name}/beta`, [c], { kind: "zeros" }, "bn");
  const mean = b.state(`${name}/moving_mean`, [c], { kind: "zeros" }, "bn");
  const variance = b.state(`${name}/moving_variance`, [c], { kind: "ones" }, "bn");
  if (!b.training) return b.op("batchnorm_infer", [x, gamma, beta, mean, variance], { eps });
  const m = b.op("moments", [x]), factor = movingVarianceFactor(b.shape(x));
  // Scaling both rows costs 2C products; only the variance row (index 1) of the scaled copy is read.
  const mv = factor === 1 ? m : b.bnOp("scale", [m], { factor });
  b.updates(mean, b.op("ema", [mean, m], { momentum, index: 0 }));
  b.updates(variance, b.op("ema", [variance, mv], { momentum, index: 1 }));
  return b.op("batchnorm", [x, gamma, beta], { eps });
}

/** Layer normalisation over the last axis (Keras default epsilon 1e-3; ViT uses 1e-6). */
export function layerNorm(b: ModelBuilder, x: number, eps = 1e-3): number {
  const name = b.layerName("layer_normalization"), d = b.shape(x).at(-1)!;
  const gamma = b.param(`${name}/gamma`, [d], { kind: "ones" });
  const beta = b.param(`${name}/beta`, [d], { kind: "zeros" });
  return b.op("layernorm", [x, gamma, beta], { eps });
}

/** Dropout (inverted scaling; identity at inference). The mask salt is the layer's index. */
export function dropout(b: ModelBuilder, x: number, rate: number): number {
  const name = b.layerName("dropout");
  if (!b.training || rate === 0) return x;
  const salt = Number(name.split("_")[1] ?? 0);
  return b.op("dropout", [x, b.dropoutSeed()], { rate, salt });
}

/** Multi-head self-attention on [N, T, D] (Keras MultiHeadAttention with query = key = value). */
export function selfAttention(b: ModelBuilder, x: number, heads: number, keyDim: number): number {
  const [n, t, d] = b.shape(x);
  const name = b.layerName("multi_head_attention");
  const proj = (what: string, y: number) => {
    const p = dense(b, y, heads * keyDim, "linear", `${name}/${what}`); // [N, T, H*K]
    const r = b.op("reshape", [p], { shape: [n, t, heads, keyDim] });
    return b.op("transpose", [r], { perm: [0, 2, 1, 3] }); // [N, H, T, K]
  };
  const flat = (y: number, rows: number, cols: number) =>
    b.op("reshape", [y], { shape: [n * heads, rows, cols] });
  const q = flat(proj("query", x), t, keyDim),
    k = flat(proj("key", x), t, keyDim),
    v = flat(proj("value", x), t, keyDim);
  const scores = b.op("scale", [b.op("matmul", [q, k], { transB: true })], { factor: 1 / Math.sqrt(keyDim) });
  const ctx = b.op("matmul", [b.op("softmax", [scores]), v]); // [N*H, T, K]
  const merged = b.op("transpose", [b.op("reshape", [ctx], { shape: [n, heads, t, keyDim] })], {
    perm: [0, 2, 1, 3],
  });
  const m2 = b.op("reshape", [merged], { shape: [n, t, heads * keyDim] });
  return dense(b, m2, d, "linear", `${name}/output`);
}
