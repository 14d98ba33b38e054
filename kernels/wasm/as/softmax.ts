/**
 * Softmax over the last axis, the fused softmax cross-entropy and the correct count (ref:
 * kernels/ref/softmax.ts). `e` is host-provided scratch of f64[k].
 */

import { ld, round, st } from "./format";
import { exp, log } from "./math";

let rowMax: f64 = 0;

/** Writes e_j = acc(exp(x_j - max)) for row `r` into `e`, leaves the max in rowMax, returns the acc sum. */
function expRow(x: usize, fx: i32, r: i32, k: i32, e: usize, acc: i32): f64 {
  let m = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = ld(fx, x, r * k + j);
    if (v > m || v != v) m = v;
  }
  let s: f64 = 0;
  for (let j = 0; j < k; j++) {
    const v = round(acc, exp(ld(fx, x, r * k + j) - m));
    store<f64>(e + (<usize>j << 3), v);
    s = round(acc, s + v);
  }
  rowMax = m;
  return s;
}

/** The label of row r, or -1 when it is not an integer in [0, k). */
function label(labels: usize, fl: i32, r: i32, k: i32): i32 {
  const l = ld(fl, labels, r);
  return l >= 0 && l < k && Math.floor(l) == l ? <i32>l : -1;
}

export function softmax(x: usize, fx: i32, y: usize, fy: i32, rows: i32, k: i32, e: usize, acc: i32): void {
  for (let r = 0; r < rows; r++) {
    const s = expRow(x, fx, r, k, e, acc);
    for (let j = 0; j < k; j++) st(fy, y, r * k + j, load<f64>(e + (<usize>j << 3)) / s);
  }
}

export function softmaxGrad(
  y: usize, fy: i32, g: usize, fg: i32, dx: usize, fd: i32, rows: i32, k: i32, acc: i32,
): void {
  for (let r = 0; r < rows; r++) {
    let d: f64 = 0;
    for (let j = 0; j < k; j++) d = round(acc, d + round(acc, ld(fy, y, r * k + j) * ld(fg, g, r * k + j)));
    for (let j = 0; j < k; j++) {
      st(fd, dx, r * k + j, ld(fy, y, r * k + j) * (ld(fg, g, r * k + j) - d));
    }
  }
}

/** Mean cross-entropy; returns -1, or the first row whose label is out of range (nothing written then). */
export function softmaxXent(
  x: usize, fx: i32, labels: usize, fl: i32, out: usize, fo: i32, n: i32, k: i32, e: usize, acc: i32,
): i32 {
  let total: f64 = 0;
  for (let r = 0; r < n; r++) {
    const s = expRow(x, fx, r, k, e, acc);
    const l = label(labels, fl, r, k);
    if (l < 0) return r;
    const lse = round(acc, rowMax + round(acc, log(s)));
    total = round(acc, total + round(acc, lse - ld(fx, x, r * k + l)));
  }
  st(fo, out, 0, total / n);
  return -1;
}

/** Gradient of the mean cross-entropy times `seed`; returns -1 or the first bad label's row. */
export function softmaxXentGrad(
  x: usize, fx: i32, labels: usize, fl: i32, seed: f64, dx: usize, fd: i32, n: i32, k: i32, e: usize, acc: i32,
): i32 {
  const scale = seed / n;
  for (let r = 0; r < n; r++) {
    const s = expRow(x, fx, r, k, e, acc);
    const l = label(labels, fl, r, k);
    if (l < 0) return r;
    for (let j = 0; j < k; j++) {
      st(fd, dx, r * k + j, (load<f64>(e + (<usize>j << 3)) / s - (j == l ? 1 : 0)) * scale);
    }
  }
  return -1;
}

/** Rows whose first maximal logit is at the label (a row with a NaN counts as wrong). */
export function countCorrect(x: usize, fx: i32, labels: usize, fl: i32, n: i32, k: i32): i32 {
  let correct = 0;
  for (let r = 0; r < n; r++) {
    let best = 0, bv = ld(fx, x, r * k), nan = bv != bv;
    for (let j = 1; j < k; j++) {
      const v = ld(fx, x, r * k + j);
      if (v != v) nan = true;
      else if (v > bv) {
        bv = v;
        best = j;
      }
    }
    if (!nan && <f64>best == ld(fl, labels, r)) correct++;
  }
  return correct;
}
