import assert from "node:assert/strict";
import {
  type Format,
  FORMAT_NAMES,
  formatByName,
  FORMATS,
  isRepresentable,
  roundArray,
  rounder,
  roundGeneric,
} from "../lib/formats/format.ts";
import { Rng } from "../lib/random.ts";

const FP16 = FORMATS.fp16, BF16 = FORMATS.bf16, FP32 = FORMATS.fp32;

/** Both rounding paths of a format (the fast `rounder` and the generic one). */
function paths(name: "fp16" | "bf16"): [string, (x: number) => number][] {
  const f = FORMATS[name];
  return [[`rounder(${name})`, rounder(name)], [`roundGeneric(${name})`, (x) => roundGeneric(f, x)]];
}

/** Asserts `got` is `want` in the Object.is sense (so -0 and NaN are told apart correctly). */
function same(got: number, want: number, what: string): void {
  assert.ok(
    Object.is(got, want),
    `${what}: got ${Object.is(got, -0) ? "-0" : got}, want ${Object.is(want, -0) ? "-0" : want}`,
  );
}

const FP16_CASES: [number, number][] = [
  [65504, 65504],
  [65519.99, 65504],
  [65520, Infinity], // tie between 65504 (odd significand) and 2^16: even goes up, overflows
  [-65520, -Infinity],
  [-65504, -65504],
  [2 ** -24, 2 ** -24], // smallest subnormal
  [2 ** -25, 0], // tie between 0 and 2^-24: 0 is even
  [-(2 ** -25), -0],
  [3 * 2 ** -25, 2 ** -23], // tie between 2^-24 (odd) and 2^-23
  [2 ** -25 + 2 ** -60, 2 ** -24], // just above the tie
  [2 ** -14, 2 ** -14], // smallest normal
  [2 ** -14 - 2 ** -24, 2 ** -14 - 2 ** -24], // largest subnormal
  [1 + 2 ** -11, 1], // tie, 1 is even
  [1 + 3 * 2 ** -11, 1 + 2 ** -9], // tie, rounds to the even 1 + 2^-9
  [1 + 2 ** -10, 1 + 2 ** -10],
  [0, 0],
  [-0, -0],
  [-(2 ** -26), -0],
  [2 ** -26, 0],
  [Infinity, Infinity],
  [-Infinity, -Infinity],
  [1e300, Infinity],
  [-1e300, -Infinity],
  [1e-300, 0],
  [5e-324, 0],
];

Deno.test("fp16 rounding edge cases, both paths", () => {
  for (const [label, r] of paths("fp16")) {
    for (const [x, want] of FP16_CASES) same(r(x), want, `${label}(${x})`);
    assert.ok(Number.isNaN(r(NaN)), `${label}(NaN)`);
  }
});

Deno.test("fp16 has no double rounding through fp32", () => {
  // 1 + 2^-11 + 2^-40 is just above the fp16 tie between 1 and 1 + 2^-10; rounding it to fp32 first
  // gives exactly the tie 1 + 2^-11, which would then round (to even) down to 1.
  const x = 1 + 2 ** -11 + 2 ** -40;
  assert.equal(Math.fround(x), 1 + 2 ** -11);
  assert.equal(Math.f16round(Math.fround(x)), 1);
  for (const [label, r] of paths("fp16")) {
    same(r(x), 1 + 2 ** -10, label);
    same(r(-x), -(1 + 2 ** -10), `${label} negative`);
  }
  // Same in the subnormal range: just above the tie 2^-25.
  const y = 2 ** -25 + 2 ** -50;
  assert.equal(Math.fround(y), 2 ** -25);
  for (const [label, r] of paths("fp16")) same(r(y), 2 ** -24, `${label} subnormal`);
});

const BF16_MAX = (2 - 2 ** -7) * 2 ** 127;
const BF16_TIE = (2 - 2 ** -8) * 2 ** 127; // halfway between BF16_MAX and 2^128

Deno.test("bf16 rounding edge cases, both paths", () => {
  assert.equal(BF16.maxFinite, BF16_MAX);
  const cases: [number, number][] = [
    [BF16_MAX, BF16_MAX],
    [-BF16_MAX, -BF16_MAX],
    [BF16_TIE, Infinity], // BF16_MAX has an odd significand, so the tie goes up and overflows
    [-BF16_TIE, -Infinity],
    [BF16_TIE - 2 ** 80, BF16_MAX], // just below the tie
    [1 + 2 ** -8, 1],
    [1 + 3 * 2 ** -8, 1 + 2 ** -6],
    [1 + 2 ** -8 + 2 ** -30, 1 + 2 ** -7],
    [2 ** -133, 2 ** -133], // smallest subnormal
    [2 ** -134, 0],
    [-(2 ** -134), -0],
    [3 * 2 ** -134, 2 ** -132],
    [2 ** -126, 2 ** -126], // smallest normal
    [0, 0],
    [-0, -0],
    [Infinity, Infinity],
    [-Infinity, -Infinity],
    [Math.PI, 3.140625],
  ];
  for (const [label, r] of paths("bf16")) {
    for (const [x, want] of cases) same(r(x), want, `${label}(${x})`);
    assert.ok(Number.isNaN(r(NaN)), `${label}(NaN)`);
  }
});

