/**
 * Elementwise ops, bias_add and sum_to, and data movement (lib/graph/ops.ts; ref: kernels/ref/elementwise.ts,
 * linear.ts, shape.ts). Each output is computed in f64 from the exact inputs and rounded once; sums run
 * sequentially, rounding every partial sum to the accumulate format.
 */

import { FP16, FP32, ld, ldf, round, st, stExact } from "./format";
import { ld4, round4, round4Bounded, roundStore4, st4 } from "./simd";
import { gelu, geluGrad, hashUniform, tanh } from "./math";

/** map1's op codes (the host's copy is generated from this enum by kernels/wasm/build.ts). */
export enum Map1 { RELU = 0, TANH = 1, GELU = 2, SCALE = 3, CAST = 4 }

/** y = f(x): relu, tanh, gelu, scale (x * factor) or cast, chosen by `op` (one loop per op: no switch inside). */
export function map1(op: i32, x: usize, fx: i32, y: usize, fy: i32, n: i32, factor: f64): void {
  let i = 0;
  // relu and cast pick or keep a value exact in f32 and round it once: four at a time; 16-bit relu in and
  // out of one format works on the bits, eight at a time.
  if (op == Map1.RELU && fx == fy && fx != FP32) {
    const nanAbove = i16x8.splat(<i16>(fx == FP16 ? 0x7c00 : 0x7f80)), low = i16x8.splat(0x7fff);
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(x + (<usize>i << 1)), a = v128.and(h, low);
      const keep = v128.or(i16x8.gt_s(a, nanAbove), i16x8.eq(a, h)); // NaN, or sign bit clear
      v128.store(y + (<usize>i << 1), v128.and(h, keep));
    }
  } else if (op == Map1.RELU) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = ld4(fx, x, i);
      st4(fy, y, i, v128.bitselect(v, zero, v128.or(f32x4.gt(v, zero), f32x4.ne(v, v))));
    }
  } else if (op == Map1.CAST) for (; i + 4 <= n; i += 4) st4(fy, y, i, ld4(fx, x, i));
  map1Tail(op, x, fx, y, fy, i, n, factor);
}

function map1Tail(op: i32, x: usize, fx: i32, y: usize, fy: i32, from: i32, n: i32, factor: f64): void {
  if (op == Map1.RELU) {
    for (let i = from; i < n; i++) {
      const v = ld(fx, x, i);
      st(fy, y, i, v > 0 ? v : v != v ? v : 0);
    }
  } else if (op == Map1.TANH) for (let i = from; i < n; i++) st(fy, y, i, tanh(ld(fx, x, i)));
  else if (op == Map1.GELU) for (let i = from; i < n; i++) st(fy, y, i, gelu(ld(fx, x, i)));
  else if (op == Map1.SCALE) for (let i = from; i < n; i++) st(fy, y, i, ld(fx, x, i) * factor);
  else for (let i = from; i < n; i++) st(fy, y, i, ld(fx, x, i));
}

/** map2's op codes (the host's copy is generated from this enum by kernels/wasm/build.ts). */
export enum Map2 { RELU_GRAD = 0, TANH_GRAD = 1, GELU_GRAD = 2, ADD = 3 }

/** y = f(a, b): the three activation gradients (a = x or the forward output, b = g) and add. */
export function map2(op: i32, a: usize, fa: i32, b: usize, fb: i32, y: usize, fy: i32, n: i32): void {
  let i = 0;
  if (op == Map2.RELU_GRAD && fa == fy && fb == fy && fy != FP32) {
    // 16-bit x > 0 on the bits: sign clear, not zero, not NaN; eight at a time.
    const nanAbove = i16x8.splat(<i16>(fa == FP16 ? 0x7c00 : 0x7f80)), low = i16x8.splat(0x7fff);
    const zero = i16x8.splat(0);
    for (; i + 8 <= n; i += 8) {
      const h = v128.load(a + (<usize>i << 1)), m = v128.and(h, low);
      const pos = v128.andnot(v128.and(i16x8.eq(m, h), v128.not(i16x8.eq(m, zero))), i16x8.gt_s(m, nanAbove));
      v128.store(y + (<usize>i << 1), v128.and(v128.load(b + (<usize>i << 1)), pos));
    }
  } else if (op == Map2.RELU_GRAD) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) st4(fy, y, i, v128.bitselect(ld4(fb, b, i), zero, f32x4.gt(ld4(fa, a, i), zero)));
  } else if (op == Map2.ADD && sumExactInF32(fa, fb, fy)) {
    for (; i + 4 <= n; i += 4) st4(fy, y, i, f32x4.add(ld4(fa, a, i), ld4(fb, b, i)));
  }
  map2Tail(op, a, fa, b, fb, y, fy, i, n);
}

