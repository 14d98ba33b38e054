/**
 * Lowerings of the elementwise, softmax/loss, shape and bookkeeping ops.
 *
 * Activations use ONNX's own Tanh, Erf and Exp (not the project's lib/math.ts), so their float32
 * results differ from ref's in the last bits; tests/ort_engine_test.ts states the measured gap.
 * Dropout's mask is the ref engine's counter hash, computed by the host and fed as a bool input.
 *
 * @module
 */

import { ELEM } from "./onnx_graph.ts";
import { axesExcept, cast, type Ctx, type Lowering, num, reduce, withScalar } from "./lowering.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { sizeOf } from "../../lib/graph/graph.ts";

const SQRT1_2 = Math.SQRT1_2, INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Labels (fed as floats holding class indices) as int64. */
function labels(ctx: Ctx, k: number): string {
  return cast(ctx.g, ctx.x(k), ELEM.INT64);
}

/** Phi(x) = 0.5 (1 + erf(x / sqrt 2)). */
function phi(ctx: Ctx, x: string): string {
  const g = ctx.g;
  return withScalar(
    g,
    "Mul",
    withScalar(g, "Add", g.node("Erf", [withScalar(g, "Mul", x, SQRT1_2)]), 1),
    0.5,
  );
}

const gelu: Lowering = (ctx) => ctx.g.node("Mul", [ctx.x(0), phi(ctx, ctx.x(0))]);

const geluGrad: Lowering = (ctx) => {
  const g = ctx.g, x = ctx.x(0);
  const density = withScalar(
    g,
    "Mul",
    g.node("Exp", [withScalar(g, "Mul", g.node("Mul", [x, x]), -0.5)]),
    INV_SQRT_2PI,
  );
  return g.node("Mul", [ctx.x(1), g.node("Add", [phi(ctx, x), g.node("Mul", [x, density])])]);
};

const softmaxGrad: Lowering = (ctx) => {
  const g = ctx.g, y = ctx.x(0), gy = ctx.x(1);
  const dot = reduce(g, "ReduceSum", g.node("Mul", [gy, y]), [-1], true);
  return g.node("Mul", [y, g.node("Sub", [gy, dot])]);
};

const softmaxXent: Lowering = (ctx) => {
  const g = ctx.g;
  const logp = g.node("LogSoftmax", [ctx.x(0)], { axis: 1 });
  const picked = g.node("GatherElements", [logp, g.node("Unsqueeze", [labels(ctx, 1), g.i64([1])])], {
    axis: 1,
  });
  return g.node("Neg", [reduce(g, "ReduceMean", picked, [0, 1], false)]);
};

const softmaxXentGrad: Lowering = (ctx) => {
  const g = ctx.g, [n, k] = ctx.shape(0);
  const onehot = g.node("OneHot", [labels(ctx, 1), g.i64(k), g.f32([0, 1], [2])], { axis: -1 });
  const diff = g.node("Sub", [g.node("Softmax", [ctx.x(0)], { axis: -1 }), onehot]);
  return withScalar(g, "Div", g.node("Mul", [diff, ctx.x(2)]), n);
};

const countCorrect: Lowering = (ctx) => {
  const g = ctx.g;
  const best = g.node("ArgMax", [ctx.x(0)], { axis: 1, keepdims: 0, select_last_index: 0 });
  // A row holding a NaN counts as wrong, as in ref.
  const nans = reduce(g, "ReduceSum", cast(g, g.node("IsNaN", [ctx.x(0)]), ELEM.FLOAT), [1], false);
  const clean = g.node("Equal", [nans, g.f32(0)]);
  const hit = g.node("And", [g.node("Equal", [best, labels(ctx, 1)]), clean]);
  return reduce(g, "ReduceSum", cast(g, hit, ELEM.FLOAT), [0], false);
};

const dropout: Lowering = (ctx) => {
  const g = ctx.g, rate = num(ctx.node, "rate"), size = sizeOf(ctx.shape(0));
  const keep = g.node("Reshape", [
    ctx.mask(ctx.node.inputs[1], num(ctx.node, "salt"), rate, size),
    g.i64(ctx.shape(0)),
  ]);
  return g.node("Where", [keep, withScalar(g, "Div", ctx.x(0), 1 - rate), g.f32(0)]);
};