/** A deterministic spread of doubles: random sign, exponent in [eLo, eHi], and a significand of a random bit count. */
function samples(seed: number, n: number, eLo: number, eHi: number): Float64Array {
  const rng = new Rng(seed, "formats_test/samples");
  const out = new Float64Array(n);
  const bitChoices = [53, 53, 9, 10, 12, 13, 25, 26];
  for (let i = 0; i < n; i++) {
    const bits = bitChoices[rng.below(bitChoices.length)];
    // significand in [1, 2) with `bits` bits (few bits make exact ties common).
    const hi = rng.nextU32() / 2 ** 32, lo = rng.nextU32() / 2 ** 64;
    const frac = Math.floor((hi + lo) * 2 ** (bits - 1)) / 2 ** (bits - 1);
    const e = eLo + rng.below(eHi - eLo + 1);
    const sign = rng.below(2) ? -1 : 1;
    out[i] = sign * (1 + frac) * 2 ** e;
  }
  return out;
}

Deno.test("cross-check: roundGeneric(fp32) = Math.fround, fp16 paths = Math.f16round (200k doubles)", () => {
  const xs16 = samples(1, 100_000, -30, 17); // fp16 underflow, subnormal, normal and overflow ranges
  const xs32 = samples(2, 100_000, -155, 129); // fp32 underflow .. overflow
  const r16 = rounder("fp16");
  let checked = 0;
  for (const xs of [xs16, xs32]) {
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      const want32 = Math.fround(x), want16 = Math.f16round(x);
      const g32 = roundGeneric(FP32, x), g16 = roundGeneric(FP16, x), f16 = r16(x);
      if (!Object.is(g32, want32)) assert.fail(`roundGeneric(fp32, ${x}) = ${g32}, Math.fround = ${want32}`);
      if (!Object.is(g16, want16)) {
        assert.fail(`roundGeneric(fp16, ${x}) = ${g16}, Math.f16round = ${want16}`);
      }
      if (!Object.is(f16, want16)) assert.fail(`rounder(fp16)(${x}) = ${f16}, Math.f16round = ${want16}`);
      checked++;
    }
  }
  assert.equal(checked, 200_000);
});

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bits32(x: number): number {
  f32[0] = x;
  return u32[0];
}
function fromBits32(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}

Deno.test("cross-check: bf16 results are bf16 values and the nearer (even on ties) neighbour", () => {
  const xs = samples(3, 100_000, -140, 128);
  const rb = rounder("bf16");
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i], a = Math.abs(x);
    const r = roundGeneric(BF16, x);
    if (!Object.is(rb(x), r)) assert.fail(`rounder(bf16) and roundGeneric(bf16) differ at ${x}`);
    if (Math.sign(r) !== Math.sign(x) && r !== 0) assert.fail(`sign flipped at ${x}`);
    if (r === 0 && !Object.is(r, x < 0 ? -0 : 0)) assert.fail(`zero of the wrong sign at ${x}`);
    const m = Math.abs(r);
    if (m === Infinity) {
      if (!(a >= BF16_TIE)) assert.fail(`${x} overflowed below the tie`);
      continue;
    }
    if (a >= BF16_TIE) assert.fail(`${x} at or above the overflow tie rounded to ${r}`);
    if (Math.fround(m) !== m) assert.fail(`bf16(${x}) = ${r} is not an fp32 value`);
    const b = bits32(m);
    if ((b & 0xffff) !== 0) assert.fail(`bf16(${x}) = ${r} has low bits ${(b & 0xffff).toString(16)}`);
    const up = fromBits32(b + 0x10000), dn = m === 0 ? 0 : fromBits32(b - 0x10000);
    const d = Math.abs(a - m), dUp = Math.abs(a - up), dDn = Math.abs(a - dn);
    if (!(d <= dUp && d <= dDn)) {
      assert.fail(`bf16(${x}) = ${r} is not the nearest (neighbours ${dn}, ${up})`);
    }
    if ((d === dUp || (d === dDn && m !== 0)) && (b & 0x10000) !== 0 && d !== 0) {
      assert.fail(`tie at ${x} went to the odd neighbour ${r}`);
    }
  }
});