/**
 * True when a + b computed in f32 and rounded to `fy` equals the exact sum rounded once: fy is fp32
 * (f32.add is that rounding), or both operands are already in the 16-bit fy (two roundings of a sum of
 * p-bit numbers through 24 >= 2p + 2 bits are harmless).
 */
// @ts-ignore: decorator
@inline function sumExactInF32(fa: i32, fb: i32, fy: i32): bool {
  return fy == FP32 || (fa == fy && fb == fy);
}

function map2Tail(op: i32, a: usize, fa: i32, b: usize, fb: i32, y: usize, fy: i32, from: i32, n: i32): void {
  if (op == Map2.RELU_GRAD) for (let i = from; i < n; i++) st(fy, y, i, ld(fa, a, i) > 0 ? ld(fb, b, i) : 0);
  else if (op == Map2.TANH_GRAD) {
    for (let i = from; i < n; i++) {
      const u = ld(fa, a, i);
      st(fy, y, i, ld(fb, b, i) * (1 - u * u));
    }
  } else if (op == Map2.GELU_GRAD) for (let i = from; i < n; i++) st(fy, y, i, ld(fb, b, i) * geluGrad(ld(fa, a, i)));
  else for (let i = from; i < n; i++) st(fy, y, i, ld(fa, a, i) + ld(fb, b, i));
}

/** Inverted dropout with the keep test of kernels/ref/elementwise.ts (a hash of seed, salt and index). */
export function dropout(x: usize, fx: i32, seed: u32, salt: u32, rate: f64, y: usize, fy: i32, n: i32): void {
  const keep = 1 - rate;
  for (let i = 0; i < n; i++) {
    if (hashUniform(seed, salt, <u32>i, 0x64726f70) >= rate) st(fy, y, i, ld(fx, x, i) / keep);
    else stExact(fy, y, i, 0);
  }
}

/**
 * The exponent mask of format `f` in every lane (i32 lanes for fp32, i16 lanes otherwise). Built from a
 * runtime value on purpose: a constant would be folded into a v128.const, which V8 rebuilds at every use,
 * inside loops too (a load-and-splat or a register is one instruction or none).
 */
// @ts-ignore: decorator
@inline function exponentLanes(f: i32): v128 {
  return i32x4.splat(f == FP32 ? 0x7f800000 : f == FP16 ? 0x7c007c00 : 0x7f807f80);
}

/** All ones in each lane (i32 lanes when `wide`, else i16) of the vector at `p` whose exponent bits `e` are all set. */
// @ts-ignore: decorator
@inline function exponentFull(p: usize, e: v128, wide: bool): v128 {
  const v = v128.and(v128.load(p), e);
  return wide ? i32x4.eq(v, e) : i16x8.eq(v, e);
}

/** allFinite's vector loop for 32-bit (`wide`) or 16-bit elements: true when some vector holds a non-finite. */
// @ts-ignore: decorator
@inline function someNonFinite(x: usize, vectors: i32, e: v128, wide: bool): bool {
  let bad = i32x4.splat(0), k = 0;
  for (; k + 4 <= vectors; k += 4) {
    const p = x + (<usize>k << 4);
    const b01 = v128.or(exponentFull(p, e, wide), exponentFull(p + 16, e, wide));
    bad = v128.or(bad, v128.or(b01, v128.or(exponentFull(p + 32, e, wide), exponentFull(p + 48, e, wide))));
    if ((k & 15) == 12 && v128.any_true(bad)) return true;
  }
  for (; k < vectors; k++) bad = v128.or(bad, exponentFull(x + (<usize>k << 4), e, wide));
  return v128.any_true(bad);
}

