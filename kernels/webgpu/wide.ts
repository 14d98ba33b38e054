/**
 * Float-float ("double f32") arithmetic in WGSL, for the kernels whose ref definition computes in float64
 * and rounds once: a norm's output (x - mean) * rstd * gamma + beta, its gradients, 1 / sqrt(variance + eps)
 * with eps in float64, an average's division. A value is `vec2f(hi, lo)` with hi = RN(hi + lo), about 48
 * bits; rounding it once to f32 (hi), or to fp16 / bf16 through {@linkcode WIDE}'s `ff_odd`, gives ref's
 * bits except when the exact value lies within about 2^-44 of a rounding boundary.
 *
 * The error-free transformations (Knuth's two-sum, Dekker's split and product, no fused multiply-add) need
 * IEEE f32 + - * whose expressions the shader compiler does not rearrange. Mesa's NIR does rearrange them
 * (measured on lavapipe: b - ((a + b) - a) compiled to 0), so each sum is multiplied by `ff_one`, a 1 the
 * compiler cannot prove, which hides where the sum came from. A driver that fuses a * b - p into an fma
 * still gets an exact product error; one that rearranges more aggressively would lose the low parts, which
 * the conformance suite catches as a tolerance failure, not silently.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import { f32Lit } from "./kernel.ts";

/** The float-float functions (WGSL). Non-finite values pass through as hi with lo = 0, as plain f32 would. */
export const WIDE = `
fn ff_one(a: f32) -> f32 { return select(1.0, 0.5, is_nan(a)); }
fn ff_fin(s: f32, lo: f32) -> vec2f { return select(vec2f(s, 0.0), vec2f(s, lo), is_finite(s)); }
fn ff_fast_sum(a: f32, b: f32) -> vec2f { let s = (a + b) * ff_one(a); return ff_fin(s, b - (s - a)); }
fn ff_sum(a: f32, b: f32) -> vec2f {
  let s = (a + b) * ff_one(a);
  let bb = s - a;
  return ff_fin(s, (a - (s - bb)) + (b - bb));
}
fn ff_split(a: f32) -> vec2f { let c = 4097.0 * a * ff_one(a); let hi = c - (c - a); return vec2f(hi, a - hi); }
fn ff_prod(a: f32, b: f32) -> vec2f {
  let p = a * b;
  let x = ff_split(a);
  let y = ff_split(b);
  return ff_fin(p, ((x.x * y.x - p) + x.x * y.y + x.y * y.x) + x.y * y.y);
}
fn ff_add(a: vec2f, b: vec2f) -> vec2f {
  let s = ff_sum(a.x, b.x);
  let t = ff_sum(a.y, b.y);
  let u = ff_fast_sum(s.x, s.y + t.x);
  return ff_fast_sum(u.x, u.y + t.y);
}
fn ff_mul(a: vec2f, b: vec2f) -> vec2f {
  let p = ff_prod(a.x, b.x);
  return ff_fast_sum(p.x, p.y + (a.x * b.y + a.y * b.x));
}
// a / n: the f32 quotient and one correction from its exact remainder (so an approximate GPU division is
// corrected too).
fn ff_div(a: vec2f, n: f32) -> vec2f {
  let q = a.x / n;
  if (!is_finite(q)) { return vec2f(q, 0.0); }
  let r = ff_add(a, -ff_prod(q, n));
  return ff_fast_sum(q, r.x / n);
}
// 1 / sqrt(w): the f32 estimate and one Newton step in float-float.
fn ff_rsqrt(w: vec2f) -> vec2f {
  let r = 1.0 / sqrt(w.x);
  if (!is_finite(r)) { return vec2f(r, 0.0); }
  let e = ff_add(vec2f(1.0, 0.0), -ff_mul(w, ff_prod(r, r)));
  return ff_fast_sum(r, r * e.x * 0.5);
}
// hi + lo rounded to odd in f32: rounding that once more to a format of at most 22 bits (fp16, bf16) gives
// the correctly rounded hi + lo, with no double rounding (Boldo and Melquiond's round-to-odd).
fn ff_odd(a: vec2f) -> f32 {
  let b = bitcast<u32>(a.x);
  if (a.y == 0.0 || !is_finite(a.x) || (b & 1u) == 1u) { return a.x; }
  return bitcast<f32>(select(b - 1u, b + 1u, (a.x > 0.0) == (a.y > 0.0)));
}
`;

/**
 * WGSL `acc_ff(v)` and `out_ff(v)`: a float-float rounded once to the accumulate format, and to what the
 * output's store (which rounds f32 to the output format) turns into the correctly rounded output.
 */
export function finishers(acc: FormatName, out: FormatName): string {
  return `${WIDE}
fn acc_ff(v: vec2f) -> f32 { return ${acc === "fp32" ? "v.x" : "racc(ff_odd(v))"}; }
fn out_ff(v: vec2f) -> f32 { return ${out === "fp32" ? "v.x" : "ff_odd(v)"}; }
`;
}

/** A WGSL float-float constant for the float64 `v` (hi and lo exact f32 bits). */
export function ffLit(v: number): string {
  const hi = Math.fround(v);
  return `vec2f(${f32Lit(hi)}, ${f32Lit(v - hi)})`;
}
