/**
 * Optimizer updates, written op by op as Keras 2.15 writes them, with every
 * intermediate rounded to the state's format (`r`), as TensorFlow does when
 * each op runs in that dtype. Hyperparameters are rounded to the state format
 * too (standalone fp16: lr 0.01 -> 0.010002, momentum 0.9 -> 0.8999).
 *
 * Inputs `invScale` (1 / loss scale) and `ok` (all gradients finite) come
 * last; when the node is `gated` and ok is 0 the state is left unchanged, which
 * is how dynamic loss scaling skips a step. Parameter updates may round
 * stochastically (policy `rounding=stochastic`) from a per-step seed input.
 *
 * @module
 */

import { FORMATS, type Rounder, roundGeneric } from "../../lib/formats/format.ts";
import { hashUniform } from "../../lib/random.ts";
import { type Kernel, type KernelArgs, num } from "./kernel.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/** The effective gradient r(g * invScale) + r(wd * w), wd being coupled L2 decay. */
function gradAt(g: Float64Array, w: Float64Array, i: number, inv: number, wd: number, r: Rounder): number {
  const v = r(g[i] * inv);
  return wd === 0 ? v : r(v + r(wd * w[i]));
}

/** Returns the state unchanged when the step is gated off, else undefined. */
function skipped(a: KernelArgs, state: Float64Array, ok: Float64Array): Float64Array | undefined {
  return a.node.attrs.gated && ok[0] === 0 ? Float64Array.from(state) : undefined;
}

/** The final rounding of a parameter update: nearest-even, or stochastic from (seed, salt, index). */
function finalRounder(a: KernelArgs, seed: Float64Array): (v: number, i: number) => number {
  if (!a.node.attrs.stochastic) return (v) => a.out(v);
  const f = FORMATS[a.outFormat], s = seed[0], salt = num(a.node, "salt");
  return (v, i) => roundGeneric(f, v, hashUniform(s, salt, i, 0x73726e64));
}

/** Keras SGD velocity: v' = r(r(mom * v) - r(lr * grad)). */
const sgdVelocity: Kernel = (a) => {
  const [v, g, w, inv, ok] = a.x, r = a.out;
  const lr = r(num(a.node, "lr")), mom = r(num(a.node, "momentum")), wd = r(num(a.node, "wd"));
  return skipped(a, v, ok) ??
    Float64Array.from(v, (vi, i) => r(r(mom * vi) - r(lr * gradAt(g, w, i, inv[0], wd, r))));
};

/** w' = w + v' with momentum, else w' = w - r(lr * grad). */
const sgdApply: Kernel = (a) => {
  const [w, d, inv, ok, seed] = a.x, r = a.out;
  const lr = r(num(a.node, "lr")), wd = r(num(a.node, "wd"));
  const fin = finalRounder(a, seed);
  if (num(a.node, "momentum") > 0) {
    return skipped(a, w, ok) ?? Float64Array.from(w, (wi, i) => fin(wi + d[i], i));
  }
  return skipped(a, w, ok) ??
    Float64Array.from(w, (wi, i) => fin(wi - r(lr * gradAt(d, w, i, inv[0], wd, r)), i));
};

/** Keras Adam moment: m' = r(m + r(r(grad^p - m) * r(1 - beta))), p = 1 (first) or 2 (second moment). */
const adamMoment: Kernel = (a) => {
  const [m, g, w, inv, ok] = a.x, r = a.out;
  const omb = r(1 - r(num(a.node, "beta"))), wd = r(num(a.node, "wd")), square = num(a.node, "power") === 2;
  return skipped(a, m, ok) ?? Float64Array.from(m, (mi, i) => {
    const gi = gradAt(g, w, i, inv[0], wd, r);
    return r(mi + r(r((square ? r(gi * gi) : gi) - mi) * omb));
  });
};

/** Keras Adam step: w' = w - r(r(alpha * m) / r(r(sqrt(v)) + eps)), alpha = lr sqrt(1 - b2^t) / (1 - b1^t). */
const adamApply: Kernel = (a) => {
  const [w, m, v, alpha, ok, seed] = a.x, r = a.out;
  const al = r(alpha[0]), eps = r(num(a.node, "eps"));
  const fin = finalRounder(a, seed);
  return skipped(a, w, ok) ??
    Float64Array.from(w, (wi, i) => fin(wi - r(r(al * m[i]) / r(r(Math.sqrt(v[i])) + eps)), i));
};

/** Kernels of this file by op name. */
export const OPTIM = {
  sgd_velocity: sgdVelocity,
  sgd_apply: sgdApply,
  adam_moment: adamMoment,
  adam_apply: adamApply,
} satisfies Partial<Record<OpName, Kernel>>;