/** 1 when every element is finite, else 0. */
export function allFinite(x: usize, fx: i32, n: i32): i32 {
  // Finite unless the exponent bits are all ones: tested on the bits, whole vectors first, with one branch
  // per 16 vectors (a step's gradients and parameters are finite as a rule, so the test reads them all).
  // Four vectors an iteration: one at a time ran at half the speed (measured on 200,704 fp32 elements in L2:
  // 60 -> 27 us; fp16 31 -> 13 us).
  const vectors = fx == FP32 ? n >> 2 : n >> 3, e = exponentLanes(fx);
  if (fx == FP32 ? someNonFinite(x, vectors, e, true) : someNonFinite(x, vectors, e, false)) return 0;
  for (let i = fx == FP32 ? vectors << 2 : vectors << 3; i < n; i++) {
    const v = ldf(fx, x, i);
    if (v - v != 0) return 0; // v - v is 0 for finite v and NaN for Infinity and NaN
  }
  return 1;
}

/** 1 at `out` when some element is not finite, else 0: allFinite for one thread's range of a parallel call. */
export function nonFiniteInto(x: usize, fx: i32, n: i32, out: usize): void {
  store<i32>(out, 1 - allFinite(x, fx, n));
}

/** countLost for one thread's range of a parallel call, stored at `out`. */
export function countLostInto(w0: usize, w1: usize, fw: i32, s: usize, fs: i32, n: i32, out: usize): void {
  store<i32>(out, countLost(w0, w1, fw, s, fs, n));
}

/** The four i32 lanes of `v` added. */
// @ts-ignore: decorator
@inline function lanesSum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/**
 * Lost updates among `n` elements: the step at `s` is nonzero (NaN included) and the parameter after, `w1`,
 * compares equal to the one before, `w0` (as numbers: +0 == -0, NaN != NaN). `w0` and `w1` share format `fw`.
 */
export function countLost(w0: usize, w1: usize, fw: i32, s: usize, fs: i32, n: i32): i32 {
  let i = 0, acc = i32x4.splat(0);
  const zero = i32x4.splat(0);
  if (fw == FP32 && fs == FP32) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const hit = v128.and(f32x4.eq(v128.load(w0 + o), v128.load(w1 + o)), f32x4.ne(v128.load(s + o), zero));
      acc = i32x4.sub(acc, hit); // a hit lane is -1
    }
  } else if (fw != FP32 && fs == fw) {
    // 16-bit, eight at a time on the bits: the same bits and not NaN, or two zeros of any sign. The masks
    // are built from runtime values (see exponentLanes).
    const inf = exponentLanes(fw), mag = v128.or(inf, i32x4.splat(0x03ff03ff));
    for (; i + 8 <= n; i += 8) {
      const o = <usize>i << 1;
      const a = v128.load(w0 + o), b = v128.load(w1 + o);
      const equal = v128.or(
        v128.andnot(i16x8.eq(a, b), i16x8.gt_s(v128.and(a, mag), inf)),
        i16x8.eq(v128.and(v128.or(a, b), mag), zero),
      );
      const hit = v128.andnot(equal, i16x8.eq(v128.and(v128.load(s + o), mag), zero));
      acc = i32x4.sub(acc, i32x4.extadd_pairwise_i16x8_s(hit));
    }
  }
  let lost = lanesSum(acc);
  for (; i < n; i++) if (ldf(fs, s, i) != 0 && ldf(fw, w1, i) == ldf(fw, w0, i)) lost++;
  return lost;
}

/** y = x + b, b broadcast over (outer, inner) around its `mid` axis. */
export function biasAdd(x: usize, fx: i32, b: usize, fb: i32, y: usize, fy: i32, outer: i32, mid: i32, inner: i32): void {
  if (inner == 1 && sumExactInF32(fx, fb, fy)) {
    // A dense layer's bias: rows of `mid`, four columns at a time.
    for (let o = 0; o < outer; o++) {
      const base = o * mid;
      let m = 0;
      for (; m + 4 <= mid; m += 4) st4(fy, y, base + m, f32x4.add(ld4(fx, x, base + m), ld4(fb, b, m)));
      for (; m < mid; m++) st(fy, y, base + m, ld(fx, x, base + m) + ld(fb, b, m));
    }
    return;
  }
  const simd = sumExactInF32(fx, fb, fy);
  for (let o = 0; o < outer; o++) {
    for (let m = 0; m < mid; m++) {
      const base = (o * mid + m) * inner, bv = ld(fb, b, m);
      let i = 0;
      if (simd) {
        // A convolution's bias: one value over a channel's pixels.
        const b4 = f32x4.splat(<f32>bv);
        for (; i + 4 <= inner; i += 4) st4(fy, y, base + i, f32x4.add(ld4(fx, x, base + i), b4));
      }
      for (; i < inner; i++) st(fy, y, base + i, ld(fx, x, base + i) + bv);
    }
  }
}

