/**
 * Elementwise ops: activations and their gradients, add, scale, cast,
 * dropout and the finite check. Each output element is computed in float64
 * from the rounded inputs and rounded once to the output format.
 *
 * @module
 */

import { gelu, geluGrad, tanh } from "../../lib/math.ts";
import { hashUniform } from "../../lib/random.ts";
import { type Kernel, num } from "./kernel.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/** A kernel applying `f` to the inputs element by element (plain loops: typed-array `from` is slow in V8). */
function map1(f: (a: number) => number): Kernel {
  return ({ x: [a], out }) => {
    const y = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) y[i] = out(f(a[i]));
    return y;
  };
}
function map2(f: (a: number, b: number) => number): Kernel {
  return ({ x: [a, b], out }) => {
    const y = new Float64Array(a.length);
    for (let i = 0; i < a.length; i++) y[i] = out(f(a[i], b[i]));
    return y;
  };
}

/** The element-keep test of dropout: a pure function of (seed, salt, index), so backward sees the forward mask. */
export function dropoutKeeps(seed: number, salt: number, i: number, rate: number): boolean {
  return hashUniform(seed, salt, i, 0x64726f70) >= rate;
}

const dropout: Kernel = ({ node, x: [x, seed], out }) => {
  const rate = num(node, "rate"), salt = num(node, "salt"), s = seed[0];
  const keep = 1 - rate;
  return Float64Array.from(x, (v, i) => (dropoutKeeps(s, salt, i, rate) ? out(v / keep) : 0));
};

/** Lost updates: the step was nonzero (NaN included) and the parameter compares equal to its old value. */
const countLost: Kernel = ({ x, out }) => {
  let lost = 0;
  for (let k = 0; k < x.length; k += 3) {
    const [w0, w1, step] = [x[k], x[k + 1], x[k + 2]];
    for (let i = 0; i < w0.length; i++) if (step[i] !== 0 && w1[i] === w0[i]) lost++;
  }
  return Float64Array.of(out(lost));
};

const allFinite: Kernel = ({ x }) => {
  for (const a of x) for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return Float64Array.of(0);
  return Float64Array.of(1);
};

/** Kernels of this file by op name. */
export const ELEMENTWISE = {
  // relu keeps NaN (so divergence stays visible) and maps -0 to +0.
  relu: map1((v) => (v > 0 ? v : v !== v ? v : 0)),
  relu_grad: map2((x, g) => (x > 0 ? g : 0)),
  tanh: map1(tanh),
  tanh_grad: map2((y, g) => g * (1 - y * y)),
  gelu: map1(gelu),
  gelu_grad: map2((x, g) => g * geluGrad(x)),
  add: map2((a, b) => a + b),
  scale: (a) => map1((v) => v * num(a.node, "factor"))(a),
  cast: map1((v) => v),
  dropout,
  all_finite: allFinite,
  count_lost: countLost,
} satisfies Partial<Record<OpName, Kernel>>;
