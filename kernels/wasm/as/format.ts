/**
 * Storage formats inside the wasm engine and their exact round-to-nearest-even.
 *
 * fp32 tensors are stored as f32, fp16 and bf16 as u16 bit patterns (half the memory). Kernels load any
 * element as a number that is exact in its format, compute as the ref engine does, and round once on store.
 * The roundings below give the same bits as lib/formats/format.ts for every input, NaN aside (wasm does not
 * fix NaN payloads).
 */

/** Format codes (the host's copy is generated from this enum by kernels/wasm/build.ts). */
export enum Format { FP32 = 0, FP16 = 1, BF16 = 2 }

// Short names for the kernels.
export const FP32: i32 = Format.FP32;
export const FP16: i32 = Format.FP16;
export const BF16: i32 = Format.BF16;

/** Address of the 65536-entry fp16-bits -> f32 table; written by the host, set per instance by init. */
let halfTable: usize = 0;

/** Sets the per-instance pointers to tables the host wrote into shared memory. */
export function setHalfTable(p: usize): void {
  halfTable = p;
}

/** fp16 bits -> the f32 value they encode (exact). */
// @ts-ignore: decorator
@inline export function halfToF32(h: u32): f32 {
  return load<f32>(halfTable + (<usize>h << 2));
}

// The conversions below are branch-free (wasm select): 16-bit gradients and updates mix subnormal and
// normal values unpredictably.

/** Bits of the fp16 value `f`, which must be exactly representable in fp16 (or NaN/Infinity). */
// @ts-ignore: decorator
@inline export function f32ToHalfBits(f: f32): u32 {
  const b = reinterpret<u32>(f);
  const a = b & 0x7fffffff;
  const normal = ((a >>> 13) - (112 << 10)) & 0x7fff; // rebias 127 -> 15
  const small = reinterpret<f32>(select<u32>(a, 0, a < 0x38800000));
  const sub = <u32>(small * <f32>16777216.0); // a multiple of 2^-24
  let h = select<u32>(normal, sub, a >= 0x38800000);
  h = select<u32>(select<u32>(0x7e00, 0x7c00, a > 0x7f800000), h, a >= 0x7f800000);
  return h | ((b >>> 16) & 0x8000);
}

/** Rounds an f32 value to fp16 precision and range (nearest-even), kept as f32. */
// @ts-ignore: decorator
@inline export function f32RoundFp16(f: f32): f32 {
  const b = reinterpret<u32>(f);
  const a = b & 0x7fffffff;
  let rn = (a + 0x0fff + ((a >>> 13) & 1)) & 0xffffe000;
  rn = select<u32>(0x7f800000, rn, rn > 0x477fe000); // above 65504 after rounding: overflow
  // Subnormal fp16 range: the quantum is 2^-24, which is the f32 quantum on [0.5, 1).
  const rs = reinterpret<u32>((reinterpret<f32>(a) + <f32>0.5) - <f32>0.5);
  let r = select<u32>(rn, rs, a >= 0x38800000);
  r = select<u32>(a, r, a >= 0x7f800000); // Infinity and NaN
  return reinterpret<f32>(r | (b & 0x80000000));
}