const allFinite: Lowering = (ctx) => {
  const g = ctx.g;
  // x * 0 is 0 for finite x and NaN for +-Inf and NaN, so the sum is 0 exactly when all are finite. A
  // product with a zero vector forms those sums reading x once (a Mul and a ReduceSum wrote and read x's
  // size once more: with the lost-update count, a fifth of a MobileNet step at batch 32; docs/benchmarks.md).
  const sums = ctx.node.inputs.map((_, k) => {
    const s = ctx.shape(k), cols = s.length > 1 ? sizeOf(s.slice(1)) : s[0] ?? 1;
    const rows = g.node("Reshape", [ctx.x(k), g.i64([sizeOf(s) / cols, cols])]);
    const dots = g.node("MatMul", [rows, g.f32(new Array(cols).fill(0), [cols, 1])]);
    return reduce(g, "ReduceSum", dots, [0, 1], false);
  });
  const total = sums.length === 1 ? sums[0] : g.node("Sum", sums);
  return cast(g, g.node("Equal", [total, g.f32(0)]), ELEM.FLOAT);
};

const countLost: Lowering = (ctx) => {
  const g = ctx.g, sums: string[] = [];
  for (let k = 0; k < ctx.node.inputs.length; k += 3) {
    // Equal is false for NaN and true for +0 and -0, as === is in ref.
    const kept = g.node("Equal", [ctx.x(k), ctx.x(k + 1)]);
    const stepped = g.node("Not", [g.node("Equal", [ctx.x(k + 2), g.f32(0)])]);
    const hits = cast(g, g.node("And", [kept, stepped]), ELEM.FLOAT);
    sums.push(reduce(g, "ReduceSum", hits, axesExcept(ctx.shape(k).length, []), false));
  }
  return sums.length === 1 ? sums[0] : g.node("Sum", sums);
};

const padChannels: Lowering = (ctx) => {
  const rank = ctx.shape(0).length, pads = new Array(2 * rank).fill(0);
  pads[1] = num(ctx.node, "before");
  pads[rank + 1] = num(ctx.node, "after");
  return ctx.g.node("Pad", [ctx.x(0), ctx.g.i64(pads)]);
};

const slice: Lowering = (ctx) => {
  const start = num(ctx.node, "start");
  const g = ctx.g;
  return g.node("Slice", [
    ctx.x(0),
    g.i64([start]),
    g.i64([start + num(ctx.node, "size")]),
    g.i64([num(ctx.node, "axis")]),
  ]);
};

/** Lowerings of this file by op name. */
export const POINTWISE = {
  relu: (ctx) => ctx.g.node("Relu", [ctx.x(0)]),
  relu_grad: (ctx) =>
    ctx.g.node("Where", [ctx.g.node("Greater", [ctx.x(0), ctx.g.f32(0)]), ctx.x(1), ctx.g.f32(0)]),
  tanh: (ctx) => ctx.g.node("Tanh", [ctx.x(0)]),
  tanh_grad: (ctx) => {
    const g = ctx.g, y = ctx.x(0);
    return g.node("Mul", [ctx.x(1), g.node("Sub", [g.f32(1), g.node("Mul", [y, y])])]);
  },
  gelu,
  gelu_grad: geluGrad,
  softmax: (ctx) => ctx.g.node("Softmax", [ctx.x(0)], { axis: -1 }),
  softmax_grad: softmaxGrad,
  softmax_xent: softmaxXent,
  softmax_xent_grad: softmaxXentGrad,
  count_correct: countCorrect,
  dropout,
  all_finite: allFinite,
  count_lost: countLost,
  add: (ctx) => ctx.g.node("Add", [ctx.x(0), ctx.x(1)]),
  scale: (ctx) => withScalar(ctx.g, "Mul", ctx.x(0), num(ctx.node, "factor")),
  cast: (ctx) => ctx.x(0),
  reshape: (ctx) => ctx.g.node("Reshape", [ctx.x(0), ctx.g.i64(ctx.node.attrs.shape as readonly number[])]),
  transpose: (ctx) => ctx.g.node("Transpose", [ctx.x(0)], { perm: ctx.node.attrs.perm as readonly number[] }),
  concat: (ctx) =>
    ctx.g.node("Concat", ctx.node.inputs.map((_, k) => ctx.x(k)), { axis: num(ctx.node, "axis") }),
  slice,
  pad_channels: padChannels,
  row: (ctx) => ctx.g.node("Gather", [ctx.x(0), ctx.g.i64(num(ctx.node, "index"))], { axis: 0 }),
} satisfies Partial<Record<OpName, Lowering>>;
