/**
 * Deterministic float64 elementary functions.
 *
 * Why this exists: `Math.exp`, `Math.log`, `Math.tanh` etc. are not required by ECMAScript to be correctly
 * rounded, and V8 has changed their implementations between releases. A kernel whose output must be
 * bit-reproducible across runtimes therefore cannot call them. Everything here is built only from
 * IEEE-754 operations that are exactly specified (`+ - * /`, comparisons, `Math.floor`, `Math.abs`,
 * `Math.sqrt`) plus bit manipulation through a typed-array view, so a given input always produces the same
 * bits on every conforming engine.
 *
 * Accuracy goal: within ~2 ulp of the true value. The approximations are our own: Taylor series on reduced
 * ranges, the Lambert continued-fraction (Pade) form of tanh, and Chebyshev-node polynomial fits of the
 * scaled complementary error function (coefficients generated offline with 50-digit arithmetic).
 *
 * All functions are allocation-free per call.
 *
 * @module
 */

// Shared scratch view used to read/write the bits of a double (host is little-endian: word 1 is the high
// word with sign, exponent and top 20 mantissa bits). Allocated once at module load.
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

/** 2^k for -1022 <= k <= 1023, assembled directly from the exponent bits (exact, no pow). */
function pow2(k: number): number {
  U32[0] = 0;
  U32[1] = (k + 1023) << 20;
  return F64[0];
}

// ln(2) split so that k * LN2_HI is exact for |k| < 2^11 (LN2_HI has only 21 significant bits) and
// LN2_HI + LN2_LO equals ln(2) to ~2^-75.
const LN2_HI = 0.6931467056274414; // bits 0x3fe62e42_00000000
const LN2_LO = 4.7493250390316726e-7;
const INV_LN2 = 1.4426950408889634;
const SQRT1_2 = 0.7071067811865476; // 1/sqrt(2), correctly rounded
const INV_SQRT_2PI = 0.3989422804014327; // 1/sqrt(2*pi), correctly rounded
const TWO_POW_54 = 18014398509481984;

/**
 * e^x. Range reduction x = k*ln2 + r with |r| <= ~ln2/2 (r kept as r + rLo so the reduction adds no
 * error), then a degree-13 Taylor polynomial (truncation < 5e-18 on that range), then scaling by 2^k built
 * from bits. Overflows to Infinity above ~709.78, underflows gradually through subnormals to 0 below ~-745.13.
 */
export function exp(x: number): number {
  if (x !== x) return x;
  if (x > 709.8) return Infinity;
  if (x < -745.2) return 0;
  // Below 2^-54, e^x rounds to 1 (this also maps +-0 to 1).
  if (Math.abs(x) < 5.551115123125783e-17) return 1 + x;
  const k = Math.floor(x * INV_LN2 + 0.5);
  const hi = x - k * LN2_HI; // exact (Sterbenz; k*LN2_HI is exact)
  const r = hi - k * LN2_LO;
  const rLo = (hi - r) - k * LN2_LO; // rounding error of r (Fast2Sum)
  // q = e^r - 1 - r, Taylor terms r^2/2! .. r^13/13!.
  const q = r * r * (1 / 2 +
    r * (1 / 6 +
        r * (1 / 24 +
            r * (1 / 120 +
                r * (1 / 720 +
                    r * (1 / 5040 +
                        r * (1 / 40320 +
                            r * (1 / 362880 +
                                r * (1 / 3628800 +
                                    r * (1 / 39916800 + r * (1 / 479001600 + r * (1 / 6227020800))))))))))));
  const y = 1 + (r + (q + rLo));
  if (k < -1021) return (y * pow2(k + 1000)) * pow2(-1000); // one rounding into the subnormal range
  if (k > 1023) return (y * 2) * pow2(k - 1);
  return y * pow2(k);
}

