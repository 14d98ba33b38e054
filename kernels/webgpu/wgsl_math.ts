/**
 * lib/math.ts's exp, log, tanh, erf and the exact GELU, ported to WGSL in f32, so a result never depends on a
 * driver's builtins (WGSL's exp, log and tanh have loose, vendor-specific accuracy). The algorithms are
 * lib/math.ts's (range reduction, Taylor and Pade forms, the same erfc table), evaluated in f32 and built
 * from operations WGSL specifies exactly apart from division (WGSL allows 2.5 ulp there; lavapipe's is
 * IEEE). f32 arithmetic makes these accurate to a few f32 ulp, well inside the tolerance rule, but not
 * ref's float64 bits.
 *
 * @module
 */

import { ERFC_TABLE } from "../../lib/math.ts";

/** A decimal f32 literal of `v` rounded to f32 (9 significant digits round-trip an f32). */
function lit(v: number): string {
  return `${Math.fround(v).toPrecision(9)}f`;
}

/** exp_, log_ and tanh_ (WGSL). */
export const WGSL_EXP = `
const LN2_HI = 0.693145751953125f; // 15 significant bits: k * LN2_HI is exact for |k| < 512
const LN2_LO = ${lit(Math.LN2 - 0.693145751953125)};
const INV_LN2 = ${lit(Math.LOG2E)};
const SQRT1_2 = ${lit(Math.SQRT1_2)};
const INV_SQRT_2PI = ${lit(1 / Math.sqrt(2 * Math.PI))};

fn exp_(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (x > 88.73f) { return inf_(); }
  if (x < -104.0f) { return 0.0f; }
  if (abs(x) < 2.9802322e-8f) { return 1.0f + x; }
  let k = floor(x * INV_LN2 + 0.5f);
  let hi = x - k * LN2_HI;
  let r = opq(hi - k * LN2_LO);
  let r_lo = (hi - r) - k * LN2_LO;
  let q = r * r * (${lit(1 / 2)} + r * (${lit(1 / 6)} + r * (${lit(1 / 24)} + r * (${lit(1 / 120)} +
    r * (${lit(1 / 720)} + r * (${lit(1 / 5040)} + r * (${lit(1 / 40320)} + r * ${lit(1 / 362880)})))))));
  let y = 1.0f + (r + (q + r_lo));
  let ki = i32(k);
  if (ki < -125) { return (y * pow2_(ki + 100)) * pow2_(-100); }
  if (ki > 127) { return (y * 2.0f) * pow2_(ki - 1); }
  return y * pow2_(ki);
}

fn log_(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  if (is_nan(x) || (b > 0x80000000u)) { return nan_(); }
  if ((b & 0x7fffffffu) == 0u) { return -inf_(); }
  if (b == 0x7f800000u) { return x; }
  var k = 0;
  var hb = b;
  if (hb < 0x00800000u) { hb = bitcast<u32>(x * 33554432.0f); k = -25; }
  k = k + i32(hb >> 23u) - 127;
  var m = hb & 0x7fffffu;
  // 0x3504f3 is the top of sqrt(2)'s mantissa: above it use m/2, so m stays within [0.707, 1.415].
  if (m > 0x3504f3u) { m = m | 0x3f000000u; k = k + 1; } else { m = m | 0x3f800000u; }
  let f = bitcast<f32>(m) - 1.0f;
  let s = f / (2.0f + f);
  let z = s * s;
  let rr = z * (${lit(2 / 3)} + z * (${lit(2 / 5)} + z * (${lit(2 / 7)} + z * (${lit(2 / 9)} +
    z * (${lit(2 / 11)} + z * ${lit(2 / 13)})))));
  let hfsq = 0.5f * f * f;
  let fk = f32(k);
  return fk * LN2_HI - ((hfsq - (s * (hfsq + rr) + fk * LN2_LO)) - f);
}

fn tanh_(x: f32) -> f32 {
  if (is_nan(x) || x == 0.0f) { return x; }
  let a = abs(x);
  var t: f32;
  if (a < 0.625f) {
    let z = a * a;
    let c = 11486475.0f + z * (810810.0f + z * (12870.0f + z * 44.0f));
    let b = 34459425.0f + z * (16216200.0f + z * (945945.0f + z * (13860.0f + z * 45.0f)));
    t = a - a * (z * c / b);
  } else if (a < 22.0f) {
    let e = exp_(-2.0f * a);
    t = 1.0f - 2.0f * e / (1.0f + e);
  } else {
    t = 1.0f;
  }
  return select(t, -t, x < 0.0f);
}

`;

