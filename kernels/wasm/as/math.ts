/**
 * The project's own elementary functions (lib/math.ts) for the wasm engine: the same formulas with the
 * same operations in the same order, so every result has the same bits (tests/wasm_math_test.ts checks
 * this over millions of inputs). Bits are read with reinterpret instead of typed-array views, and the
 * erfc table is read from memory where the host wrote lib/math.ts's own table.
 */

/** Address of lib/math.ts's ERFC_TABLE (f64[130]); set per instance. */
let erfcTable: usize = 0;

/** Sets the address of the erfc table. */
export function setErfcTable(p: usize): void {
  erfcTable = p;
}

// @ts-ignore: decorator
@inline function pow2(k: i32): f64 {
  return reinterpret<f64>(<i64>(k + 1023) << 52);
}

const LN2_HI: f64 = 0.6931467056274414;
const LN2_LO: f64 = 4.7493250390316726e-7;
const INV_LN2: f64 = 1.4426950408889634;
const SQRT1_2: f64 = 0.7071067811865476;
const INV_SQRT_2PI: f64 = 0.3989422804014327;
const TWO_POW_54: f64 = 18014398509481984;
const ERFC_DEG: i32 = 12;
const ERF_SMALL_LIMIT: f64 = 0.8;

/** e^x (lib/math.ts exp). */
export function exp(x: f64): f64 {
  if (x != x) return x;
  if (x > 709.8) return Infinity;
  if (x < -745.2) return 0;
  if (Math.abs(x) < 5.551115123125783e-17) return 1 + x;
  const kf = Math.floor(x * INV_LN2 + 0.5);
  const k = <i32>kf;
  const hi = x - kf * LN2_HI;
  const r = hi - kf * LN2_LO;
  const rLo = (hi - r) - kf * LN2_LO;
  const q = r * r * (1.0 / 2 +
    r * (1.0 / 6 +
      r * (1.0 / 24 +
        r * (1.0 / 120 +
          r * (1.0 / 720 +
            r * (1.0 / 5040 +
              r * (1.0 / 40320 +
                r * (1.0 / 362880 +
                  r * (1.0 / 3628800 +
                    r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (1.0 / 6227020800))))))))))));
  const y = 1 + (r + (q + rLo));
  if (k < -1021) return (y * pow2(k + 1000)) * pow2(-1000);
  if (k > 1023) return (y * 2) * pow2(k - 1);
  return y * pow2(k);
}

/** Natural logarithm (lib/math.ts log). */
export function log(x: f64): f64 {
  if (x != x || x < 0) return NaN;
  if (x == 0) return -Infinity;
  if (x == Infinity) return x;
  let k: i32 = 0;
  let bits = reinterpret<u64>(x);
  if (<u32>(bits >>> 32) < 0x00100000) {
    bits = reinterpret<u64>(x * TWO_POW_54);
    k = -54;
  }
  let hw = <u32>(bits >>> 32);
  const lo = bits & 0xffffffff;
  k += <i32>(hw >>> 20) - 1023;
  hw &= 0x000fffff;
  if (hw > 0x6a09e) {
    hw |= 0x3fe00000;
    k += 1;
  } else {
    hw |= 0x3ff00000;
  }
  const f = reinterpret<f64>((<u64>hw << 32) | lo) - 1;
  const s = f / (2 + f);
  const z = s * s;
  const R = z * (2.0 / 3 +
    z * (2.0 / 5 +
      z * (2.0 / 7 +
        z * (2.0 / 9 +
          z * (2.0 / 11 + z * (2.0 / 13 + z * (2.0 / 15 + z * (2.0 / 17 + z * (2.0 / 19 + z * (2.0 / 21))))))))));
  const hfsq = 0.5 * f * f;
  const kf = <f64>k;
  return kf * LN2_HI - ((hfsq - (s * (hfsq + R) + kf * LN2_LO)) - f);
}