/**
 * Natural logarithm. x = 2^k * m with m in [sqrt(1/2), sqrt(2)); with f = m - 1 (exact) and
 * s = f / (2 + f), ln(m) = 2 atanh(s) = f - f^2/2 + s*(f^2/2 + R), R = sum_{n>=1} 2 s^(2n)/(2n+1).
 * Writing it this way keeps the rounding error of s multiplied by a small factor. Subnormal inputs are
 * pre-scaled by 2^54.
 */
export function log(x: number): number {
  if (x !== x || x < 0) return NaN;
  if (x === 0) return -Infinity;
  if (x === Infinity) return x;
  let k = 0;
  F64[0] = x;
  if (U32[1] < 0x00100000) {
    F64[0] = x * TWO_POW_54;
    k = -54;
  }
  let hw = U32[1];
  k += (hw >>> 20) - 1023;
  hw &= 0x000fffff;
  // 0x6a09e is the top of sqrt(2)'s mantissa: above it use m/2 so that m stays within [0.707, 1.415].
  if (hw > 0x6a09e) {
    U32[1] = hw | 0x3fe00000;
    k += 1;
  } else {
    U32[1] = hw | 0x3ff00000;
  }
  const f = F64[0] - 1;
  const s = f / (2 + f);
  const z = s * s; // z <= 0.0295, so 10 terms leave < 3e-17 relative truncation error
  const R = z * (2 / 3 +
    z * (2 / 5 +
        z * (2 / 7 +
            z * (2 / 9 +
                z * (2 / 11 + z * (2 / 13 + z * (2 / 15 + z * (2 / 17 + z * (2 / 19 + z * (2 / 21))))))))));
  const hfsq = 0.5 * f * f;
  return k * LN2_HI - ((hfsq - (s * (hfsq + R) + k * LN2_LO)) - f);
}

/**
 * Hyperbolic tangent, computed on |x| and re-signed so tanh(-x) === -tanh(x) exactly and -0 is kept.
 * For |x| < 0.625 the Lambert continued fraction truncated after 17 (a [9/8] Pade approximant, error
 * < 1e-19 there) is used as x - x*z*C(z)/B(z), so the rounding errors only affect the small correction
 * term and tiny |x| is returned essentially exactly. Otherwise tanh = 1 - 2e/(1+e) with e = exp(-2|x|),
 * and above 22 the result rounds to 1.
 */
export function tanh(x: number): number {
  if (x !== x || x === 0) return x;
  const a = Math.abs(x);
  let t: number;
  if (a < 0.625) {
    const z = a * a;
    // tanh(a) = a*A(z)/B(z) with A = 34459425 + 4729725z + 135135z^2 + 990z^3 + z^4 and C = (B - A)/z.
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

// erf(x) = x + x*P(x^2) for |x| < 0.8: P(z) = (2/sqrt(pi) - 1) + sum_n 2/sqrt(pi) (-1)^n z^n / (n! (2n+1)).
// Keeping the leading x separate means the rounding of 2/sqrt(pi) does not cost a full ulp.
const ERF_SMALL_LIMIT = 0.8;
function erfSmall(a: number): number {
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
                                                            z *
                                                              (-2.7835162072109215e-14 +
                                                                z * 1.6342614095367152e-15)))))))))))))));
  return a + a * p;
}