Deno.test("isRepresentable, roundArray and formatByName", () => {
  assert.equal(isRepresentable("fp16", 65504), true);
  assert.equal(isRepresentable("fp16", 65505), false);
  assert.equal(isRepresentable("fp16", 2 ** -24), true);
  assert.equal(isRepresentable("fp16", 2 ** -25), false);
  assert.equal(isRepresentable("fp16", 1 + 2 ** -10), true);
  assert.equal(isRepresentable("fp16", 1 + 2 ** -11), false);
  assert.equal(isRepresentable("bf16", 1 + 2 ** -7), true);
  assert.equal(isRepresentable("bf16", 1 + 2 ** -8), false);
  assert.equal(isRepresentable(FP32, 0.1), false);
  assert.equal(isRepresentable(FP32, Math.fround(0.1)), true);
  assert.equal(isRepresentable("fp64", 0.1), true);
  for (const f of FORMAT_NAMES) {
    assert.equal(isRepresentable(f, NaN), true, `${f} NaN`);
    assert.equal(isRepresentable(f, Infinity), true, `${f} Infinity`);
    assert.equal(isRepresentable(f, -Infinity), true, `${f} -Infinity`);
    assert.equal(isRepresentable(f, -0), true, `${f} -0`);
    assert.equal(formatByName(f), FORMATS[f]);
    assert.equal(FORMATS[f].name, f);
  }
  assert.equal(isRepresentable("fp16", 1e6), false); // overflows to Infinity, so not representable

  const arr = Float64Array.of(1 + 2 ** -11, 65520, -(2 ** -26), 0.1);
  const back = roundArray("fp16", arr);
  assert.equal(back, arr, "rounds in place and returns the same array");
  assert.deepEqual([...arr], [1, Infinity, -0, Math.f16round(0.1)]);
  assert.ok(Object.is(arr[2], -0));

  for (const bad of ["fp8", "FP16", "", "float16", "toString", "__proto__", "constructor"]) {
    assert.throws(() => formatByName(bad), (e: unknown) => {
      assert.ok(e instanceof RangeError, `formatByName(${JSON.stringify(bad)}) throws RangeError`);
      assert.match(e.message, new RegExp(`"${bad}"`));
      for (const f of FORMAT_NAMES) assert.ok(e.message.includes(f), `message lists ${f}: ${e.message}`);
      return true;
    });
  }
});

Deno.test("stochastic rounding: neighbours, threshold at u = d, unbiased, representable values fixed", () => {
  // The code rounds (the magnitude) up when u < d, d the distance from the lower neighbour in ulps, so
  // u = 0 gives the neighbour away from zero and u just below 1 the one towards zero.
  const neighbours = (f: Format, x: number) => {
    const lo = roundGeneric(f, x, 1 - 2 ** -32);
    const hi = roundGeneric(f, x, 0);
    return { lo, hi };
  };
  const cases: [Format, number, number, number][] = [
    [FP16, 1 + 2 ** -12, 1, 1 + 2 ** -10],
    [FP16, 1 + 3 * 2 ** -12, 1, 1 + 2 ** -10],
    [FP16, -(1 + 2 ** -12), -1, -(1 + 2 ** -10)],
    [FP16, 2 ** -26, 0, 2 ** -24],
    [FP16, 1000.3, 1000, 1000.5],
    [BF16, 1 + 2 ** -9, 1, 1 + 2 ** -7],
    [FP32, 1 + 2 ** -30, 1, 1 + 2 ** -23],
  ];
  for (const [f, x, lo, hi] of cases) {
    const n = neighbours(f, x);
    assert.equal(n.lo, lo, `${f.name} ${x} lower`);
    assert.equal(n.hi, hi, `${f.name} ${x} upper`);
    const rng = new Rng(7, `formats_test/sr/${f.name}/${x}`);
    const N = 40_000;
    let sum = 0;
    for (let i = 0; i < N; i++) {
      const u = rng.uniform();
      const r = roundGeneric(f, x, u);
      if (r !== lo && r !== hi) assert.fail(`${f.name} SR(${x}, ${u}) = ${r} is not a neighbour`);
      assert.equal(roundGeneric(f, x, u), r, "same u gives the same result");
      sum += r;
    }
    const mean = sum / N, q = Math.abs(hi - lo), p = (x - lo) / (hi - lo);
    const sd = q * Math.sqrt((p * (1 - p)) / N);
    assert.ok(Math.abs(mean - x) < 5 * sd, `${f.name} SR mean of ${x} = ${mean} (sd ${sd})`);
  }
  // Representable values never move, whatever u.
  const rng = new Rng(8, "formats_test/sr/exact");
  const exact = [1, -1, 65504, -65504, 2 ** -24, 2 ** -14, 1 + 2 ** -10, 0.5, 3.140625, 0, -0];
  for (const x of exact) {
    for (let k = 0; k < 200; k++) {
      const u = k === 0 ? 0 : k === 1 ? 1 - 2 ** -32 : rng.uniform();
      same(roundGeneric(FP16, x, u), x, `SR fp16 of exact ${x}, u ${u}`);
    }
  }
  same(roundGeneric(BF16, 3.140625, 0.999), 3.140625, "bf16 exact");
  assert.ok(Number.isNaN(roundGeneric(FP16, NaN, 0.5)));
  same(roundGeneric(FP16, Infinity, 0.5), Infinity, "SR Infinity");
  // Just above the largest finite value the upper neighbour is Infinity.
  const r = roundGeneric(FP16, 65510, 0.5);
  assert.ok(r === 65504 || r === Infinity);
  assert.equal(roundGeneric(FP16, 65510, 0.999), 65504);
  // The threshold: x = 1 + 2^-12 is a quarter ulp above 1, so it rounds up exactly when u < 0.25.
  assert.equal(roundGeneric(FP16, 1 + 2 ** -12, 0.25 - 2 ** -32), 1 + 2 ** -10);
  assert.equal(roundGeneric(FP16, 1 + 2 ** -12, 0.25), 1);
});

