/**
 * Batch norm and layer norm with their gradients, moments and the moving average (ref: kernels/ref/norm.ts).
 * A group is a channel (batch norm: x[n, c, s] for n, then s) or a row (layer norm: the last axis).
 * Statistics are computed in the accumulate format in two passes; `st` is host scratch of f64[3 * count]
 * holding mean, variance and rstd.
 */

import { FP32, ld, ldf, round, st } from "./format";
import { ld4, st4 } from "./simd";

/** setGroups's kinds (the host's copy is generated from this enum by kernels/wasm/build.ts). */
export enum Groups { CHANNELS = 0, ROWS = 1 }

// Group geometry, set by setGroups before a kernel runs: channels (N, C, S) or rows of width D.
let gKind: i32 = 0, gN: i32 = 0, gC: i32 = 0, gS: i32 = 0;

/** count = number of groups, size = elements per group. */
let gCount: i32 = 0, gSize: i32 = 0;

/** Selects batch-norm channel groups of an [n, c, s] tensor (CHANNELS) or layer-norm rows [c, s] (ROWS). */
export function setGroups(kind: i32, n: i32, c: i32, s: i32): void {
  gKind = kind;
  gN = n;
  gC = c;
  gS = s;
  gCount = c;
  gSize = kind == Groups.CHANNELS ? n * s : s;
}

// Element i of group c sits at c * gS + (i / gS) * step() + i % gS: a channel is gN runs of gS elements,
// gC * gS apart (one per image); a row is one run. The loops walk runs and their elements in that order,
// which is the order of i, without dividing per element (an i32 division and remainder per element were
// most of these kernels' time).

// @ts-ignore: decorator
@inline function runs(): i32 {
  return gKind == Groups.CHANNELS ? gN : 1;
}

// @ts-ignore: decorator
@inline function step(): i32 {
  return gKind == Groups.CHANNELS ? gC * gS : 0;
}

// @ts-ignore: decorator
@inline function at(p: usize, j: i32): f64 {
  return load<f64>(p + (<usize>j << 3));
}

/** Element k of groups c..c+3 (each the same offset into its group, so gS apart) as f32x4. */
// @ts-ignore: decorator
@inline function four(fx: i32, x: usize, k: i32): v128 {
  let v = f32x4.splat(ldf(fx, x, k));
  v = f32x4.replace_lane(v, 1, ldf(fx, x, k + gS));
  v = f32x4.replace_lane(v, 2, ldf(fx, x, k + 2 * gS));
  return f32x4.replace_lane(v, 3, ldf(fx, x, k + 3 * gS));
}

/** Lanes 0 and 1 of f32x4 `v` as f64x2 (exact). */
// @ts-ignore: decorator
@inline function low2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}

/** Lanes 2 and 3 of f32x4 `v` as f64x2 (exact). */
// @ts-ignore: decorator
@inline function high2(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 2, 3));
}

