/**
 * Four elements at a time: loads to f32x4, rounding of f32x4 to a format, and stores, with the same bits
 * as the scalar conversions in format.ts. Used where f32 arithmetic is exact for the op (see
 * `exactInF32` in optim.ts and the elementwise fast paths), so one vector op replaces four. Comparisons
 * are the signed forms (native on x86) on values known to be non-negative. tests/wasm_simd_test.ts checks
 * the fp16 conversions against Deno's Float16Array.
 */

import { FP16, FP32 } from "./format";

// Lane constants are loaded from this table rather than written as v128 constants: V8 rebuilds a v128
// constant with four instructions at every use, inside loops too, while a load-and-splat is one.
const LANES = memory.data<u32>([
  0x7fff, 0x7c00, 112 << 23, 1 << 23, 113 << 23, 0x7fffffff, 0x7f800000, 143 << 23, 13 << 23, 0x477fe000, 0x80000000,
  0x200, 0x8000, 0xffff0000, 1,
]);

/** `v` in every i32 lane; `v` must be a compile-time constant (the index folds away after inlining). */
// @ts-ignore: decorator
@inline function splat(v: u32): v128 {
  const i: i32 = v == 0x7fff ? 0 : v == 0x7c00 ? 1 : v == 112 << 23 ? 2 : v == 1 << 23 ? 3 : v == 113 << 23 ? 4 : v == 0x7fffffff ? 5 : v == 0x7f800000 ? 6 : v == 143 << 23 ? 7 : v == 13 << 23 ? 8 : v == 0x477fe000 ? 9 : v == 0x80000000 ? 10 : v == 0x200 ? 11 : v == 0x8000 ? 12 : v == 0xffff0000 ? 13 : v == 1 ? 14 : -1;
  return i < 0 ? i32x4.splat(v) : v128.load32_splat(LANES + (<usize>i << 2));
}

/**
 * Four fp16 bit patterns (zero-extended in i32 lanes) -> their f32 values. Rebiasing the shifted bits
 * makes normal numbers; Infinity and NaN rebias twice; a subnormal m * 2^-24 is 2^-14 * (1 + m / 1024)
 * (the rebiased bits with the implicit bit set) minus 2^-14, exact. No f32 subnormal is touched (they
 * are slow on x86).
 */
// @ts-ignore: decorator
@inline function halfToF32x4(h: v128): v128 {
  const x = v128.and(h, splat(0x7fff)), e = v128.and(h, splat(0x7c00));
  const zero = i32x4.eq(e, i32x4.splat(0));
  const t = i32x4.add(i32x4.add(i32x4.shl(x, 13), splat(112 << 23)), v128.and(zero, splat(1 << 23)));
  let r = f32x4.sub(t, v128.and(zero, splat(113 << 23))); // - 2^-14 for subnormals, - 0 else
  r = i32x4.add(r, v128.and(i32x4.eq(e, splat(0x7c00)), splat(112 << 23)));
  return v128.or(r, i32x4.shl(v128.xor(h, x), 16)); // the sign
}

/**
 * The exponent bits that set the fp16 quantum of |f|: its own, at least that of 2^-14 (subnormals share
 * one quantum) and at most that of 2^16 (everything above overflows anyway; Infinity and NaN included).
 */
// @ts-ignore: decorator
@inline function quantumExponent(f: v128): v128 {
  return i32x4.min_s(i32x4.max_s(v128.and(f, splat(0x7f800000)), splat(113 << 23)), splat(143 << 23));
}

/**
 * The parts of rounding f to fp16 in f32: a = |f|; q = quantumExponent(f); M = 2^(e + 13) for |f| of exponent
 * e (the bits q + 13 << 23); s = a + M. The sum has f32 quantum 2^(e - 10), the fp16 quantum at e, so this
 * one f32 addition rounds |f| to fp16 (ties to even: M is an even multiple of it), and subtracting M from it
 * is exact. halfValue and halfBits read the result off s.
 */
// @ts-ignore: decorator
@inline function magic(q: v128): v128 {
  return i32x4.add(q, splat(13 << 23));
}

/**
 * f rounded to fp16, kept as f32, from the sum `s` and `m` of its parts (see magic). Above 65504 it is
 * Infinity, unless `bounded` says |f| is at most 65504 or not finite (a product of an fp16 value and a factor
 * of magnitude at most 1), so rounding cannot overflow and the check is left out. NaN stays NaN.
 */
// @ts-ignore: decorator
@inline function halfValue(f: v128, m: v128, s: v128, bounded: bool): v128 {
  let r = f32x4.sub(s, m);
  if (!bounded) r = v128.bitselect(splat(0x7f800000), r, f32x4.gt(r, splat(0x477fe000)));
  return v128.or(r, v128.and(f, splat(0x80000000)));
}

/**
 * The fp16 bit patterns (in i32 lanes) of f rounded, from its parts (see magic): subtracting M's bits from the
 * sum leaves the rounded significand (with its implicit bit), to which the exponent adds on; a carry into the
 * next binade, and overflow to 0x7c00, fall out of the sum. Larger values clamp to Infinity; NaN becomes
 * 0x7e00.
 */
