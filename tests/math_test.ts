import assert from "node:assert/strict";
import { erf, exp, gelu, geluGrad, log, sigmoid, tanh } from "../lib/math.ts";

const F = new Float64Array(1);
const B = new BigInt64Array(F.buffer);

/** Maps a double to an integer that is monotone in the double's value (so ulp distance is a difference). */
function ordinal(x: number): bigint {
  F[0] = x;
  const b = B[0];
  return b < 0n ? -(b & 0x7fffffffffffffffn) : b;
}

/** Number of representable doubles between a and b (0 when identical; +0 and -0 count as equal). */
function ulpDistance(a: number, b: number): number {
  if (a !== a || b !== b) return a !== a && b !== b ? 0 : Infinity;
  const d = ordinal(a) - ordinal(b);
  return Number(d < 0n ? -d : d);
}

/** Deterministic 64-bit LCG (Knuth MMIX constants) giving uniforms in [0, 1). */
class Lcg {
  private s: bigint;
  constructor(seed: number) {
    this.s = BigInt(seed);
  }
  next(): number {
    this.s = (this.s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return Number(this.s >> 11n) / 9007199254740992;
  }
}

/** Max ulp distance of f vs ref over n pseudo-random points in [lo, hi]. */
function maxUlp(
  f: (x: number) => number,
  ref: (x: number) => number,
  lo: number,
  hi: number,
  n = 20000,
  seed = 1,
): { ulps: number; at: number } {
  const rng = new Lcg(seed);
  let ulps = 0;
  let at = NaN;
  for (let i = 0; i < n; i++) {
    const x = lo + (hi - lo) * rng.next();
    const d = ulpDistance(f(x), ref(x));
    if (d > ulps) {
      ulps = d;
      at = x;
    }
  }
  return { ulps, at };
}

function assertUlp(
  name: string,
  f: (x: number) => number,
  ref: (x: number) => number,
  lo: number,
  hi: number,
  maxU: number,
) {
  const r = maxUlp(f, ref, lo, hi);
  assert.ok(r.ulps <= maxU, `${name} on [${lo}, ${hi}]: ${r.ulps} ulp at x=${r.at}`);
}

function assertRel(actual: number, expected: number, tol: number, msg = "") {
  const rel = expected === 0 ? Math.abs(actual) : Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(rel <= tol, `${msg} got ${actual}, expected ${expected} (rel err ${rel})`);
}

Deno.test("ulpDistance helper", () => {
  assert.equal(ulpDistance(1, 1), 0);
  assert.equal(ulpDistance(1, 1 + Number.EPSILON), 1);
  assert.equal(ulpDistance(0, -0), 0);
  assert.equal(ulpDistance(5e-324, -5e-324), 2);
  assert.equal(ulpDistance(1, 1 - Number.EPSILON / 2), 1);
  assert.equal(ulpDistance(NaN, NaN), 0);
  assert.equal(ulpDistance(NaN, 1), Infinity);
});

Deno.test("exp special values and thresholds", () => {
  assert.ok(Number.isNaN(exp(NaN)));
  assert.equal(exp(0), 1);
  assert.equal(exp(-0), 1);
  assert.equal(exp(Infinity), Infinity);
  assert.equal(exp(-Infinity), 0);
  assert.ok(ulpDistance(exp(1), Math.E) <= 1);
  assert.equal(exp(709.78), Math.exp(709.78));
  assert.ok(Number.isFinite(exp(709.782712893384)));
  assert.equal(exp(709.7827128933841), Infinity);
  assert.equal(exp(1000), Infinity);
  // Subnormal results and the underflow threshold.
  assert.ok(ulpDistance(exp(-740), Math.exp(-740)) <= 1);
  assert.equal(exp(-745.1332191019411), 5e-324);
  assert.equal(exp(-745.1332191019412), 0);
  assert.equal(exp(-800), 0);
  assert.equal(exp(1e-300), 1);
});

Deno.test("exp matches Math.exp within 4 ulp", () => {
  assertUlp("exp", exp, Math.exp, -1, 1, 4);
  assertUlp("exp", exp, Math.exp, -50, 50, 4);
  assertUlp("exp", exp, Math.exp, -708, 709.7, 4);
  assertUlp("exp", exp, Math.exp, -745, -708, 1); // subnormal results: absolute ulps
  assertUlp("exp", exp, Math.exp, -1e-8, 1e-8, 1);
});

Deno.test("log special values", () => {
  assert.ok(Number.isNaN(log(NaN)));
  assert.ok(Number.isNaN(log(-1)));
  assert.ok(Number.isNaN(log(-Infinity)));
  assert.equal(log(0), -Infinity);
  assert.equal(log(-0), -Infinity);
  assert.equal(log(Infinity), Infinity);
  assert.equal(log(1), 0);
  assert.ok(Object.is(log(1), 0));
  assert.equal(log(Math.E), 1);
  assert.equal(log(2), Math.LN2);
  assert.equal(log(10), Math.LN10);
  assert.ok(ulpDistance(log(5e-324), -744.4400719213812) <= 1);
  assert.ok(ulpDistance(log(Number.MAX_VALUE), 709.782712893384) <= 1);
  assert.ok(ulpDistance(log(2.2250738585072014e-308), -708.3964185322641) <= 1);
});

Deno.test("log matches Math.log within 4 ulp", () => {
  assertUlp("log", log, Math.log, 0.5, 2, 4);
  assertUlp("log", log, Math.log, 0.999, 1.001, 4);
  assertUlp("log", log, Math.log, 1e-6, 1e6, 4);
  // Log-uniform over the whole positive range, subnormals included.
  const rng = new Lcg(7);
  for (let i = 0; i < 20000; i++) {
    const x = 4.9e-324 * 2 ** (2097 * rng.next()) || Number.MIN_VALUE;
    if (!Number.isFinite(x)) continue;
    const d = ulpDistance(log(x), Math.log(x));
    assert.ok(d <= 4, `log(${x}): ${d} ulp`);
  }
  // log(exp(x)) round-trips closely.
  for (const x of [-700, -3.5, -0.7, 0.3, 1, 42, 700]) {
    assertRel(log(exp(x)), x, 1e-15, `log(exp(${x}))`);
  }
});

Deno.test("tanh special values, symmetry, small arguments", () => {
  assert.ok(Number.isNaN(tanh(NaN)));
  assert.ok(Object.is(tanh(0), 0));
  assert.ok(Object.is(tanh(-0), -0));
  assert.equal(tanh(Infinity), 1);
  assert.equal(tanh(-Infinity), -1);
  assert.equal(tanh(25), 1);
  assert.equal(tanh(-1e300), -1);
  for (const x of [1e-300, 5e-324, 1e-20, 1e-9, 3e-8]) {
    assertRel(tanh(x), x - x * x * x / 3, 1e-16, `tanh(${x})`);
  }
  const rng = new Lcg(3);
  for (let i = 0; i < 5000; i++) {
    const x = 40 * rng.next() - 20;
    assert.ok(Object.is(tanh(-x), -tanh(x)), `odd symmetry at ${x}`);
  }
});

Deno.test("tanh matches Math.tanh within 4 ulp", () => {
  assertUlp("tanh", tanh, Math.tanh, -0.7, 0.7, 4);
  assertUlp("tanh", tanh, Math.tanh, -1e-4, 1e-4, 4);
  assertUlp("tanh", tanh, Math.tanh, -3, 3, 4);
  assertUlp("tanh", tanh, Math.tanh, -25, 25, 4);
});

// Reference values computed with 40-digit arithmetic (mpmath).
const ERF_REF: [number, number][] = [
  [1e-300, 1.1283791670955126e-300],
  [1e-10, 1.1283791670955126e-10],
  [0.1, 0.1124629160182849],
  [0.5, 0.5204998778130465],
  [0.79, 0.7361034538206911],
  [0.8, 0.7421009647076605],
  [0.81, 0.7480032805977895],
  [1, 0.8427007929497149],
  [1.5, 0.9661051464753108],
  [2, 0.9953222650189527],
  [2.5, 0.999593047982555],
  [3, 0.9999779095030014],
  [-3, -0.9999779095030014],
  [4, 0.9999999845827421],
  [5, 0.9999999999984626],
  [5.9, 0.9999999999999999],
];

Deno.test("erf known values", () => {
  for (const [x, v] of ERF_REF) {
    assertRel(erf(x), v, 2e-16, `erf(${x})`);
    assert.ok(ulpDistance(erf(x), v) <= 2, `erf(${x}) ulp`);
  }
});

Deno.test("erf special values, symmetry, monotonicity", () => {
  assert.ok(Number.isNaN(erf(NaN)));
  assert.ok(Object.is(erf(0), 0));
  assert.ok(Object.is(erf(-0), -0));
  assert.equal(erf(Infinity), 1);
  assert.equal(erf(-Infinity), -1);
  assert.equal(erf(6), 1);
  assert.equal(erf(-30), -1);
  assert.equal(erf(5e-324), 5e-324);
  let prev = -1;
  for (let i = -7000; i <= 7000; i++) {
    const x = i / 1000;
    const v = erf(x);
    assert.ok(Object.is(erf(-x), -v), `odd symmetry at ${x}`);
    assert.ok(v >= prev, `monotone at ${x}`);
    assert.ok(Math.abs(v) <= 1);
    prev = v;
  }
});

Deno.test("erf is consistent with its derivative 2/sqrt(pi) exp(-x^2)", () => {
  // Simpson's rule on a fine grid: integral of erf' over [a, b] equals erf(b) - erf(a).
  const c = 1.1283791670955126;
  for (const [a, b] of [[0, 0.8], [0.5, 1.2], [0.8, 2], [2, 4], [-1, 3]]) {
    const n = 20000;
    const h = (b - a) / n;
    let s = exp(-a * a) + exp(-b * b);
    for (let i = 1; i < n; i++) {
      const x = a + i * h;
      s += (i % 2 ? 4 : 2) * exp(-x * x);
    }
    const integral = c * s * h / 3;
    assert.ok(
      Math.abs(integral - (erf(b) - erf(a))) < 2e-14,
      `[${a}, ${b}]: ${integral - (erf(b) - erf(a))}`,
    );
  }
});

// [x, gelu(x), geluGrad(x)] with 40-digit arithmetic.
const GELU_REF: [number, number, number][] = [
  [-10, -7.619853024160526e-23, -7.618400096464814e-22],
  [-5, -1.4332578593959695e-6, -7.146946001792295e-6],
  [-3, -0.0040496940948902835, -0.011945647204183927],
  [-1, -0.15865525393145705, -0.0833154705876863],
  [-0.5, -0.15426876936299344, 0.13250487534383715],
  [-1e-3, -0.000499601057786089, 0.4992021157051586],
  [1e-3, 0.000500398942213911, 0.5007978842948414],
  [0.5, 0.34573123063700656, 0.8674951246561629],
  [1, 0.8413447460685429, 1.0833154705876864],
  [2, 1.9544997361036416, 1.085231801078197],
  [3, 2.99595030590511, 1.011945647204184],
  [10, 10.0, 1.0],
];

Deno.test("gelu known values and 0.5*x*(1+erf(x/sqrt(2)))", () => {
  for (const [x, g, d] of GELU_REF) {
    assertRel(gelu(x), g, 1e-15, `gelu(${x})`);
    assertRel(geluGrad(x), d, 1e-14, `geluGrad(${x})`);
  }
  const rng = new Lcg(11);
  for (let i = 0; i < 5000; i++) {
    const x = 12 * rng.next() - 4;
    const naive = 0.5 * x * (1 + erf(x / Math.SQRT2));
    assert.ok(Math.abs(gelu(x) - naive) <= 4e-16 * Math.max(1, Math.abs(x)), `gelu(${x}) vs naive`);
  }
  assert.ok(Object.is(gelu(0), 0));
  assert.ok(Object.is(gelu(-0), -0));
  assert.equal(gelu(Infinity), Infinity);
  assert.ok(Object.is(gelu(-Infinity), -0));
  assert.ok(Number.isNaN(gelu(NaN)));
  assert.equal(gelu(-40), -0); // Phi(-40) underflows
});

Deno.test("geluGrad matches central finite difference of gelu", () => {
  const rng = new Lcg(5);
  for (let i = 0; i < 5000; i++) {
    const x = 16 * rng.next() - 8;
    const h = 1e-5;
    const fd = (gelu(x + h) - gelu(x - h)) / (2 * h);
    assert.ok(Math.abs(geluGrad(x) - fd) < 1e-9, `geluGrad(${x}) = ${geluGrad(x)} vs fd ${fd}`);
  }
  assert.equal(geluGrad(0), 0.5);
  assert.equal(geluGrad(Infinity), 1);
  assert.equal(geluGrad(-Infinity), 0);
  assert.equal(geluGrad(100), 1);
  assert.ok(Number.isNaN(geluGrad(NaN)));
});

Deno.test("sigmoid", () => {
  assert.equal(sigmoid(0), 0.5);
  assert.equal(sigmoid(-0), 0.5);
  assert.equal(sigmoid(Infinity), 1);
  assert.equal(sigmoid(-Infinity), 0);
  assert.ok(Number.isNaN(sigmoid(NaN)));
  assert.equal(sigmoid(800), 1);
  assert.equal(sigmoid(-800), 0);
  // Deep negative tail keeps relative accuracy: sigmoid(x) ~ e^x.
  assertRel(sigmoid(-700), Math.exp(-700), 1e-15, "sigmoid(-700)");
  const ref = (x: number) => x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
  assertUlp("sigmoid", sigmoid, ref, -40, 40, 4);
  const rng = new Lcg(9);
  for (let i = 0; i < 2000; i++) {
    const x = 60 * rng.next() - 30;
    assert.ok(Math.abs(sigmoid(x) + sigmoid(-x) - 1) <= 2.3e-16, `sigmoid symmetry at ${x}`);
  }
});