/** Two f64x2 rounded to f32 (nearest, as <f32> does) in one f32x4: a's lanes, then b's. */
// @ts-ignore: decorator
@inline function narrow4(a: v128, b: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

/** The f64 values at slots j and j + 1 of `p` as f64x2. */
// @ts-ignore: decorator
@inline function pair(p: usize, j: i32): v128 {
  return v128.load(p + (<usize>j << 3));
}

/**
 * (x - mean) * rstd * t for groups c..c+3 (one per lane) in f64, as the one-group path computes it, rounded
 * to f32 (its round(acc, ...) in fp32). m, r and t are f64x2 pairs: lanes 0-1, then 2-3.
 */
// @ts-ignore: decorator
@inline function xhatTimes4(x4: v128, m01: v128, m23: v128, r01: v128, r23: v128, t01: v128, t23: v128): v128 {
  const lo = f64x2.mul(f64x2.mul(f64x2.sub(low2(x4), m01), r01), t01);
  return narrow4(lo, f64x2.mul(f64x2.mul(f64x2.sub(high2(x4), m23), r23), t23));
}

/** Stores the statistics of group c from its mean and its sum of squared deviations. */
// @ts-ignore: decorator
@inline function putStats(s: usize, c: i32, m: f64, q: f64, eps: f64, acc: i32): void {
  const v = round(acc, q / <f64>gSize);
  store<f64>(s + (<usize>c << 3), m);
  store<f64>(s + (<usize>(gCount + c) << 3), v);
  store<f64>(s + (<usize>(2 * gCount + c) << 3), round(acc, 1 / Math.sqrt(v + eps)));
}

/**
 * stats for groups c..c+3 in fp32, one group per lane. The sums are f32 adds, which round as acc(s + v) does
 * for fp32 operands (and so are the differences and squares), so the values are the f64 path's; the lanes
 * make four independent chains where one group's sum is a single chain of dependent adds.
 */
// @ts-ignore: decorator
@inline function stats4(x: usize, fx: i32, eps: f64, s: usize, c: i32): void {
  let sum = f32x4.splat(0);
  for (let r = 0, k0 = c * gS; r < runs(); r++, k0 += step()) {
    for (let k = k0; k < k0 + gS; k++) sum = f32x4.add(sum, four(fx, x, k));
  }
  // The means: each sum divided in f64 and rounded to f32 once, as round(acc, sum / size).
  const size = f64x2.splat(<f64>gSize), m = narrow4(f64x2.div(low2(sum), size), f64x2.div(high2(sum), size));
  let q = f32x4.splat(0);
  for (let r = 0, k0 = c * gS; r < runs(); r++, k0 += step()) {
    for (let k = k0; k < k0 + gS; k++) {
      const d = f32x4.sub(four(fx, x, k), m);
      q = f32x4.add(q, f32x4.mul(d, d));
    }
  }
  putStats(s, c, <f64>f32x4.extract_lane(m, 0), <f64>f32x4.extract_lane(q, 0), eps, FP32);
  putStats(s, c + 1, <f64>f32x4.extract_lane(m, 1), <f64>f32x4.extract_lane(q, 1), eps, FP32);
  putStats(s, c + 2, <f64>f32x4.extract_lane(m, 2), <f64>f32x4.extract_lane(q, 2), eps, FP32);
  putStats(s, c + 3, <f64>f32x4.extract_lane(m, 3), <f64>f32x4.extract_lane(q, 3), eps, FP32);
}

/** Fills `s` with mean, biased variance and 1 / sqrt(variance + eps) for groups [c0, c1). */
export function stats(x: usize, fx: i32, eps: f64, s: usize, acc: i32, c0: i32, c1: i32): void {
  const size = <f64>gSize;
  // fp32 operands as a constant, so that the inlined copy loses the format branches of its loads.
  if (acc == FP32 && fx == FP32) for (; c0 + 4 <= c1; c0 += 4) stats4(x, FP32, eps, s, c0);
  if (acc == FP32) for (; c0 + 4 <= c1; c0 += 4) stats4(x, fx, eps, s, c0);
  for (let c = c0; c < c1; c++) {
    let sum: f64 = 0;
    for (let r = 0, k0 = c * gS; r < runs(); r++, k0 += step()) {
      for (let k = k0; k < k0 + gS; k++) sum = round(acc, sum + ld(fx, x, k));
    }
    const m = round(acc, sum / size);
    let q: f64 = 0;
    for (let r = 0, k0 = c * gS; r < runs(); r++, k0 += step()) {
      for (let k = k0; k < k0 + gS; k++) {
        const d = round(acc, ld(fx, x, k) - m);
        q = round(acc, q + round(acc, d * d));
      }
    }
    putStats(s, c, m, q, eps, acc);
  }
}

/**
 * y = (x - mean) * rstd * gamma + beta over groups [c0, c1), parameters per group (`perGroup`) or per
 * element of a group.
 */
export function normalize(
  x: usize, fx: i32, s: usize, gamma: usize, fg: i32, beta: usize, fb: i32, y: usize, fy: i32, perGroup: bool,
  c0: i32, c1: i32,
): void {
  for (let c = c0; c < c1; c++) {
    const mean = at(s, c), rstd = at(s, gCount * 2 + c);
    const m2 = f64x2.splat(mean), r2 = f64x2.splat(rstd);
    const g2 = f64x2.splat(perGroup ? ld(fg, gamma, c) : 0), b2 = f64x2.splat(perGroup ? ld(fb, beta, c) : 0);
    for (let r = 0, k0 = c * gS, i = 0; r < runs(); r++, k0 += step()) {
      let k = k0;
      // Four elements at a time into fp32: the same f64 arithmetic in two f64x2 halves, rounded once.
      for (; fy == FP32 && k + 4 <= k0 + gS; k += 4, i += 4) {
        const x4 = ld4(fx, x, k), gv = perGroup ? x4 : ld4(fg, gamma, i), bv = perGroup ? x4 : ld4(fb, beta, i);
        const gl = perGroup ? g2 : low2(gv), gh = perGroup ? g2 : high2(gv);
        const bl = perGroup ? b2 : low2(bv), bh = perGroup ? b2 : high2(bv);
        const lo = f64x2.add(f64x2.mul(f64x2.mul(f64x2.sub(low2(x4), m2), r2), gl), bl);
        st4(FP32, y, k, narrow4(lo, f64x2.add(f64x2.mul(f64x2.mul(f64x2.sub(high2(x4), m2), r2), gh), bh)));
      }
      for (; k < k0 + gS; k++, i++) {
        const p = perGroup ? c : i;
        st(fy, y, k, (ld(fx, x, k) - mean) * rstd * ld(fg, gamma, p) + ld(fb, beta, p));
      }
    }
  }
}

/**
 * affineGrad's per-group sums for groups c..c+3 in fp32, one group per lane (each term as the one-group path
 * rounds it; f32 adds round as acc(s + v) does), into tmp's slots c..c+3 and count + c..c+3.
 */
// @ts-ignore: decorator
@inline function affineGrad4(x: usize, fx: i32, gy: usize, fgy: i32, s: usize, tmp: usize, c: i32): void {
  const m01 = pair(s, c), m23 = pair(s, c + 2), r01 = pair(s, 2 * gCount + c), r23 = pair(s, 2 * gCount + c + 2);
  let dg = f32x4.splat(0), db = dg;
  for (let r = 0, k0 = c * gS; r < runs(); r++, k0 += step()) {
    for (let k = k0; k < k0 + gS; k++) {
      const g4 = four(fgy, gy, k);
      dg = f32x4.add(dg, xhatTimes4(four(fx, x, k), m01, m23, r01, r23, low2(g4), high2(g4)));
      db = f32x4.add(db, g4);
    }
  }
  v128.store(tmp + (<usize>c << 3), low2(dg));
  v128.store(tmp + (<usize>(c + 2) << 3), high2(dg));
  v128.store(tmp + (<usize>(gCount + c) << 3), low2(db));
  v128.store(tmp + (<usize>(gCount + c + 2) << 3), high2(db));
}

/**
 * [sum(g * xhat), sum(g)] per parameter element over groups [c0, c1), into `r` (2 * params elements); `tmp`
 * is f64[2 * params]. Per element of a group (not `perGroup`), every group adds into every sum, in group
 * order: then one call must cover all the groups.
 */
export function affineGrad(
  x: usize, fx: i32, gy: usize, fgy: i32, s: usize, r: usize, fr: i32, perGroup: bool, tmp: usize, acc: i32,
  c0: i32, c1: i32,
): void {
  const p = perGroup ? gCount : gSize, j0 = perGroup ? c0 : 0, j1 = perGroup ? c1 : p;
  for (let j = j0; j < j1; j++) {
    store<f64>(tmp + (<usize>j << 3), 0);
    store<f64>(tmp + (<usize>(p + j) << 3), 0);
  }
  let c = c0;
  const fp32 = fx == FP32 && fgy == FP32; // as a constant in the inlined copy (stats)
  if (perGroup && acc == FP32 && fp32) for (; c + 4 <= c1; c += 4) affineGrad4(x, FP32, gy, FP32, s, tmp, c);
  if (perGroup && acc == FP32) for (; c + 4 <= c1; c += 4) affineGrad4(x, fx, gy, fgy, s, tmp, c);
  for (; c < c1; c++) {
    const mean = at(s, c), rstd = at(s, gCount * 2 + c);
    for (let r = 0, k0 = c * gS, i = 0; r < runs(); r++, k0 += step()) {
      for (let k = k0; k < k0 + gS; k++, i++) {
        const j = perGroup ? c : i, g = ld(fgy, gy, k);
        const dg = tmp + (<usize>j << 3), db = tmp + (<usize>(p + j) << 3);
        store<f64>(dg, round(acc, load<f64>(dg) + round(acc, (ld(fx, x, k) - mean) * rstd * g)));
        store<f64>(db, round(acc, load<f64>(db) + g));
      }
    }
  }
  for (let j = j0; j < j1; j++) {
    st(fr, r, j, at(tmp, j));
    st(fr, r, p + j, at(tmp, p + j));
  }
}

/** dx = rstd / M * (M gh - sum gh - xhat sum(gh xhat)) with gh = g * gamma, over groups [c0, c1). */
export function inputGrad(
  x: usize, fx: i32, gamma: usize, fg: i32, gy: usize, fgy: i32, s: usize, dx: usize, fd: i32, perGroup: bool,
  acc: i32, c0: i32, c1: i32,
): void {
  let c = c0;
  const fp32 = fx == FP32 && fg == FP32 && fgy == FP32; // as a constant in the inlined copy (stats)
  for (; acc == FP32 && fp32 && c + 4 <= c1; c += 4) {
    inputGrad4(x, FP32, gamma, FP32, gy, FP32, s, dx, fd, perGroup, c);
  }
  for (; acc == FP32 && c + 4 <= c1; c += 4) inputGrad4(x, fx, gamma, fg, gy, fgy, s, dx, fd, perGroup, c);
  for (; c < c1; c++) {
    const mean = at(s, c), rstd = at(s, gCount * 2 + c);
    let s1: f64 = 0, s2: f64 = 0;
    for (let r = 0, k0 = c * gS, i = 0; r < runs(); r++, k0 += step()) {
      for (let k = k0; k < k0 + gS; k++, i++) {
        const gh = ld(fgy, gy, k) * ld(fg, gamma, perGroup ? c : i);
        s1 = round(acc, s1 + round(acc, gh));
        s2 = round(acc, s2 + round(acc, gh * ((ld(fx, x, k) - mean) * rstd)));
      }
    }
    inputGradApply(x, fx, gamma, fg, gy, fgy, s, dx, fd, perGroup, c, s1, s2);
  }
}

/**
 * inputGrad for groups c..c+3 in fp32, one per lane: s1 adds f32 products g * gamma (the exact f64 product
 * rounded once), s2 the f64 terms gh * xhat rounded to f32; f32 adds round as acc(s + v) does.
 */
// @ts-ignore: decorator
@inline function inputGrad4(
  x: usize, fx: i32, gamma: usize, fg: i32, gy: usize, fgy: i32, s: usize, dx: usize, fd: i32, perGroup: bool,
  c: i32,
): void {
  const m01 = pair(s, c), m23 = pair(s, c + 2), r01 = pair(s, 2 * gCount + c), r23 = pair(s, 2 * gCount + c + 2);
  const groupGamma = perGroup ? ld4(fg, gamma, c) : f32x4.splat(0);
  let s1 = f32x4.splat(0), s2 = s1;
  for (let r = 0, k0 = c * gS, i = 0; r < runs(); r++, k0 += step()) {
    for (let k = k0; k < k0 + gS; k++, i++) {
      const g4 = four(fgy, gy, k), gm = perGroup ? groupGamma : f32x4.splat(ldf(fg, gamma, i));
      s1 = f32x4.add(s1, f32x4.mul(g4, gm));
      const gh01 = f64x2.mul(low2(g4), low2(gm)), gh23 = f64x2.mul(high2(g4), high2(gm));
      s2 = f32x4.add(s2, xhatTimes4(four(fx, x, k), m01, m23, r01, r23, gh01, gh23));
    }
  }
  const a = <f64>f32x4.extract_lane(s1, 0), b = <f64>f32x4.extract_lane(s2, 0);
  inputGradApply(x, fx, gamma, fg, gy, fgy, s, dx, fd, perGroup, c, a, b);
  const a1 = <f64>f32x4.extract_lane(s1, 1), b1 = <f64>f32x4.extract_lane(s2, 1);
  inputGradApply(x, fx, gamma, fg, gy, fgy, s, dx, fd, perGroup, c + 1, a1, b1);
  const a2 = <f64>f32x4.extract_lane(s1, 2), b2 = <f64>f32x4.extract_lane(s2, 2);
  inputGradApply(x, fx, gamma, fg, gy, fgy, s, dx, fd, perGroup, c + 2, a2, b2);
  const a3 = <f64>f32x4.extract_lane(s1, 3), b3 = <f64>f32x4.extract_lane(s2, 3);
  inputGradApply(x, fx, gamma, fg, gy, fgy, s, dx, fd, perGroup, c + 3, a3, b3);
}

/** inputGrad's second pass over group c, given its sums s1 = sum(gh) and s2 = sum(gh * xhat). */
function inputGradApply(
  x: usize, fx: i32, gamma: usize, fg: i32, gy: usize, fgy: i32, s: usize, dx: usize, fd: i32, perGroup: bool,
  c: i32, s1: f64, s2: f64,
): void {
  const m = <f64>gSize, mean = at(s, c), rstd = at(s, gCount * 2 + c);
  const m2 = f64x2.splat(m), mean2 = f64x2.splat(mean), r2 = f64x2.splat(rstd), k2 = f64x2.splat(rstd / m);
  const s12 = f64x2.splat(s1), s22 = f64x2.splat(s2), g2 = f64x2.splat(perGroup ? ld(fg, gamma, c) : 0);
  for (let r = 0, k0 = c * gS, i = 0; r < runs(); r++, k0 += step()) {
    let k = k0;
    // Four elements at a time into fp32: the same f64 arithmetic in two f64x2 halves, rounded once.
    for (; fd == FP32 && k + 4 <= k0 + gS; k += 4, i += 4) {
      const g4 = ld4(fgy, gy, k), x4 = ld4(fx, x, k), gv = perGroup ? x4 : ld4(fg, gamma, i);
      const gl = perGroup ? g2 : low2(gv), gh = perGroup ? g2 : high2(gv);
      const ghl = f64x2.mul(low2(g4), gl), ghh = f64x2.mul(high2(g4), gh);
      const xl = f64x2.mul(f64x2.sub(low2(x4), mean2), r2), xh = f64x2.mul(f64x2.sub(high2(x4), mean2), r2);
      const lo = f64x2.mul(k2, f64x2.sub(f64x2.sub(f64x2.mul(m2, ghl), s12), f64x2.mul(xl, s22)));
      const hi = f64x2.mul(k2, f64x2.sub(f64x2.sub(f64x2.mul(m2, ghh), s12), f64x2.mul(xh, s22)));
      st4(FP32, dx, k, narrow4(lo, hi));
    }
    for (; k < k0 + gS; k++, i++) {
      const gh = ld(fgy, gy, k) * ld(fg, gamma, perGroup ? c : i);
      const xhat = (ld(fx, x, k) - mean) * rstd;
      st(fd, dx, k, (rstd / m) * (m * gh - s1 - xhat * s2));
    }
  }
}

/** Fills `s` for inference from moving statistics: rstd = acc(1 / sqrt(variance + eps)). */
export function inferStats(mean: usize, fm: i32, variance: usize, fv: i32, eps: f64, s: usize, acc: i32): void {
  for (let c = 0; c < gCount; c++) {
    const v = ld(fv, variance, c);
    store<f64>(s + (<usize>c << 3), ld(fm, mean, c));
    store<f64>(s + (<usize>(gCount + c) << 3), v);
    store<f64>(s + (<usize>(2 * gCount + c) << 3), round(acc, 1 / Math.sqrt(v + eps)));
  }
}

/** Writes [mean, variance] from `s` to `r` (2 * count elements). */
export function writeMoments(s: usize, r: usize, fr: i32): void {
  for (let c = 0; c < 2 * gCount; c++) st(fr, r, c, at(s, c));
}

/** Moving average: y = r - (r - m[at + i]) * k. */
export function ema(r: usize, fr: i32, m: usize, fm: i32, at0: i32, k: f64, y: usize, fy: i32, n: i32): void {
  for (let i = 0; i < n; i++) {
    const rv = ld(fr, r, i);
    st(fy, y, i, rv - (rv - ld(fm, m, at0 + i)) * k);
  }
}
