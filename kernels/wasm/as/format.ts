/**
 * Storage formats inside the wasm engine and their exact round-to-nearest-even.
 *
 * fp32 tensors are stored as f32, fp16 and bf16 as u16 bit patterns (half the memory). Kernels load any
 * element as a number that is exact in its format, compute as the ref engine does, and round once on store.
 * The roundings below give the same bits as lib/formats/format.ts for every input, NaN aside (wasm does not
 * fix NaN payloads).
 */

/** Format codes shared with the host (kernels/wasm/formats.ts). */
export const FP32: i32 = 0;
export const FP16: i32 = 1;
export const BF16: i32 = 2;

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

/** Bits of the fp16 value `f`, which must be exactly representable in fp16 (or NaN/Infinity). */
export function f32ToHalfBits(f: f32): u32 {
  const b = reinterpret<u32>(f);
  const sign = (b >>> 16) & 0x8000;
  const a = b & 0x7fffffff;
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (a >= 0x38800000) return sign | (((a >>> 13) - (112 << 10)) & 0x7fff); // normal: rebias 127 -> 15
  return sign | <u32>(<f32>reinterpret<f32>(a) * <f32>16777216.0); // subnormal: a multiple of 2^-24
}

/** Rounds an f32 value to fp16 precision and range (nearest-even), kept as f32. */
export function f32RoundFp16(f: f32): f32 {
  const b = reinterpret<u32>(f);
  const a = b & 0x7fffffff;
  if (a >= 0x7f800000) return f; // Infinity and NaN
  let r: u32;
  if (a >= 0x38800000) {
    r = (a + 0x0fff + ((a >>> 13) & 1)) & 0xffffe000;
    if (r > 0x477fe000) r = 0x7f800000; // above 65504 after rounding: overflow
  } else {
    // Subnormal fp16 range: the quantum is 2^-24, which is the f32 quantum on [0.5, 1).
    r = reinterpret<u32>((reinterpret<f32>(a) + <f32>0.5) - <f32>0.5);
  }
  return reinterpret<f32>(r | (b & 0x80000000));
}

/** Rounds an f32 value to bf16 (nearest-even on the top 16 bits), kept as f32. */
export function f32RoundBf16(f: f32): f32 {
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
  if (a >= 0x7ff0000000000000) return x; // Infinity and NaN
  let r: f64;
  if (reinterpret<f64>(a) >= minNormal) {
    const half = (<u64>1 << (drop - 1)) - 1;
    r = reinterpret<f64>((a + half + ((a >> drop) & 1)) & ~((<u64>1 << drop) - 1));
    if (r > maxFinite) r = Infinity;
  } else {
    r = (reinterpret<f64>(a) + subC) - subC;
  }
  return reinterpret<f64>(reinterpret<u64>(r) | (b & 0x8000000000000000));
}

/** Rounds an f64 value to format `fmt` (exactly, one rounding). */
// @ts-ignore: decorator
@inline export function round(fmt: i32, x: f64): f64 {
  if (fmt == FP32) return <f64><f32>x;
  if (fmt == FP16) return roundF64(x, 42, 6.103515625e-5, 268435456.0, 65504);
  return roundF64(x, 45, 1.1754943508222875e-38, 4.1359030627651384e-25, 3.3895313892515355e38);
}

/** Bytes per element of a format. */
// @ts-ignore: decorator
@inline export function bytesOf(fmt: i32): usize {
  return fmt == FP32 ? 4 : 2;
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

/** Rounds the f64 value `v` to `fmt` (once) and stores it as element `i`. */
// @ts-ignore: decorator
@inline export function st(fmt: i32, p: usize, i: i32, v: f64): void {
  stExact(fmt, p, i, <f32>round(fmt, v));
}