/** Hyperbolic tangent (lib/math.ts tanh). */
export function tanh(x: f64): f64 {
  if (x != x || x == 0) return x;
  const a = Math.abs(x);
  let t: f64;
  if (a < 0.625) {
    const z = a * a;
    const c = 11486475 + z * (810810 + z * (12870 + z * 44));
    const b = 34459425 + z * (16216200 + z * (945945 + z * (13860 + z * 45)));
    t = a - a * (z * c / b);
  } else if (a < 22) {
    const e = exp(-2 * a);
    t = 1 - 2 * e / (1 + e);
  } else {
    t = 1;
  }
  return x < 0 ? -t : t;
}

function erfSmall(a: f64): f64 {
  const z = a * a;
  const p = 0.1283791670955126 +
    z * (-0.37612638903183754 +
      z * (0.11283791670955126 +
        z * (-0.026866170645131252 +
          z * (0.005223977625442188 +
            z * (-0.0008548327023450853 +
              z * (0.00012055332981789664 +
                z * (-1.492565035840625e-05 +
                  z * (1.6462114365889248e-06 +
                    z * (-1.6365844691234924e-07 +
                      z * (1.4807192815879218e-08 +
                        z * (-1.2290555301717928e-09 +
                          z * (9.422759064650411e-11 +
                            z * (-6.7113668551641105e-12 +
                              z * (4.4632242632864775e-13 +
                                z * (-2.7835162072109215e-14 + z * 1.6342614095367152e-15)))))))))))))));
  return a + a * p;
}

// Low part of the last square from sqHi (a global of this instance, as in lib/math.ts).
let sqLo: f64 = 0;
function sqHi(a: f64): f64 {
  const h = a * a;
  const c = 134217729 * a;
  const ah = c - (c - a);
  const al = a - ah;
  sqLo = ((ah * ah - h) + 2 * ah * al) + al * al;
  return h;
}

function erfcTail(y: f64, y2hi: f64, y2lo: f64): f64 {
  const s = 1 / y;
  let i = Math.floor(s * 8);
  if (i > 9) i = 9;
  const t = s - (i + 0.5) / 8;
  const o = erfcTable + ((<usize>i * (ERFC_DEG + 1)) << 3);
  let h = load<f64>(o + (ERFC_DEG << 3));
  for (let j = ERFC_DEG - 1; j >= 0; j--) h = h * t + load<f64>(o + (<usize>j << 3));
  return exp(-y2hi) * (1 - y2lo) * h / y;
}

function normCdf(x: f64): f64 {
  const y = Math.abs(x) * SQRT1_2;
  if (y < ERF_SMALL_LIMIT) {
    const e = erfSmall(y);
    return x < 0 ? 0.5 - 0.5 * e : 0.5 + 0.5 * e;
  }
  if (y > 27.3) return x < 0 ? 0 : 1;
  const h = sqHi(x);
  const tail = 0.5 * erfcTail(y, 0.5 * h, 0.5 * sqLo);
  return x < 0 ? tail : 1 - tail;
}

/** Exact GELU (lib/math.ts gelu). */
export function gelu(x: f64): f64 {
  if (x != x) return x;
  if (x == -Infinity) return -0.0;
  return x * normCdf(x);
}

/** GELU's derivative (lib/math.ts geluGrad). */
export function geluGrad(x: f64): f64 {
  if (x != x) return x;
  const a = Math.abs(x);
  if (a > 40) return x < 0 ? 0 : 1;
  const h = sqHi(x);
  const pdf = exp(-0.5 * h) * (1 - 0.5 * sqLo) * INV_SQRT_2PI;
  return normCdf(x) + x * pdf;
}

// @ts-ignore: decorator
@inline function mix32(x: u32): u32 {
  let z = x + 0x9e3779b9;
  z = (z ^ (z >>> 16)) * 0x85ebca6b;
  z = (z ^ (z >>> 13)) * 0xc2b2ae35;
  return z ^ (z >>> 16);
}

/** lib/random.ts hashUniform: four 32-bit words -> uniform in [0, 1). */
export function hashUniform(a: u32, b: u32, c: u32, d: u32): f64 {
  let h = mix32(a);
  h = mix32(h ^ b);
  h = mix32(h ^ c);
  h = mix32(h ^ d);
  return <f64>h / 4294967296;
}