// @ts-ignore: decorator
@inline function halfBits(f: v128, a: v128, q: v128, m: v128, s: v128): v128 {
  let h = i32x4.add(i32x4.sub(s, m), i32x4.shr_u(i32x4.sub(q, splat(113 << 23)), 13));
  h = v128.or(i32x4.min_u(h, splat(0x7c00)), v128.and(i32x4.gt_s(a, splat(0x7f800000)), splat(0x200)));
  return v128.or(h, v128.and(i32x4.shr_u(f, 16), splat(0x8000)));
}

/** f32x4 rounded to fp16 (nearest-even, subnormals, overflow unless `bounded`: see halfValue), kept as f32x4. */
// @ts-ignore: decorator
@inline function roundFp16x4(f: v128, bounded: bool): v128 {
  const m = magic(quantumExponent(f));
  return halfValue(f, m, f32x4.add(v128.and(f, splat(0x7fffffff)), m), bounded);
}

/** Rounds f32x4 `f` to fp16, stores the bits as elements i..i+3 at `p` and returns the rounded value. */
// @ts-ignore: decorator
@inline function roundStoreHalf4(p: usize, i: i32, f: v128): v128 {
  const a = v128.and(f, splat(0x7fffffff)), q = quantumExponent(f), m = magic(q), s = f32x4.add(a, m);
  const h = halfBits(f, a, q, m, s);
  v128.store64_lane(p + (<usize>i << 1), i16x8.narrow_i32x4_u(h, h), 0);
  return halfValue(f, m, s, false);
}

/** f32x4 rounded to fp16 (nearest-even), as fp16 bit patterns in i32 lanes. */
// @ts-ignore: decorator
@inline function roundToHalf4(f: v128): v128 {
  const a = v128.and(f, splat(0x7fffffff)), q = quantumExponent(f), m = magic(q);
  return halfBits(f, a, q, m, f32x4.add(a, m));
}

/** f32x4 rounded to bf16 (nearest-even on the top 16 bits; NaN kept). */
// @ts-ignore: decorator
@inline function roundBf16x4(f: v128): v128 {
  const r = v128.and(i32x4.add(i32x4.add(f, splat(0x7fff)), v128.and(i32x4.shr_u(f, 16), splat(1))), splat(0xffff0000));
  return v128.bitselect(f, r, i32x4.gt_s(v128.and(f, splat(0x7fffffff)), splat(0x7f800000)));
}

/** Elements i..i+3 of the tensor at `p` in format `fmt`, as f32x4 (exact). */
// @ts-ignore: decorator
@inline export function ld4(fmt: i32, p: usize, i: i32): v128 {
  if (fmt == FP32) return v128.load(p + (<usize>i << 2));
  const h = v128.load16x4_u(p + (<usize>i << 1));
  return fmt == FP16 ? halfToF32x4(h) : i32x4.shl(h, 16);
}

/** f32x4 rounded to `fmt` (kept as f32x4). */
// @ts-ignore: decorator
@inline export function round4(fmt: i32, v: v128): v128 {
  return fmt == FP32 ? v : fmt == FP16 ? roundFp16x4(v, false) : roundBf16x4(v);
}

/** round4 for a value of magnitude at most 65504 unless it is Infinity or NaN (see halfValue). */
// @ts-ignore: decorator
@inline export function round4Bounded(fmt: i32, v: v128): v128 {
  return fmt == FP16 ? roundFp16x4(v, true) : round4(fmt, v);
}

/** Rounds f32x4 `v` to `fmt`, stores it as elements i..i+3 and returns the rounded value (round4, st4). */
// @ts-ignore: decorator
@inline export function roundStore4(fmt: i32, p: usize, i: i32, v: v128): v128 {
  if (fmt == FP16) return roundStoreHalf4(p, i, v);
  const r = round4(fmt, v);
  st4(fmt, p, i, r);
  return r;
}

/** Rounds f32x4 `v` to `fmt` and stores it as elements i..i+3. */
// @ts-ignore: decorator
@inline export function st4(fmt: i32, p: usize, i: i32, v: v128): void {
  if (fmt == FP32) {
    v128.store(p + (<usize>i << 2), v);
    return;
  }
  const bits = fmt == FP16 ? roundToHalf4(v) : i32x4.shr_u(roundBf16x4(v), 16);
  v128.store64_lane(p + (<usize>i << 1), i16x8.narrow_i32x4_u(bits, bits), 0);
}

/**
 * c + a * b per lane: the product rounded, then the sum (ref's acc(s + acc(x * w)) in f32); the `--fast`
 * build fuses them (relaxed SIMD), which is why it is not bit-exact.
 */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * Stores the transpose of the 4 x 4 block whose rows are x0..x3: row r of the result (lane r of every x) at
 * `d + r * step` bytes.
 */
// @ts-ignore: decorator
@inline export function storeTransposed4(d: usize, step: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = i32x4.shuffle(x0, x1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(x2, x3, 0, 4, 1, 5), t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
  v128.store(d, i32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(d + step, i32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(d + 2 * step, i32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(d + 3 * step, i32x4.shuffle(t1, t3, 2, 3, 6, 7));
}
