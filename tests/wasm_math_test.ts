/**
 * The wasm kernels' elementary functions, counter hash and roundings give the bits of their TypeScript
 * definitions (lib/math.ts, lib/random.ts, lib/formats/format.ts) over a million inputs each, edges
 * included.
 */

import assert from "node:assert/strict";
import { instantiateKernels } from "../kernels/wasm/mod.ts";
import { rounder } from "../lib/formats/format.ts";
import { exp, gelu, geluGrad, log, tanh } from "../lib/math.ts";
import { hashUniform, Rng } from "../lib/random.ts";

const { k } = instantiateKernels();
const N = 1 << 20;
const EDGES = [
  0,
  -0,
  1e-310,
  -1e-310,
  5e-324,
  1e-17,
  0.625,
  0.8,
  6,
  22,
  27.3,
  40,
  709.8,
  -745.2,
  1e300,
  -1e300,
];
const EDGES_ALL = [...EDGES, ...EDGES.map((v) => -v), Infinity, -Infinity, NaN];

/** Inputs spread over many binades (uniform significand, exponent in [-lo, hi]) and the edges. */
function inputs(seed: number, lo: number, hi: number): Float64Array {
  const rng = new Rng(seed, "wasm-math"), x = new Float64Array(N + EDGES_ALL.length);
  for (let i = 0; i < N; i++) {
    const m = 1 + rng.uniform(), e = Math.floor(rng.uniform() * (lo + hi + 1)) - lo;
    x[i] = (rng.uniform() < 0.5 ? -m : m) * 2 ** e;
  }
  x.set(EDGES_ALL, N);
  return x;
}

function same(a: number, b: number) {
  return Object.is(a, b) || (a !== a && b !== b);
}

const CASES: [string, (x: number) => number, (x: number) => number, number, number][] = [
  ["exp", exp, k.exp, 30, 10],
  ["log", log, k.log, 1074, 1023],
  ["tanh", tanh, k.tanh, 40, 6],
  ["gelu", gelu, k.gelu, 40, 7],
  ["geluGrad", geluGrad, k.geluGrad, 40, 7],
];

for (const [name, ts, wasm, lo, hi] of CASES) {
  Deno.test(`wasm ${name} gives lib/math.ts's bits`, () => {
    for (const x of inputs(name.length, lo, hi)) {
      const a = ts(x), b = wasm(x);
      if (!same(a, b)) assert.fail(`${name}(${x}): lib/math.ts ${a}, wasm ${b}`);
    }
  });
}

Deno.test("wasm round gives the bits of lib/formats' rounders for fp32, fp16 and bf16", () => {
  const xs = inputs(7, 150, 130);
  for (const [code, f] of [[0, "fp32"], [1, "fp16"], [2, "bf16"]] as const) {
    const r = rounder(f);
    for (const x of xs) {
      const a = r(x), b = k.round(code, x);
      if (!same(a, b)) assert.fail(`round ${f}(${x}): ${a} vs wasm ${b}`);
    }
  }
});

Deno.test("wasm hashUniform gives lib/random.ts's values", () => {
  const rng = new Rng(3, "hash");
  for (let i = 0; i < N; i++) {
    const w = [rng.nextU32() >>> 8, rng.nextU32(), i, 0x64726f70];
    assert.equal(k.hashUniform(w[0], w[1], w[2], w[3]), hashUniform(w[0], w[1], w[2], w[3]));
  }
});
