/**
 * Lowerings of batch and layer normalisation (training and inference), their gradients, the batch
 * moments and the moving average: the ref kernels' statistics (two-pass biased variance, rstd =
 * 1 / sqrt(var + eps)) written with ONNX reductions in float32.
 *
 * Batch normalisation in training mode applies its per-channel affine maps with onnxruntime's
 * BatchNormalization kernel (inference mode), which scales and shifts a tensor in one pass where Mul,
 * Mul and Add broadcasting [1, C, 1, 1] took three (measured: docs/benchmarks.md). It is always fed the
 * centred input x - mean, never x, so that no large mean cancels inside it:
 * - forward: y = BN(x - mean; gamma, beta, mean 0, var, eps) = (x - mean) * (gamma * rstd) + beta;
 * - input gradient, with S1 = sum(dy), S2 = sum(dy * (x - mean)) and A = gamma * rstd:
 *   dx = A * dy - A * S1 / n - A * rstd^2 * S2 / n * (x - mean), the last two terms one BN with mean 0,
 *   variance 1 and epsilon 0 (onnxruntime then scales by exactly the given factor);
 * - gamma and beta gradients: rstd * S2 and S1, the sums the input gradient takes too (onnxruntime's
 *   common-subexpression pass computes them once).
 * The same sums as ref's formulas in another order and rounding: within the ort engine's tolerance.
 *
 * @module
 */

import { axesExcept, type Ctx, type Lowering, num, reduce, withScalar } from "./lowering.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/** Where the statistics are taken (`axes`), and how a per-parameter vector broadcasts against x. */
interface Family {
  /** Axes the statistics reduce over. */
  stats(rank: number): number[];
  /** Axes the affine (gamma, beta) gradients reduce over. */
  params(rank: number): number[];
  /** A [P] parameter tensor reshaped to broadcast against x. */
  param(ctx: Ctx, t: string): string;
}

const BATCH: Family = {
  stats: (rank) => axesExcept(rank, [1]),
  params: (rank) => axesExcept(rank, [1]),
  param: (ctx, t) => {
    const s = ctx.shape(0);
    return ctx.g.node("Reshape", [t, ctx.g.i64(s.map((d, i) => (i === 1 ? d : 1)))]);
  },
};

const LAYER: Family = {
  stats: (rank) => [rank - 1],
  params: (rank) => axesExcept(rank, [rank - 1]),
  param: (_ctx, t) => t,
};

/** Centred x, rstd (keepdims) and the group size, from the batch statistics of input 0 (no xhat: see xhatOf). */
function stats(ctx: Ctx, f: Family, eps: number) {
  const g = ctx.g, s = ctx.shape(0), axes = f.stats(s.length);
  const mean = reduce(g, "ReduceMean", ctx.x(0), axes, true);
  const d = g.node("Sub", [ctx.x(0), mean]);
  const variance = reduce(g, "ReduceMean", g.node("Mul", [d, d]), axes, true);
  const rstd = g.node("Reciprocal", [g.node("Sqrt", [withScalar(g, "Add", variance, eps)])]);
  const size = axes.reduce((p, a) => p * s[a], 1);
  return { mean, variance, d, rstd, size };
}

/** xhat = (x - mean) * rstd, for the lowerings that use it (batch norm's do not: it would be a dead node). */
const xhatOf = (ctx: Ctx, st: { d: string; rstd: string }) => ctx.g.node("Mul", [st.d, st.rstd]);

function family<P extends string>(
  prefix: P,
  f: Family,
): Record<P | `${P}_grad_x` | `${P}_grad_affine`, Lowering> {
  const table: Record<string, Lowering> = {
    [prefix]: (ctx) => {
      const g = ctx.g, xhat = xhatOf(ctx, stats(ctx, f, num(ctx.node, "eps")));
      return g.node("Add", [g.node("Mul", [xhat, f.param(ctx, ctx.x(1))]), f.param(ctx, ctx.x(2))]);
    },
    [`${prefix}_grad_x`]: (ctx) => {
      const g = ctx.g, st = stats(ctx, f, num(ctx.node, "eps")), axes = f.stats(ctx.shape(0).length);
      const xhat = xhatOf(ctx, st), gh = g.node("Mul", [ctx.x(2), f.param(ctx, ctx.x(1))]);
      const s1 = reduce(g, "ReduceSum", gh, axes, true);
      const s2 = reduce(g, "ReduceSum", g.node("Mul", [gh, xhat]), axes, true);
      const inner = g.node("Sub", [
        g.node("Sub", [withScalar(g, "Mul", gh, st.size), s1]),
        g.node("Mul", [xhat, s2]),
      ]);
      return g.node("Mul", [withScalar(g, "Div", st.rstd, st.size), inner]);
    },
    [`${prefix}_grad_affine`]: (ctx) => {
      const g = ctx.g, st = stats(ctx, f, num(ctx.node, "eps")), axes = f.params(ctx.shape(0).length);
      const dg = reduce(g, "ReduceSum", g.node("Mul", [xhatOf(ctx, st), ctx.x(1)]), axes, false);
      const db = reduce(g, "ReduceSum", ctx.x(1), axes, false);
      const zero = g.i64([0]);
      return g.node("Concat", [g.node("Unsqueeze", [dg, zero]), g.node("Unsqueeze", [db, zero])], {
        axis: 0,
      });
    },
  };
  // The keys are the three names of the family, which the computed keys cannot state.
  return table as Record<P | `${P}_grad_x` | `${P}_grad_affine`, Lowering>;
}

