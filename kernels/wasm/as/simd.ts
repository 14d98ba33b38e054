/**
 * Four elements at a time: loads to f32x4, rounding of f32x4 to a format, and stores, with the same bits
 * as the scalar conversions in format.ts. Used where f32 arithmetic is exact for the op (see
 * `exactInF32` in optim.ts and the elementwise fast paths), so one vector op replaces four. Comparisons
 * and conversions are the signed forms (native on x86) on values known to be non-negative.
 */

import { FP16, FP32 } from "./format";

// @ts-ignore: decorator
@inline function splat(v: u32): v128 {
  return i32x4.splat(v);
}

/** Four fp16 bit patterns (zero-extended in i32 lanes) -> their f32 values. */
// @ts-ignore: decorator
@inline function halfToF32x4(h: v128): v128 {
  const m = v128.and(h, splat(0x3ff)), e = v128.and(h, splat(0x7c00));
  const normal = i32x4.add(i32x4.shl(v128.and(h, splat(0x7fff)), 13), splat(112 << 23));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(m), f32x4.splat(5.9604644775390625e-8)); // m * 2^-24
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
  const sub = i32x4.sub(f32x4.add(a, f32x4.splat(0.5)), splat(0x3f000000));
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
  const rs = f32x4.sub(f32x4.add(a, f32x4.splat(0.5)), f32x4.splat(0.5));
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
