/**
 * Softmax over the last axis, the fused softmax cross-entropy loss and the correct-prediction count, as
 * kernels/ref/softmax.ts defines them: the row maximum is subtracted before exp, exps and their sums are
 * rounded to the accumulate format and summed in order. Each output element recomputes its row's sum (rows
 * are short: classes, or a ViT's tokens), so no thread waits for another.
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import type { GpuKernel } from "./kernel.ts";

/** WGSL: the maximum (NaN if a NaN comes first... as ref: NaN once met stays) and sum of exps of row r. */
function rowFns(k: number, labels: boolean): string {
  return `
fn row_max(r: u32) -> f32 {
  var m = -inf_();
  for (var j = 0u; j < ${k}u; j = j + 1u) {
    let v = x0(r * ${k}u + j);
    if (v > m || is_nan(v)) { m = v; }
  }
  return m;
}
fn row_sum(r: u32, m: f32) -> f32 {
  var s = 0.0f;
  for (var j = 0u; j < ${k}u; j = j + 1u) { s = racc(s + racc(exp_(x0(r * ${k}u + j) - m))); }
  return s;
}${labels ? labelFn(k) : ""}`;
}

/** WGSL: the label of row r (input 1) as an index. */
function labelFn(k: number): string {
  return `
// The label of row r as an index, or ${k} (out of range: the value becomes NaN) when it is not one.
fn label(r: u32) -> u32 {
  let l = x1(r);
  if (!(l >= 0.0f && l < ${k}.0f) || floor(l) != l) { return ${k}u; }
  return u32(l);
}`;
}

/**
 * A map kernel over [rows, k] with the row helpers defined; `loops` gives an output element's loop
 * iterations from k and the row count (llvmpipe's limit, kernels/webgpu/loop_cap.ts).
 */
function rowKernel(
  body: (k: number, rows: number) => string,
  loops: (k: number, rows: number) => number,
): GpuKernel {
  return (a) => {
    const k = a.x[0].shape.at(-1)!, rows = a.x[0].size / k;
    return [{
      kind: "map",
      code: `${rowFns(k, a.x.length > 1)}\nfn value(i: u32) -> f32 {\n${body(k, rows)}\n}`,
      loops: loops(k, rows),
    }];
  };
}

/** Loop iterations of one row's maximum and sum of exps. */
const rowLoops = (k: number) => 2 * k;

const softmax = rowKernel((k) =>
  `  let r = i / ${k}u; let m = row_max(r);
  return racc(exp_(x0(i) - m)) / row_sum(r, m);`, rowLoops);

/** dx_j = y_j (g_j - d), d = sum_j round_acc(y_j g_j) in order. */
const softmaxGrad: GpuKernel = ({ x: [y] }) => {
  const k = y.shape.at(-1)!;
  return [{
    kind: "map",
    loops: k,
    code: `fn value(i: u32) -> f32 {
  let r = i / ${k}u;
  var d = 0.0f;
  for (var j = 0u; j < ${k}u; j = j + 1u) { d = racc(d + racc(x0(r * ${k}u + j) * x1(r * ${k}u + j))); }
  return x0(i) * (x1(i) - d);
}`,
  }];
};

/** Mean over rows of round_acc(logsumexp - x_label), summed in order in the accumulate format. */
const softmaxXent = rowKernel((k, rows) =>
  `  var total = 0.0f;
  for (var r = 0u; r < ${rows}u; r = r + 1u) {
    let m = row_max(r);
    let lse = racc(m + racc(log_(row_sum(r, m))));
    let l = label(r);
    if (l == ${k}u) { return nan_(); }
    total = racc(total + racc(lse - x0(r * ${k}u + l)));
  }
  return total / ${rows}.0f;`, (k, rows) => rows * (rowLoops(k) + 1));

/** dx_j = (e_j / s - [j = label]) * seed / N. */
const softmaxXentGrad = rowKernel((k, rows) =>
  `  let r = i / ${k}u; let m = row_max(r);
  let l = label(r);
  if (l == ${k}u) { return nan_(); }
  let e = racc(exp_(x0(i) - m)) / row_sum(r, m);
  return (e - select(0.0f, 1.0f, i % ${k}u == l)) * (x2(0u) / ${rows}.0f);`, rowLoops);

/** Rows whose first maximal logit sits at the label; a row holding a NaN counts as wrong. */
const countCorrect = rowKernel((k, rows) =>
  `  var correct = 0u;
  for (var r = 0u; r < ${rows}u; r = r + 1u) {
    var best = 0u; var bv = x0(r * ${k}u); var nan = is_nan(bv);
    for (var j = 1u; j < ${k}u; j = j + 1u) {
      let v = x0(r * ${k}u + j);
      if (is_nan(v)) { nan = true; } else if (v > bv) { bv = v; best = j; }
    }
    if (!nan && f32(best) == x1(r)) { correct = correct + 1u; }
  }
  return f32(correct);`, (k, rows) => rows * k);

/** Kernels of this file by op name. */
export const SOFTMAX = {
  softmax,
  softmax_grad: softmaxGrad,
  softmax_xent: softmaxXent,
  softmax_xent_grad: softmaxXentGrad,
  count_correct: countCorrect,
} satisfies Partial<Record<OpName, GpuKernel>>;