Deno.test("Rng: deterministic per (seed, stream), streams differ, permutation and below", () => {
  const take = (r: Rng, n: number) => Array.from({ length: n }, () => r.nextU32());
  const a = take(new Rng(42, "init"), 64), b = take(new Rng(42, "init"), 64);
  assert.deepEqual(a, b);
  const c = take(new Rng(42, "shuffle"), 64), d = take(new Rng(43, "init"), 64);
  assert.notDeepEqual(a, c);
  assert.notDeepEqual(a, d);
  for (const v of [...a, ...c, ...d]) assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32);
  // seed is taken modulo 2^32
  assert.deepEqual(take(new Rng(2 ** 32 + 5, "s"), 8), take(new Rng(5, "s"), 8));
  // Seed 0 and the empty stream name still give a working generator.
  const z = take(new Rng(0, ""), 16);
  assert.ok(z.some((v) => v !== 0));

  const u = new Rng(1, "uniform");
  for (let i = 0; i < 10_000; i++) {
    const v = u.uniform();
    assert.ok(v >= 0 && v < 1);
  }

  const r = new Rng(9, "below");
  for (const n of [1, 2, 3, 7, 10, 1000, 2 ** 31 + 1, 2 ** 32]) {
    for (let i = 0; i < 2000; i++) {
      const v = r.below(n);
      if (!(Number.isInteger(v) && v >= 0 && v < n)) assert.fail(`below(${n}) gave ${v}`);
    }
  }
  // below(10) hits every value, roughly uniformly.
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 20_000; i++) counts[r.below(10)]++;
  for (const k of counts) assert.ok(k > 1700 && k < 2300, `below(10) counts ${counts}`);

  for (const n of [0, 1, 2, 5, 100, 1000]) {
    const p = new Rng(3, "perm").permutation(n);
    assert.equal(p.length, n);
    assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
    assert.deepEqual(p, new Rng(3, "perm").permutation(n));
  }
  const p1 = new Rng(3, "perm").permutation(1000), p2 = new Rng(4, "perm").permutation(1000);
  assert.notDeepEqual(p1, p2);
  assert.ok(p1.some((v, i) => v !== i), "the permutation is not the identity");
});

// Regression: roundGeneric(fp64) once computed its quantum below pow2's range for |x| < 2^-970.
Deno.test({
  name: "roundGeneric(fp64) keeps float64 values, including tiny ones",
  fn() {
    for (const x of [5e-324, 1e-310, 2 ** -1022, 1.5 * 2 ** -1000, 1e-300]) {
      same(roundGeneric(FORMATS.fp64, x), x, `roundGeneric(fp64, ${x})`);
    }
  },
});

Deno.test("roundGeneric(fp64) is the identity on normal doubles", () => {
  for (const x of samples(5, 10_000, -900, 1000)) same(roundGeneric(FORMATS.fp64, x), x, `fp64 ${x}`);
  same(roundGeneric(FORMATS.fp64, Number.MAX_VALUE), Number.MAX_VALUE, "max");
});
