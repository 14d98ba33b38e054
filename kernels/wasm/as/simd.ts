/**
 * Four elements at a time: loads to f32x4, rounding of f32x4 to a format, and stores, with the same bits
 * as the scalar conversions in format.ts. Used where f32 arithmetic is exact for the op (see
 * `exactInF32` in optim.ts and the elementwise fast paths), so one vector op replaces four. Comparisons
 * and conversions are the signed forms (native on x86) on values known to be non-negative.
 */

import { FP16, FP32 } from "./format";

// Lane constants are loaded from this table rather than written as v128 constants: V8 rebuilds a v128
// constant with four instructions at every use, inside loops too, while a load-and-splat is one.
const LANES = memory.data<u32>([
  0x3ff, 0x7c00, 0x7fff, 112 << 23, 0x7f800000, 0x8000, 0x7fffffff, 0x0fff, 1, 0xffffe000, 112 << 10, 0x477fe000, 0x3f000000, 0x38800000, 0x7e00, 0xffff0000, 0x80000000, 0x33800000,
]);

/** `v` in every i32 lane; `v` must be a compile-time constant (the index folds away after inlining). */
// @ts-ignore: decorator
@inline function splat(v: u32): v128 {
  const i: i32 = v == 0x3ff ? 0 : v == 0x7c00 ? 1 : v == 0x7fff ? 2 : v == 112 << 23 ? 3 : v == 0x7f800000 ? 4 : v == 0x8000 ? 5 : v == 0x7fffffff ? 6 : v == 0x0fff ? 7 : v == 1 ? 8 : v == 0xffffe000 ? 9 : v == 112 << 10 ? 10 : v == 0x477fe000 ? 11 : v == 0x3f000000 ? 12 : v == 0x38800000 ? 13 : v == 0x7e00 ? 14 : v == 0xffff0000 ? 15 : v == 0x80000000 ? 16 : v == 0x33800000 ? 17 : -1;
  return i < 0 ? i32x4.splat(v) : v128.load32_splat(LANES + (<usize>i << 2));
}

/** Four fp16 bit patterns (zero-extended in i32 lanes) -> their f32 values. */
// @ts-ignore: decorator
@inline function halfToF32x4(h: v128): v128 {
  const m = v128.and(h, splat(0x3ff)), e = v128.and(h, splat(0x7c00));
  const normal = i32x4.add(i32x4.shl(v128.and(h, splat(0x7fff)), 13), splat(112 << 23));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(m), splat(0x33800000)); // m * 2^-24
  let b = v128.bitselect(normal, sub, i32x4.ne(e, splat(0)));
  b = v128.bitselect(v128.or(i32x4.shl(m, 13), splat(0x7f800000)), b, i32x4.eq(e, splat(0x7c00)));
  return v128.or(b, i32x4.shl(v128.and(h, splat(0x8000)), 16));
}

/**
 * f32x4 rounded to fp16 (nearest-even), as fp16 bit patterns in i32 lanes. Normal results rebias the
 * rounded f32 bits; below 2^-14, a + 0.5 rounds to the f32 quantum 2^-24 on [0.5, 1), so its fraction
 * bits are the subnormal's fraction.
 */
// @ts-ignore: decorator
@inline function roundToHalf4(f: v128): v128 {
  const a = v128.and(f, splat(0x7fffffff));
  const rn = v128.and(i32x4.add(i32x4.add(a, splat(0x0fff)), v128.and(i32x4.shr_u(a, 13), splat(1))), splat(0xffffe000));
  let h = i32x4.sub(i32x4.shr_u(rn, 13), splat(112 << 10));
  h = v128.bitselect(splat(0x7c00), h, i32x4.gt_s(rn, splat(0x477fe000))); // overflow
  const sub = i32x4.sub(f32x4.add(a, splat(0x3f000000)), splat(0x3f000000));
  h = v128.bitselect(h, sub, i32x4.ge_s(a, splat(0x38800000)));
  const special = v128.bitselect(splat(0x7e00), splat(0x7c00), i32x4.gt_s(a, splat(0x7f800000)));
  h = v128.bitselect(special, h, i32x4.ge_s(a, splat(0x7f800000)));
  return v128.or(h, v128.and(i32x4.shr_u(f, 16), splat(0x8000)));
}

/** f32x4 rounded to fp16 (nearest-even, subnormals, overflow), kept as f32x4. */
// @ts-ignore: decorator
@inline function roundFp16x4(f: v128): v128 {
  const a = v128.and(f, splat(0x7fffffff));
  let rn = v128.and(i32x4.add(i32x4.add(a, splat(0x0fff)), v128.and(i32x4.shr_u(a, 13), splat(1))), splat(0xffffe000));
  rn = v128.bitselect(splat(0x7f800000), rn, i32x4.gt_s(rn, splat(0x477fe000)));
  const rs = f32x4.sub(f32x4.add(a, splat(0x3f000000)), splat(0x3f000000));
  let r = v128.bitselect(rn, rs, i32x4.ge_s(a, splat(0x38800000)));
  r = v128.bitselect(a, r, i32x4.ge_s(a, splat(0x7f800000)));
  return v128.or(r, v128.and(f, splat(0x80000000)));
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
  return fmt == FP32 ? v : fmt == FP16 ? roundFp16x4(v) : roundBf16x4(v);
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
