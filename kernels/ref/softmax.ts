/**
 * Softmax over the last axis, the fused softmax cross-entropy loss and the
 * correct-prediction count. Softmax subtracts the row maximum before exp and
 * the loss uses log-sum-exp, so neither overflows in 16-bit formats.
 *
 * @module
 */

import type { Rounder } from "../../lib/formats/format.ts";
import { exp, log } from "../../lib/math.ts";
import type { Kernel } from "./kernel.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/**
 * For row `r` of width `k`: writes e_j = round_acc(exp(x_j - max)) into `e`
 * and returns [max, round_acc-sequential sum of e_j].
 */
function expRow(x: Float64Array, r: number, k: number, e: Float64Array, acc: Rounder): [number, number] {
  let m = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = x[r * k + j];
    if (v > m || v !== v) m = v;
  }
  let s = 0;
  for (let j = 0; j < k; j++) {
    e[j] = acc(exp(x[r * k + j] - m));
    s = acc(s + e[j]);
  }
  return [m, s];
}

function label(labels: Float64Array, r: number, k: number): number {
  const l = labels[r];
  if (!Number.isInteger(l) || l < 0 || l >= k) {
    throw new RangeError(`Label ${l} at row ${r} is not in [0, ${k})`);
  }
  return l;
}

const softmax: Kernel = ({ x: [x], shapes: [sx], out, acc }) => {
  const k = sx.at(-1)!, rows = x.length / k;
  const y = new Float64Array(x.length), e = new Float64Array(k);
  for (let r = 0; r < rows; r++) {
    const [, s] = expRow(x, r, k, e, acc);
    for (let j = 0; j < k; j++) y[r * k + j] = out(e[j] / s);
  }
  return y;
};

/** dx_j = y_j (g_j - d), d = sum_j round_acc(y_j g_j) sequentially. */
const softmaxGrad: Kernel = ({ x: [y, g], shapes: [sy], out, acc }) => {
  const k = sy.at(-1)!, rows = y.length / k;
  const dx = new Float64Array(y.length);
  for (let r = 0; r < rows; r++) {
    let d = 0;
    for (let j = 0; j < k; j++) d = acc(d + acc(y[r * k + j] * g[r * k + j]));
    for (let j = 0; j < k; j++) dx[r * k + j] = out(y[r * k + j] * (g[r * k + j] - d));
  }
  return dx;
};

/** Mean over rows of round_acc(logsumexp - x_label), summed sequentially in the accumulate format. */
const softmaxXent: Kernel = ({ x: [x, labels], shapes: [sx], out, acc }) => {
  const [n, k] = sx;
  const e = new Float64Array(k);
  let total = 0;
  for (let r = 0; r < n; r++) {
    const [m, s] = expRow(x, r, k, e, acc);
    const lse = acc(m + acc(log(s)));
    total = acc(total + acc(lse - x[r * k + label(labels, r, k)]));
  }
  return Float64Array.of(out(total / n));
};

/** dx_j = (e_j / s - [j = label]) * seed / N, in float64, rounded once. */
const softmaxXentGrad: Kernel = ({ x: [x, labels, seed], shapes: [sx], out, acc }) => {
  const [n, k] = sx;
  const e = new Float64Array(k), dx = new Float64Array(x.length);
  const scale = seed[0] / n;
  for (let r = 0; r < n; r++) {
    const [, s] = expRow(x, r, k, e, acc);
    const l = label(labels, r, k);
    for (let j = 0; j < k; j++) dx[r * k + j] = out((e[j] / s - (j === l ? 1 : 0)) * scale);
  }
  return dx;
};

/** Rows whose first maximal logit sits at the label; a row holding a NaN counts as wrong. */
const countCorrect: Kernel = ({ x: [x, labels], shapes: [sx] }) => {
  const [n, k] = sx;
  let correct = 0;
  for (let r = 0; r < n; r++) {
    let best = 0, bv = x[r * k], nan = bv !== bv;
    for (let j = 1; j < k; j++) {
      const v = x[r * k + j];
      if (v !== v) nan = true;
      else if (v > bv) (bv = v), (best = j);
    }
    if (!nan && best === labels[r]) correct++;
  }
  return Float64Array.of(correct);
};

/** Kernels of this file by op name. */
export const SOFTMAX = {
  softmax,
  softmax_grad: softmaxGrad,
  softmax_xent: softmaxXent,
  softmax_xent_grad: softmaxXentGrad,
  count_correct: countCorrect,
} satisfies Partial<Record<OpName, Kernel>>;