/** Rounds an f32 value to bf16 (nearest-even on the top 16 bits), kept as f32. */
// @ts-ignore: decorator
@inline export function f32RoundBf16(f: f32): f32 {
  const b = reinterpret<u32>(f);
  if ((b & 0x7fffffff) > 0x7f800000) return f; // NaN
  return reinterpret<f32>((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000);
}

/** Rounds an f32 value to format `fmt`. */
// @ts-ignore: decorator
@inline export function roundF32(fmt: i32, f: f32): f32 {
  return fmt == FP32 ? f : fmt == FP16 ? f32RoundFp16(f) : f32RoundBf16(f);
}

/**
 * Rounds an f64 value to a binary format with `drop` fewer significand bits than f64, normal numbers from
 * `minNormal` and largest finite value `maxFinite`, directly on the f64 bits (nearest-even). Below
 * minNormal the quantum is fixed; adding and subtracting `subC` (the power of two whose f64 quantum is that
 * quantum) rounds to it.
 */
// @ts-ignore: decorator
@inline function roundF64(x: f64, drop: u64, minNormal: f64, subC: f64, maxFinite: f64): f64 {
  const b = reinterpret<u64>(x), a = b & 0x7fffffffffffffff;
  const half = (<u64>1 << (drop - 1)) - 1;
  let rn = reinterpret<f64>((a + half + ((a >> drop) & 1)) & ~((<u64>1 << drop) - 1));
  rn = select<f64>(Infinity, rn, rn > maxFinite);
  const rs = (reinterpret<f64>(a) + subC) - subC;
  let r = reinterpret<u64>(select<f64>(rn, rs, reinterpret<f64>(a) >= minNormal));
  r = select<u64>(a, r, a >= 0x7ff0000000000000); // Infinity and NaN
  return reinterpret<f64>(r | (b & 0x8000000000000000));
}

/** Rounds an f64 value to format `fmt` (exactly, one rounding). */
// @ts-ignore: decorator
@inline export function round(fmt: i32, x: f64): f64 {
  if (fmt == FP32) return <f64><f32>x;
  if (fmt == FP16) return roundF64(x, 42, 6.103515625e-5, 268435456.0, 65504);
  return roundF64(x, 45, 1.1754943508222875e-38, 4.1359030627651384e-25, 3.3895313892515355e38);
}

/** Element `i` of the tensor at `p` in format `fmt`, as f32 (exact). */
// @ts-ignore: decorator
@inline export function ldf(fmt: i32, p: usize, i: i32): f32 {
  if (fmt == FP32) return load<f32>(p + (<usize>i << 2));
  const h = <u32>load<u16>(p + (<usize>i << 1));
  return fmt == FP16 ? halfToF32(h) : reinterpret<f32>(h << 16);
}

/** Element `i` of the tensor at `p` in format `fmt`, as f64 (exact). */
// @ts-ignore: decorator
@inline export function ld(fmt: i32, p: usize, i: i32): f64 {
  return <f64>ldf(fmt, p, i);
}

/** Stores `v`, which must already be exact in `fmt`, as element `i`. */
// @ts-ignore: decorator
@inline export function stExact(fmt: i32, p: usize, i: i32, v: f32): void {
  if (fmt == FP32) store<f32>(p + (<usize>i << 2), v);
  else if (fmt == FP16) store<u16>(p + (<usize>i << 1), <u16>f32ToHalfBits(v));
  else store<u16>(p + (<usize>i << 1), <u16>(reinterpret<u32>(v) >>> 16));
}

/** Rounds the f32 value `v` to `fmt` and stores it as element `i`. */
// @ts-ignore: decorator
@inline export function stf(fmt: i32, p: usize, i: i32, v: f32): void {
  stExact(fmt, p, i, roundF32(fmt, v));
}

/**
 * Bits of f64 `x` rounded (nearest-even, once) to a 16-bit format with `frac` fraction bits, exponent
 * bias `bias` and smallest normal `minNormal`: normal numbers round on the f64 bits and rebias; below
 * minNormal, `x * sub` (exact; sub = 2^(frac - emin)) rounded to an integer by f64.nearest is the
 * subnormal's fraction.
 */
// @ts-ignore: decorator
@inline function f64To16Bits(x: f64, frac: u64, bias: u64, minNormal: f64, sub: f64, infBits: u32): u32 {
  const b = reinterpret<u64>(x), a = b & 0x7fffffffffffffff, drop = 52 - frac;
  const rounded = (a + ((<u64>1 << (drop - 1)) - 1) + ((a >> drop) & 1)) >> drop;
  const normal = <u32>min<u64>(rounded - ((1023 - bias) << frac), <u64>infBits); // overflow -> Infinity
  const small = <u32><i32>nearest<f64>(reinterpret<f64>(select<u64>(a, 0, reinterpret<f64>(a) < minNormal)) * sub);
  let h = select<u32>(normal, small, reinterpret<f64>(a) >= minNormal);
  h = select<u32>(infBits | select<u32>(infBits >>> 1 & ~infBits, 0, a > 0x7ff0000000000000), h, a >= 0x7ff0000000000000);
  return h | <u32>((b >> 48) & 0x8000);
}

/** Rounds the f64 value `v` to `fmt` (once) and stores it as element `i`. */
// @ts-ignore: decorator
@inline export function st(fmt: i32, p: usize, i: i32, v: f64): void {
  if (fmt == FP32) store<f32>(p + (<usize>i << 2), <f32>v);
  else if (fmt == FP16) store<u16>(p + (<usize>i << 1), <u16>f64To16Bits(v, 10, 15, 6.103515625e-5, 16777216.0, 0x7c00));
  else store<u16>(p + (<usize>i << 1), <u16>f64To16Bits(v, 7, 127, 1.1754943508222875e-38, 1.0889035741470031e40, 0x7f80));
}