// H(s) = y * e^(y^2) * erfc(y) with s = 1/y; H is smooth on s in [0, 1.25] (y >= 0.8) and H(0) = 1/sqrt(pi).
// Ten polynomials of degree 12 in (s - centre), one per interval of width 1/8, fitted at Chebyshev nodes
// against 50-digit values (max relative error ~5e-17 before evaluation rounding).
const ERFC_DEG = 12;
// deno-fmt-ignore
/** Coefficients of erfc's ten polynomials (exported for the wasm engine, which reads this same table). */
export const ERFC_TABLE: Float64Array = new Float64Array([
  // s in [0, 0.125)
  0.5630940451988934, -0.03485456929753174, -0.2724135106995078, 0.10081080494238658, 0.36491465739174705,
  -0.3498258093073873, -0.7016229316603981, 1.4253853889612318, 1.37135581660024, -6.453707195672072,
  -0.35477598495948326, 28.937604746893324, -25.313951503973858,
  // s in [0.125, 0.25)
  0.5547541131463941, -0.09589699130081228, -0.20884255680261005, 0.21386570039030967, 0.08113329244652577,
  -0.422263366658374, 0.3441695936206514, 0.4781793771400949, -1.578672434992252, 1.237843047012724,
  2.634359336985441, -8.830541945162508, 7.933773122469692,
  // s in [0.25, 0.375)
  0.5399299097980298, -0.13789373249162099, -0.1278605621000128, 0.20376073604494932, -0.09066656277686135,
  -0.13375034764833613, 0.3173519838296077, -0.27927348310589517, -0.09175668690466862, 0.7042016919840187,
  -1.157134241855287, 0.725782013774075, 1.1289190602258135,
  // s in [0.375, 0.5)
  0.5210682012454139, -0.16112858879188155, -0.0615798533952318, 0.14755024073939824, -0.11862338329188918,
  0.01688348187457804, 0.10129466203667714, -0.1764358813328268, 0.16151636467763422, -0.039280933922691996,
  -0.16339775022265837, 0.3739639726723317, -0.463109041685103,
  // s in [0.5, 0.625)
  0.5002249924537165, -0.17049884770595733, -0.016765554397695944, 0.09358284755557758, -0.0938666434944711,
  0.050664525932421045, 0.006602119702569355, -0.054613829009011405, 0.07805031146965355, -0.07063922208159351,
  0.035093951578407015, 0.019518520634327435, -0.07455885581805748,
  // s in [0.625, 0.75)
  0.4788120865027461, -0.17097501403200072, 0.010513956585461072, 0.05446992718784367, -0.06329574246554687,
  0.044341097753065425, -0.016756330192421225, -0.007810186265079442, 0.023537025060313393, -0.028861110429910738,
  0.025059884596848422, -0.014899511514252596, 0.002031117577782433,
  // s in [0.75, 0.875)
  0.45769671058273187, -0.16623681842795954, 0.025807951533907924, 0.02906133917384206, -0.03973463664653268,
  0.03106531432734588, -0.016941405279928944, 0.004251236157451624, 0.004348832947875464, -0.008560522904097622,
  0.009224948128415664, -0.007593149196508715, 0.004778563791059169,
  // s in [0.875, 1)
  0.43736830275318045, -0.15869806152363983, 0.03352859863668817, 0.013427678765487927, -0.02395111186087773,
  0.020025776139561698, -0.012341885383464717, 0.005440244886898476, -0.0007307619229032896, -0.0018060421450962702,
  0.002712438977449468, -0.0026252800851551852, 0.0020175279005222187,
  // s in [1, 1.125)
  0.4180758745090719, -0.14985128013129367, 0.03666787628913129, 0.004143836853288987, -0.013973357502802,
  0.012435888019208113, -0.00808926762110432, 0.004160262758134546, -0.0014968099579070664, 1.818834771942042e-05,
  0.0006216746050669469, -0.0007707140117455965, 0.0006678155853436,
  // s in [1.125, 1.25)
  0.39992243257706017, -0.14058543079357877, 0.037127585508543545, -0.0011826954708278113, -0.00783757204240464,
  0.007574520117641788, -0.005077823093750537, 0.0027711182231116016, -0.0012212660991272619, 0.0003553617154523004,
  4.753342537272583e-05, -0.00018759059461031206, 0.00019596598005860817,
]);

// Low part of the last exact square computed by sqHi (module-level to avoid allocating a pair).
let sqLo = 0;
/** Returns fl(a*a) and leaves the exact remainder a*a - fl(a*a) in sqLo (Dekker split, no FMA needed). */
function sqHi(a: number): number {
  const h = a * a;
  const c = 134217729 * a; // 2^27 + 1
  const ah = c - (c - a);
  const al = a - ah;
  sqLo = ((ah * ah - h) + 2 * ah * al) + al * al;
  return h;
}