/** y[m] = sum over (outer, inner) in row-major order of g, rounding partial sums to `acc`. */
export function sumTo(g: usize, fg: i32, y: usize, fy: i32, outer: i32, mid: i32, inner: i32, acc: i32): void {
  for (let m = 0; m < mid; m++) {
    if (acc == FP32) {
      let s: f32 = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * mid + m) * inner;
        for (let i = 0; i < inner; i++) s += ldf(fg, g, base + i);
      }
      st(fy, y, m, s);
    } else {
      let s: f64 = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * mid + m) * inner;
        for (let i = 0; i < inner; i++) s = round(acc, s + ld(fg, g, base + i));
      }
      st(fy, y, m, s);
    }
  }
}

/** Copies `n` elements, converting between formats (a plain copy when they agree). */
export function copy(x: usize, fx: i32, xAt: i32, y: usize, fy: i32, yAt: i32, n: i32): void {
  if (fx == fy) {
    const b: usize = fx == FP32 ? 2 : 1;
    memory.copy(y + (<usize>yAt << b), x + (<usize>xAt << b), <usize>n << b);
  } else {
    for (let i = 0; i < n; i++) st(fy, y, yAt + i, ld(fx, x, xAt + i));
  }
}

/** For each outer index, copies a block of `size * inner` elements between two tensors split along an axis. */
export function copyAxis(
  x: usize, fx: i32, xAxis: i32, y: usize, fy: i32, yAxis: i32,
  outer: i32, inner: i32, from: i32, to: i32, size: i32,
): void {
  for (let o = 0; o < outer; o++) copy(x, fx, (o * xAxis + from) * inner, y, fy, (o * yAxis + to) * inner, size * inner);
}

/**
 * y = x transposed; `dims` holds the output shape and, after it, the input stride of each output axis
 * (i32[2 * rank]); `idx` is scratch of i32[rank].
 */
export function transpose(x: usize, fx: i32, y: usize, fy: i32, n: i32, rank: i32, dims: usize, idx: usize): void {
  for (let i = 0; i < rank; i++) store<i32>(idx + (<usize>i << 2), 0);
  for (let k = 0; k < n; k++) {
    let src = 0;
    for (let i = 0; i < rank; i++) src += load<i32>(idx + (<usize>i << 2)) * load<i32>(dims + (<usize>(rank + i) << 2));
    st(fy, y, k, ld(fx, x, src));
    for (let i = rank - 1; i >= 0; i--) {
      const p = idx + (<usize>i << 2), v = load<i32>(p) + 1;
      if (v < load<i32>(dims + (<usize>i << 2))) {
        store<i32>(p, v);
        break;
      }
      store<i32>(p, 0);
    }
  }
}

/** Widens `n` elements of format `fx` to f32 at `y` (exact), so the host can copy them out in one slice. */
export function widen(x: usize, fx: i32, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(y + (<usize>i << 2), ld4(fx, x, i));
  for (; i < n; i++) store<f32>(y + (<usize>i << 2), ldf(fx, x, i));
}

/**
 * The vector roundings of the optimizer updates, four f32 values at a time to `fmt` (whole vectors only), the
 * rounded values kept as f32 at `y`. `mode` 0: round4; 1: round4Bounded (defined for magnitudes up to 65504,
 * Infinity and NaN); 2: roundStore4, which also stores the elements (format `fmt`) at `z`. The engine does
 * not call it: tests pin the bits of those roundings with it.
 */
export function roundLanes(x: usize, fmt: i32, mode: i32, y: usize, z: usize, n: i32): void {
  for (let i = 0; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const r = mode == 0 ? round4(fmt, v) : mode == 1 ? round4Bounded(fmt, v) : roundStore4(fmt, z, i, v);
    v128.store(y + (<usize>i << 2), r);
  }
}