/** erf_, gelu_ and gelu_grad_ (WGSL; they need {@linkcode WGSL_EXP}). */
export const WGSL_ERF = `
fn erf_small(a: f32) -> f32 {
  let z = a * a;
  let p = ${lit(0.1283791670955126)} + z * (${lit(-0.37612638903183754)} + z * (${lit(0.11283791670955126)} +
    z * (${lit(-0.026866170645131252)} + z * (${lit(0.005223977625442188)} + z * (${
  lit(-0.0008548327023450853)
} +
    z * (${lit(0.00012055332981789664)} + z * (${lit(-1.492565035840625e-05)} + z * (${
  lit(1.6462114365889248e-06)
} +
    z * ${lit(-1.6365844691234924e-07)}))))))));
  return a + a * p;
}

var<private> ERFC: array<f32, ${ERFC_TABLE.length}> = array<f32, ${ERFC_TABLE.length}>(
  ${[...ERFC_TABLE].map(lit).join(", ")});

// The exact square of a as hi + lo (Dekker split for f32: 4097 = 2^12 + 1, no fma).
fn sq_lo(a: f32, h: f32) -> f32 {
  let c = opq(4097.0f * a);
  let ah = c - opq(c - a);
  let al = a - ah;
  return ((ah * ah - h) + 2.0f * ah * al) + al * al;
}

fn erfc_tail(y: f32, y2hi: f32, y2lo: f32) -> f32 {
  let s = 1.0f / y;
  let i = min(u32(floor(s * 8.0f)), 9u);
  let t = s - (f32(i) + 0.5f) / 8.0f;
  let o = i * 13u;
  var h = ERFC[o + 12u];
  for (var j = 11; j >= 0; j = j - 1) { h = h * t + ERFC[o + u32(j)]; }
  return exp_(-y2hi) * (1.0f - y2lo) * h / y;
}

fn erf_(x: f32) -> f32 {
  if (is_nan(x) || x == 0.0f) { return x; }
  let a = abs(x);
  var r: f32;
  if (a < 0.8f) { r = erf_small(a); }
  else if (a < 6.0f) { let h = a * a; r = 1.0f - erfc_tail(a, h, sq_lo(a, h)); }
  else { r = 1.0f; }
  return select(r, -r, x < 0.0f);
}

fn norm_cdf(x: f32) -> f32 {
  let y = abs(x) * SQRT1_2;
  if (y < 0.8f) {
    let e = erf_small(y);
    return select(0.5f + 0.5f * e, 0.5f - 0.5f * e, x < 0.0f);
  }
  if (y > 10.5f) { return select(1.0f, 0.0f, x < 0.0f); }
  let h = x * x;
  let tail = 0.5f * erfc_tail(y, 0.5f * h, 0.5f * sq_lo(x, h));
  return select(1.0f - tail, tail, x < 0.0f);
}

fn gelu_(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (bitcast<u32>(x) == 0xff800000u) { return bitcast<f32>(0x80000000u); }
  return x * norm_cdf(x);
}

fn gelu_grad_(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (abs(x) > 14.5f) { return select(1.0f, 0.0f, x < 0.0f); }
  let h = x * x;
  let pdf = exp_(-0.5f * h) * (1.0f - 0.5f * sq_lo(x, h)) * INV_SQRT_2PI;
  return norm_cdf(x) + x * pdf;
}
`;