/**
 * erfc(y) for y >= 0.8 given y^2 = y2hi + y2lo exactly. e^(-y^2) is taken as e^(-y2hi) * (1 - y2lo) so the
 * rounding of y*y (up to ~36 ulp of relative error for y ~ 6) does not leak into the result.
 */
function erfcTail(y: number, y2hi: number, y2lo: number): number {
  const s = 1 / y;
  let i = Math.floor(s * 8);
  if (i > 9) i = 9;
  const t = s - (i + 0.5) / 8;
  const o = i * (ERFC_DEG + 1);
  let h = ERFC_TABLE[o + ERFC_DEG];
  for (let j = ERFC_DEG - 1; j >= 0; j--) h = h * t + ERFC_TABLE[o + j];
  return exp(-y2hi) * (1 - y2lo) * h / y;
}

/**
 * Error function, odd: erf(-x) === -erf(x), erf(+-0) = +-0, erf(+-Infinity) = +-1. Taylor series below 0.8,
 * 1 - erfc(|x|) up to 6, and +-1 beyond (erfc(6) ~ 2e-17 is below half an ulp of 1).
 */
export function erf(x: number): number {
  if (x !== x || x === 0) return x;
  const a = Math.abs(x);
  let r: number;
  if (a < ERF_SMALL_LIMIT) r = erfSmall(a);
  else if (a < 6) {
    const h = sqHi(a);
    r = 1 - erfcTail(a, h, sqLo);
  } else r = 1;
  return x < 0 ? -r : r;
}

/**
 * Standard normal CDF Phi(x) = 0.5*(1 + erf(x/sqrt(2))), but using erfc in the lower tail so it keeps full
 * relative accuracy for negative x (where 1 + erf would cancel). x^2/2 is formed exactly.
 */
function normCdf(x: number): number {
  const y = Math.abs(x) * SQRT1_2;
  if (y < ERF_SMALL_LIMIT) {
    const e = erfSmall(y);
    return x < 0 ? 0.5 - 0.5 * e : 0.5 + 0.5 * e;
  }
  if (y > 27.3) return x < 0 ? 0 : 1; // erfc(27.3) underflows to 0
  const h = sqHi(x);
  const tail = 0.5 * erfcTail(y, 0.5 * h, 0.5 * sqLo);
  return x < 0 ? tail : 1 - tail;
}

/**
 * Exact (erf-based, non-tanh-approximation) GELU: x * Phi(x) = 0.5*x*(1 + erf(x/sqrt(2))), as Keras uses by
 * default. The negative tail is computed through erfc, so tiny outputs keep relative accuracy instead of
 * flushing to 0. gelu(-Infinity) returns -0 (the limit) rather than NaN.
 */
export function gelu(x: number): number {
  if (x !== x) return x;
  if (x === -Infinity) return -0;
  return x * normCdf(x);
}

/**
 * Derivative of gelu: Phi(x) + x*phi(x), phi(x) = exp(-x^2/2)/sqrt(2*pi). Limits 0 at -Infinity and 1 at
 * +Infinity.
 */
export function geluGrad(x: number): number {
  if (x !== x) return x;
  const a = Math.abs(x);
  if (a > 40) return x < 0 ? 0 : 1; // phi(40) underflows; avoids Infinity * 0
  const h = sqHi(x);
  const pdf = exp(-0.5 * h) * (1 - 0.5 * sqLo) * INV_SQRT_2PI;
  return normCdf(x) + x * pdf;
}

/**
 * Logistic sigmoid 1/(1+e^-x). For x < 0 it is evaluated as e^x/(1+e^x) so e^-x never overflows and small
 * results keep relative accuracy.
 */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + exp(-x));
  const e = exp(x); // also propagates NaN
  return e / (1 + e);
}
