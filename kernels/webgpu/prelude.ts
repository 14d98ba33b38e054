/**
 * The WGSL prelude every webgpu shader starts with: the bindings, and loading, storing and rounding of each
 * storage format in integer arithmetic on the bits; and {@linkcode PRELUDE_F16}, what a shader touching
 * fp16 adds for WGSL f16.
 *
 * Storage: one u32 array (`mem`) holds every tensor of a compiled graph. fp32 is one word per element; fp16
 * and bf16 are packed two to a word (element 2w in the low half of word w), so they take half the memory of
 * fp32. fp16 is read and written as WGSL f16 through a second view of the same buffer (`mem_h`); f32 work
 * widens it exactly. bf16 has no WGSL type: loads widen it to f32 from its bits. Rounding an f32 to fp16 or
 * bf16 is round-to-nearest-even done in integers, as lib/formats/format.ts defines it for an f32 input (WGSL
 * leaves the rounding of an f32 to f16 conversion open, and its result beyond fp16's range indeterminate).
 * WGSL lets a compiler assume that no NaN or infinity occurs, so NaN and finiteness tests read the bits.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";

/** The bindings and format helpers (WGSL). */
export const PRELUDE = `
@group(0) @binding(0) var<storage, read_write> mem: array<u32>;
@group(0) @binding(1) var<storage, read_write> scr: array<atomic<u32>, 64>;

fn inf_() -> f32 { return bitcast<f32>(0x7f800000u); }
fn nan_() -> f32 { return bitcast<f32>(0x7fc00000u); }
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn is_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u; }
// x itself, hidden from the shader compiler: Mesa (and other drivers) simplify (a + b) - a to b and
// v - (v - a) to a in shaders that do not forbid it (measured on lavapipe), which would erase the rounding
// error that TwoSum, exp's range reduction and Dekker's split compute.
// Scratch word 63 is never written, so it is always 0 (WebGPU zeroes new buffers).
fn opq(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) | atomicLoad(&scr[63])); }
fn pow2_(k: i32) -> f32 { return bitcast<f32>(u32(k + 127) << 23u); }

// fp16 bits (low 16 bits of h) to f32, exact.
fn h2f(h: u32) -> f32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) { return bitcast<f32>(s | bitcast<u32>(f32(m) * bitcast<f32>(0x33800000u))); }
  if (e == 31u) { return bitcast<f32>(s | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}

// f32 to fp16 bits, round to nearest even; overflow to infinity, NaN stays NaN (quiet).
fn f2h(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let s = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) { return s | 0x7e00u | ((a >> 13u) & 0x3ffu); }
  if (a >= 0x477ff000u) { return s | 0x7c00u; }
  if (a >= 0x38800000u) { return s | ((a + 0xfffu + ((a >> 13u) & 1u) - 0x38000000u) >> 13u); }
  let e = a >> 23u;
  if (e < 102u) { return s; }
  let m = (a & 0x7fffffu) | 0x800000u;
  let sh = 126u - e;
  var q = m >> sh;
  let rem = m & ((1u << sh) - 1u);
  let half = 1u << (sh - 1u);
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q = q + 1u; }
  return s | q;
}

// f32 to bf16 bits, round to nearest even; NaN stays NaN (quiet).
fn f2b(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return (b >> 16u) | 0x40u; }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn rnd_fp32(v: f32) -> f32 { return v; }
fn rnd_fp16(v: f32) -> f32 { return h2f(f2h(v)); }
fn rnd_bf16(v: f32) -> f32 { return bitcast<f32>(f2b(v) << 16u); }
fn enc_fp16(v: f32) -> u32 { return f2h(v); }
fn enc_bf16(v: f32) -> u32 { return f2b(v); }

fn half_of(base: u32, i: u32) -> u32 { return (mem[base + (i >> 1u)] >> ((i & 1u) * 16u)) & 0xffffu; }
fn ld_fp32(base: u32, i: u32) -> f32 { return bitcast<f32>(mem[base + i]); }
fn ld_fp16(base: u32, i: u32) -> f32 { return h2f(half_of(base, i)); }
fn ld_bf16(base: u32, i: u32) -> f32 { return bitcast<f32>(half_of(base, i) << 16u); }
`;

/**
 * What a shader that touches fp16 adds (WGSL `shader-f16`): `enable f16;` goes first in the module, the
 * helpers after {@linkcode PRELUDE}. fp16 is still packed two to a u32 word; `mem_h` views the same buffer
 * (binding 2, the arena again) as one vec2<f16> per word, so a load reads its half of the word as f16 and a
 * store writes a word's two f16 values at once, with no decoding or rounding. (Deno 2.9.6's WGSL compiler,
 * naga, mistypes bitcasts between u32 and vec2<f16>, which is why a second view is used instead.) f32 work
 * widens an f16 with `f32()`, which is exact.
 */
export const F16_ENABLE = "enable f16;\n";

/** The fp16 view and helpers (WGSL); they need {@linkcode F16_ENABLE}. */
export const PRELUDE_F16 = `
@group(0) @binding(2) var<storage, read_write> mem_h: array<vec2<f16>>;

// fp16 element i of the tensor at word base: element 2w is the low half of word w.
fn ldh(base: u32, i: u32) -> f16 {
  let w = mem_h[base + (i >> 1u)];
  return select(w.x, w.y, (i & 1u) == 1u);
}
// v times a 1 the shader compiler cannot prove (scratch word 63 is always 0): it cannot fuse the product
// that gave v into the sum that follows, so each operation the policy rounds is rounded.
fn rh(v: f16) -> f16 { return v * f16(1u + atomicLoad(&scr[63])); }
// f32 to f16, round to nearest even in integers (f2h): WGSL leaves the rounding of a conversion open, and
// converting the rounded value is exact.
fn h_of(v: f32) -> f16 { return f16(rnd_fp16(v)); }
fn is_nan_h(v: f16) -> bool { return is_nan(f32(v)); }
`;

/** The formats a webgpu tensor can have. */
export const GPU_FORMATS: readonly FormatName[] = ["fp32", "fp16", "bf16"];

/** Words of storage for `n` elements of `format`. */
export function wordsOf(format: FormatName, n: number): number {
  if (format === "fp32") return n;
  if (format === "fp16" || format === "bf16") return Math.ceil(n / 2);
  throw new RangeError(`The webgpu engine has no format ${format}`);
}