/** onnxruntime's BatchNormalization in inference mode: (t - mean) / sqrt(variance + eps) * scale + bias. */
function batchNormalization(ctx: Ctx, t: string, vectors: readonly string[], eps: number): string {
  return ctx.g.node("BatchNormalization", [t, ...vectors], { epsilon: { float: eps } });
}

/** A [C] vector of `value` (C = channels of input 0). */
function perChannel(ctx: Ctx, value: number): string {
  const c = ctx.shape(0)[1];
  return ctx.g.f32(new Array(c).fill(value), [c]);
}

/** A keepdims per-channel statistic [1, C, 1, ...] as a [C] vector. */
function vector(ctx: Ctx, t: string): string {
  return ctx.g.node("Reshape", [t, ctx.g.i64([ctx.shape(0)[1]])]);
}

/** The batch family's input-gradient sums S1 = sum(dy), S2 = sum(dy * (x - mean)), keepdims. */
function gradSums(ctx: Ctx, d: string, dy: string) {
  const g = ctx.g, axes = BATCH.stats(ctx.shape(0).length);
  return {
    s1: reduce(g, "ReduceSum", dy, axes, true),
    s2: reduce(g, "ReduceSum", g.node("Mul", [dy, d]), axes, true),
  };
}

const BATCH_NORM = {
  batchnorm: (ctx) => {
    const st = stats(ctx, BATCH, num(ctx.node, "eps"));
    return batchNormalization(
      ctx,
      st.d,
      [ctx.x(1), ctx.x(2), perChannel(ctx, 0), vector(ctx, st.variance)],
      num(ctx.node, "eps"),
    );
  },
  batchnorm_grad_x: (ctx) => {
    const g = ctx.g, st = stats(ctx, BATCH, num(ctx.node, "eps")), dy = ctx.x(2);
    const { s1, s2 } = gradSums(ctx, st.d, dy);
    const rstd = vector(ctx, st.rstd), a = g.node("Mul", [ctx.x(1), rstd]);
    const perN = (t: string) => withScalar(g, "Div", vector(ctx, t), st.size);
    // -A rstd^2 S2 / n and -A S1 / n, per channel.
    const scale = g.node("Neg", [g.node("Mul", [g.node("Mul", [a, g.node("Mul", [rstd, rstd])]), perN(s2)])]);
    const shift = g.node("Neg", [g.node("Mul", [a, perN(s1)])]);
    const rest = batchNormalization(ctx, st.d, [scale, shift, perChannel(ctx, 0), perChannel(ctx, 1)], 0);
    return g.node("Add", [g.node("Mul", [dy, BATCH.param(ctx, a)]), rest]);
  },
  batchnorm_grad_affine: (ctx) => {
    const g = ctx.g, st = stats(ctx, BATCH, num(ctx.node, "eps")), { s1, s2 } = gradSums(ctx, st.d, ctx.x(1));
    const dg = g.node("Mul", [vector(ctx, st.rstd), vector(ctx, s2)]);
    return g.node("Concat", [
      g.node("Unsqueeze", [dg, g.i64([0])]),
      g.node("Unsqueeze", [vector(ctx, s1), g.i64([0])]),
    ], {
      axis: 0,
    });
  },
} satisfies Partial<Record<OpName, Lowering>>;

/** Lowerings of this file by op name. */
export const NORM = {
  ...BATCH_NORM,
  ...family("layernorm", LAYER),
  batchnorm_infer: (ctx) => {
    const g = ctx.g, p = (k: number) => BATCH.param(ctx, ctx.x(k));
    const rstd = g.node("Reciprocal", [g.node("Sqrt", [withScalar(g, "Add", p(4), num(ctx.node, "eps"))])]);
    const xhat = g.node("Mul", [g.node("Sub", [ctx.x(0), p(3)]), rstd]);
    return g.node("Add", [g.node("Mul", [xhat, p(1)]), p(2)]);
  },
  moments: (ctx) => {
    const g = ctx.g, st = stats(ctx, BATCH, 0);
    const flat = (t: string) => g.node("Reshape", [t, g.i64([1, ctx.shape(0)[1]])]);
    return g.node("Concat", [flat(st.mean), flat(st.variance)], { axis: 0 });
  },
  ema: (ctx) => {
    const g = ctx.g, r = ctx.x(0);
    const v = g.node("Gather", [ctx.x(1), g.i64(num(ctx.node, "index"))], { axis: 0 });
    return g.node("Sub", [r, withScalar(g, "Mul", g.node("Sub", [r, v]), 1 - num(ctx.node, "momentum"))]);
  },
} satisfies Partial<Record<OpName, Lowering>>;
