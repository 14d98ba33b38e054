/**
 * Normalisation: batch norm (training and inference), its moments and moving
 * average, and layer norm, with gradients.
 *
 * Statistics are computed as the fused kernels of the frameworks do (and as
 * Keras does when it upcasts 16-bit inputs): in the accumulate format, in two
 * passes (mean, then mean squared deviation, biased), sequentially over the
 * normalised elements. Outputs are computed in float64 from the rounded
 * statistics and rounded once.
 *
 * @module
 */

import type { Rounder } from "../../lib/formats/format.ts";
import { type Kernel, num, prod } from "./kernel.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/** Visits the normalised elements of group `c` in order: `idx(c, i)` gives the flat index of its i-th element. */
interface Groups {
  count: number; // number of groups (channels or rows)
  size: number; // elements per group
  idx: (c: number, i: number) => number;
}

/** Batch norm groups: channel c holds x[n, c, s] for n, then s, ascending. */
function channels(shape: readonly number[]): Groups {
  const c = shape[1], s = prod(shape, 2), n = shape[0];
  return { count: c, size: n * s, idx: (ch, i) => (Math.floor(i / s) * c + ch) * s + (i % s) };
}

/** Layer norm groups: row r holds its last-axis elements. */
function rows(shape: readonly number[]): Groups {
  const d = shape.at(-1)!;
  return { count: prod(shape) / d, size: d, idx: (r, i) => r * d + i };
}

interface Stats {
  mean: Float64Array;
  variance: Float64Array;
  rstd: Float64Array;
}

/** Mean, biased variance and 1/sqrt(variance + eps) per group, each rounded to the accumulate format. */
function stats(x: Float64Array, g: Groups, eps: number, acc: Rounder): Stats {
  const mean = new Float64Array(g.count),
    variance = new Float64Array(g.count),
    rstd = new Float64Array(g.count);
  for (let c = 0; c < g.count; c++) {
    let s = 0;
    for (let i = 0; i < g.size; i++) s = acc(s + x[g.idx(c, i)]);
    const m = acc(s / g.size);
    let q = 0;
    for (let i = 0; i < g.size; i++) {
      const d = acc(x[g.idx(c, i)] - m);
      q = acc(q + acc(d * d));
    }
    mean[c] = m;
    variance[c] = acc(q / g.size);
    rstd[c] = acc(1 / Math.sqrt(variance[c] + eps));
  }
  return { mean, variance, rstd };
}

/** y = (x - mean) * rstd * gamma + beta per group element. */
function normalize(
  x: Float64Array,
  g: Groups,
  st: Stats,
  gamma: Float64Array,
  beta: Float64Array,
  out: Rounder,
  perGroup: boolean,
) {
  const y = new Float64Array(x.length);
  for (let c = 0; c < g.count; c++) {
    for (let i = 0; i < g.size; i++) {
      const k = g.idx(c, i), p = perGroup ? c : i;
      y[k] = out((x[k] - st.mean[c]) * st.rstd[c] * gamma[p] + beta[p]);
    }
  }
  return y;
}

/** [sum(g * xhat), sum(g)] per parameter element (channel for batch norm, feature for layer norm). */
function affineGrad(
  x: Float64Array,
  gy: Float64Array,
  g: Groups,
  st: Stats,
  perGroup: boolean,
  out: Rounder,
  acc: Rounder,
) {
  const p = perGroup ? g.count : g.size;
  const dg = new Float64Array(p), db = new Float64Array(p);
  // Per-group params: reduce inside each group; per-feature params: reduce across groups in group order.
  for (let c = 0; c < g.count; c++) {
    for (let i = 0; i < g.size; i++) {
      const k = g.idx(c, i), j = perGroup ? c : i;
      dg[j] = acc(dg[j] + acc((x[k] - st.mean[c]) * st.rstd[c] * gy[k]));
      db[j] = acc(db[j] + gy[k]);
    }
  }
  const r = new Float64Array(2 * p);
  for (let j = 0; j < p; j++) (r[j] = out(dg[j])), (r[p + j] = out(db[j]));
  return r;
}

