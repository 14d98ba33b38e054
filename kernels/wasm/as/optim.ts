/**
 * Optimizer updates written op by op as Keras writes them, every intermediate rounded to the state's
 * format (ref: kernels/ref/optim.ts). Scalars that are tensors on the graph (1 / loss scale, the finite
 * flag, Adam's alpha, the step seed) are read by the host and passed as numbers; a gated step whose
 * gradients were not finite is a copy, done by the host.
 */

import { BF16, FP16, ld, round, st } from "./format";
import { hashUniform } from "./math";

// @ts-ignore: decorator
@inline function grad(g: usize, fg: i32, w: usize, fw: i32, i: i32, inv: f64, wd: f64, f: i32): f64 {
  const v = round(f, ld(fg, g, i) * inv);
  return wd == 0 ? v : round(f, v + round(f, wd * ld(fw, w, i)));
}

/** lib/formats/format.ts roundGeneric with a uniform `u`: stochastic rounding to fp32, fp16 or bf16. */
function roundStochastic(f: i32, x: f64, u: f64): f64 {
  if (x != x || x == 0 || x - x != 0) return x;
  const precision = f == FP16 ? 11 : f == BF16 ? 8 : 24;
  const emin = f == FP16 ? -14 : -126;
  const maxFinite = f == FP16 ? 65504 : f == BF16 ? 3.3895313892515355e38 : 3.4028234663852886e38;
  const a = Math.abs(x);
  let e = <i32>((reinterpret<u64>(a) >>> 52) & 0x7ff) - 1023;
  if (e < emin) e = emin;
  const q = reinterpret<f64>(<i64>(e - precision + 1 + 1023) << 52);
  const y = a / q;
  let n = Math.floor(y);
  if (u < y - n) n += 1;
  let r = n * q;
  if (r > maxFinite) r = Infinity;
  return x < 0 ? -r : r;
}

/** Stores a parameter update: nearest-even, or stochastic from (seed, salt, index) when `stochastic`. */
// @ts-ignore: decorator
@inline function final(f: i32, y: usize, i: i32, v: f64, stochastic: bool, seed: u32, salt: u32): void {
  if (stochastic) st(f, y, i, roundStochastic(f, v, hashUniform(seed, salt, <u32>i, 0x73726e64)));
  else st(f, y, i, v);
}

/** Keras SGD velocity: v' = r(r(mom * v) - r(lr * grad)). */
export function sgdVelocity(
  v: usize, fv: i32, g: usize, fg: i32, w: usize, fw: i32, y: usize, f: i32, n: i32, lr: f64, mom: f64, wd: f64, inv: f64,
): void {
  const rl = round(f, lr), rm = round(f, mom), rw = round(f, wd);
  for (let i = 0; i < n; i++) {
    st(f, y, i, round(f, rm * ld(fv, v, i)) - round(f, rl * grad(g, fg, w, fw, i, inv, rw, f)));
  }
}

/** w' = w + v' (momentum, `d` = v'), else w' = w - r(lr * grad) (`d` = the gradient). */
export function sgdApply(
  w: usize, d: usize, fd: i32, y: usize, f: i32, n: i32, lr: f64, wd: f64, momentum: bool, inv: f64,
  stochastic: bool, seed: u32, salt: u32,
): void {
  const rl = round(f, lr), rw = round(f, wd);
  for (let i = 0; i < n; i++) {
    const wi = ld(f, w, i);
    const v = momentum ? wi + ld(fd, d, i) : wi - round(f, rl * grad(d, fd, w, f, i, inv, rw, f));
    final(f, y, i, v, stochastic, seed, salt);
  }
}

/** Keras Adam moment: m' = r(m + r(r(grad^p - m) * r(1 - beta))). */
export function adamMoment(
  m: usize, fm: i32, g: usize, fg: i32, w: usize, fw: i32, y: usize, f: i32, n: i32, beta: f64, wd: f64, square: bool,
  inv: f64,
): void {
  const omb = round(f, 1 - round(f, beta)), rw = round(f, wd);
  for (let i = 0; i < n; i++) {
    const gi = grad(g, fg, w, fw, i, inv, rw, f), mi = ld(fm, m, i);
    st(f, y, i, mi + round(f, round(f, (square ? round(f, gi * gi) : gi) - mi) * omb));
  }
}

/** Keras Adam step: w' = w - r(r(alpha * m) / r(r(sqrt(v)) + eps)). */
export function adamApply(
  w: usize, m: usize, fm: i32, v: usize, fv: i32, y: usize, f: i32, n: i32, alpha: f64, eps: f64,
  stochastic: bool, seed: u32, salt: u32,
): void {
  const al = round(f, alpha), ep = round(f, eps);
  for (let i = 0; i < n; i++) {
    const u = ld(f, w, i) - round(f, round(f, al * ld(fm, m, i)) / round(f, round(f, Math.sqrt(ld(fv, v, i))) + ep));
    final(f, y, i, u, stochastic, seed, salt);
  }
}
