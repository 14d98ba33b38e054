/**
 * The paper's error/tolerance lemma, measured. For a classifier M and input x:
 * error delta = max_k |M32(x)_k - M16(x)_k|, tolerance Gamma = top-1 minus
 * top-2 output of M32(x). If Gamma > 2 delta, both models predict the same
 * class (for the top class i and any j: M16_i - M16_j >= Gamma - 2 delta > 0).
 * So the fp16 model can disagree with the fp32 model only on inputs with
 * Gamma <= 2 delta, and the share of those inputs bounds the accuracy gap.
 *
 * Both are measured on logits and on probabilities (the float64 softmax of
 * each model's logits, with the project's own exp). A lemma violation (a
 * disagreement at Gamma > 2 delta) would be a bug in our numerics, since the
 * lemma is a theorem; it is counted, never hidden.
 *
 * @module
 */

import { exp } from "../math.ts";
import type { TolerancePoint, ToleranceSpace } from "../record/schema.ts";

/** First index of the maximum of row r (NaN entries never win; an all-NaN row gives -1). */
function argmax(v: Float64Array, r: number, k: number): number {
  let best = -1, bv = -Infinity;
  for (let j = 0; j < k; j++) {
    const x = v[r * k + j];
    if (x > bv || (best < 0 && x === -Infinity)) (bv = x), (best = j);
  }
  return best;
}

/** Row-wise float64 softmax (max-subtracted). */
export function softmaxRows(logits: Float64Array, k: number): Float64Array {
  const p = new Float64Array(logits.length);
  for (let r = 0; r < logits.length / k; r++) {
    let m = -Infinity, s = 0;
    for (let j = 0; j < k; j++) m = Math.max(m, logits[r * k + j]);
    for (let j = 0; j < k; j++) s += p[r * k + j] = exp(logits[r * k + j] - m);
    for (let j = 0; j < k; j++) p[r * k + j] /= s;
  }
  return p;
}

/** Measures the lemma's quantities for outputs `a` (reference) and `b` ([N, k] row-major) with `labels`. */
export function measure(
  space: ToleranceSpace["space"],
  a: Float64Array,
  b: Float64Array,
  k: number,
  labels: ArrayLike<number>,
): ToleranceSpace {
  const n = labels.length;
  const points: TolerancePoint[] = [];
  let satisfied = 0, disagreements = 0, violations = 0, right32 = 0, right16 = 0;
  for (let r = 0; r < n; r++) {
    let delta = 0;
    for (let j = 0; j < k; j++) {
      const d = Math.abs(a[r * k + j] - b[r * k + j]);
      delta = d > delta || d !== d ? d : delta;
    }
    const p32 = argmax(a, r, k), p16 = argmax(b, r, k);
    let second = -Infinity;
    for (let j = 0; j < k; j++) if (j !== p32) second = Math.max(second, a[r * k + j]);
    const gamma = a[r * k + p32] - second;
    const ok = gamma > 2 * delta;
    if (ok) satisfied++;
    if (p32 !== p16) {
      disagreements++;
      if (ok) violations++;
    }
    if (p32 === labels[r]) right32++;
    if (p16 === labels[r]) right16++;
    points.push({ i: r, label: labels[r], pred32: p32, pred16: p16, delta, gamma });
  }
  return {
    space,
    count: n,
    satisfied,
    satisfiedShare: satisfied / n,
    disagreements,
    violations,
    accuracy32: right32 / n,
    accuracy16: right16 / n,
    bound: (n - satisfied) / n,
    points,
  };
}