/** dx = rstd / M * (M gh - sum gh - xhat sum(gh xhat)), gh = g * gamma: the gradient through the statistics. */
function inputGrad(
  x: Float64Array,
  gamma: Float64Array,
  gy: Float64Array,
  g: Groups,
  st: Stats,
  perGroup: boolean,
  out: Rounder,
  acc: Rounder,
) {
  const dx = new Float64Array(x.length);
  const m = g.size;
  for (let c = 0; c < g.count; c++) {
    let s1 = 0, s2 = 0;
    for (let i = 0; i < m; i++) {
      const k = g.idx(c, i), gh = gy[k] * gamma[perGroup ? c : i];
      s1 = acc(s1 + acc(gh));
      s2 = acc(s2 + acc(gh * ((x[k] - st.mean[c]) * st.rstd[c])));
    }
    for (let i = 0; i < m; i++) {
      const k = g.idx(c, i), gh = gy[k] * gamma[perGroup ? c : i];
      const xhat = (x[k] - st.mean[c]) * st.rstd[c];
      dx[k] = out((st.rstd[c] / m) * (m * gh - s1 - xhat * s2));
    }
  }
  return dx;
}

const eps = (a: Parameters<Kernel>[0]) => num(a.node, "eps");

/**
 * The forward, input-gradient and affine-gradient kernels of one normalisation
 * (`<prefix>`, `<prefix>_grad_x`, `<prefix>_grad_affine`): batch norm groups by
 * channel with per-channel parameters, layer norm by row with per-feature ones.
 */
function family<P extends string>(
  prefix: P,
  groups: (s: readonly number[]) => Groups,
  perGroup: boolean,
): Record<P | `${P}_grad_x` | `${P}_grad_affine`, Kernel> {
  const st = (a: Parameters<Kernel>[0]) => {
    const g = groups(a.shapes[0]);
    return { g, st: stats(a.x[0], g, eps(a), a.acc) };
  };
  const table: Record<string, Kernel> = {
    [prefix]: (a) => {
      const { g, st: s } = st(a);
      return normalize(a.x[0], g, s, a.x[1], a.x[2], a.out, perGroup);
    },
    [`${prefix}_grad_x`]: (a) => {
      const { g, st: s } = st(a);
      return inputGrad(a.x[0], a.x[1], a.x[2], g, s, perGroup, a.out, a.acc);
    },
    [`${prefix}_grad_affine`]: (a) => {
      const { g, st: s } = st(a);
      return affineGrad(a.x[0], a.x[1], g, s, perGroup, a.out, a.acc);
    },
  };
  // The keys are the three names of the family, which the computed keys cannot state.
  return table as Record<P | `${P}_grad_x` | `${P}_grad_affine`, Kernel>;
}

/** Kernels of this file by op name. */
export const NORM = {
  ...family("batchnorm", channels, true),
  ...family("layernorm", rows, false),
  batchnorm_infer: ({ node, x: [x, gamma, beta, mean, variance], shapes: [sx], out, acc }) => {
    const g = channels(sx);
    const rstd = Float64Array.from(variance, (v) => acc(1 / Math.sqrt(v + num(node, "eps"))));
    return normalize(
      x,
      g,
      { mean: Float64Array.from(mean), variance: Float64Array.from(variance), rstd },
      gamma,
      beta,
      out,
      true,
    );
  },
  moments: ({ x: [x], shapes: [sx], out, acc }) => {
    const g = channels(sx);
    const st = stats(x, g, 0, acc);
    const r = new Float64Array(2 * g.count);
    for (let c = 0; c < g.count; c++) (r[c] = out(st.mean[c])), (r[g.count + c] = out(st.variance[c]));
    return r;
  },
  ema: ({ node, x: [r, m], out }) => {
    const k = 1 - num(node, "momentum"), at = num(node, "index") * r.length;
    return Float64Array.from(r, (rv, i) => out(rv - (rv - m[at + i]) * k));
  },
} satisfies Partial<Record<OpName, Kernel>>;
