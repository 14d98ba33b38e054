/**
 * Optimizer updates written op by op as Keras writes them, every intermediate rounded to the state's
 * format (ref: kernels/ref/optim.ts). Scalars that are tensors on the graph (1 / loss scale, the finite
 * flag, Adam's alpha, the step seed) are read by the host and passed as numbers; a gated step whose
 * gradients were not finite is a copy, done by the host.
 */

import { BF16, FP16, FP32, ld, ldf, round, roundF32, st, stf } from "./format";
import { ld4, round4, round4Bounded, roundStore4, st4 } from "./simd";

/**
 * True when f32 arithmetic rounded to `f` after every op gives ref's bits: every operand is in the 16-bit
 * format `f`, so products of two are exact in f32 and sums round twice harmlessly (24 >= 2p + 2 bits), and
 * 1 / loss scale is 1 (or, for fp16, a power of two that keeps g * inv exact in f32).
 */
function exactInF32(f: i32, a: i32, b: i32, c: i32, inv: f64): bool {
  if (f == FP32) return true; // every op rounds to fp32: f32 arithmetic on exact values is exactly that
  if (a != f || b != f || c != f) return false;
  if (inv == 1) return true;
  const bits = reinterpret<u64>(inv);
  return f == FP16 && (bits & 0xfffffffffffff) == 0 && inv >= 9.313225746154785e-10 && inv <= 1; // 2^-30 .. 1
}
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
  if (exactInF32(f, fv, fg, fw, inv)) {
    const lf = <f32>rl, mf = <f32>rm, wf = <f32>rw, invf = <f32>inv;
    const l4 = f32x4.splat(lf), m4 = f32x4.splat(mf), w4 = f32x4.splat(wf), inv4 = f32x4.splat(invf);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      // With 1 / loss scale = 1 the product and its rounding are the identity on a value already in f.
      let gi = ld4(fg, g, i);
      if (invf != 1) gi = round4(f, f32x4.mul(gi, inv4));
      if (wf != 0) gi = round4(f, f32x4.add(gi, round4(f, f32x4.mul(w4, ld4(fw, w, i)))));
      st4(f, y, i, f32x4.sub(round4(f, f32x4.mul(m4, ld4(fv, v, i))), round4(f, f32x4.mul(l4, gi))));
    }
    for (; i < n; i++) {
      let gi = roundF32(f, ldf(fg, g, i) * invf);
      if (wf != 0) gi = roundF32(f, gi + roundF32(f, wf * ldf(fw, w, i)));
      stf(f, y, i, roundF32(f, mf * ldf(fv, v, i)) - roundF32(f, lf * gi));
    }
    return;
  }
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
  let i = 0;
  if (!stochastic && exactInF32(f, fd, fd, f, inv)) {
    const l4 = f32x4.splat(<f32>rl), w4 = f32x4.splat(<f32>rw), inv4 = f32x4.splat(<f32>inv);
    for (; i + 4 <= n; i += 4) {
      const wi = ld4(f, w, i);
      if (momentum) st4(f, y, i, f32x4.add(wi, ld4(fd, d, i)));
      else {
        let gi = round4(f, f32x4.mul(ld4(fd, d, i), inv4));
        if (rw != 0) gi = round4(f, f32x4.add(gi, round4(f, f32x4.mul(w4, wi))));
        st4(f, y, i, f32x4.sub(wi, round4(f, f32x4.mul(l4, gi))));
      }
    }
  }
  for (; i < n; i++) {
    const wi = ld(f, w, i);
    const v = momentum ? wi + ld(fd, d, i) : wi - round(f, rl * grad(d, fd, w, f, i, inv, rw, f));
    final(f, y, i, v, stochastic, seed, salt);
  }
}

/** Address of element `i` of a tensor in format `fmt`. */
// @ts-ignore: decorator
@inline function at(p: usize, fmt: i32, i: i32): usize {
  return p + (<usize>i << (fmt == FP32 ? 2 : 1));
}

/** Elements i..i+3 of sgdMomentum's vector path (`bounded`: the products cannot overflow). */
// @ts-ignore: decorator
@inline function momentum4(
  v: usize, fv: i32, g: usize, fg: i32, w: usize, fw: i32, yv: usize, f: i32, yw: usize, i: i32,
  l4: v128, m4: v128, w4: v128, inv4: v128, scaled: bool, decay: bool, bounded: bool,
): void {
  const wi = ld4(fw, w, i);
  let gi = ld4(fg, g, i);
  if (scaled) gi = round4(f, f32x4.mul(gi, inv4));
  if (decay) gi = round4(f, f32x4.add(gi, round4(f, f32x4.mul(w4, wi))));
  const mv = f32x4.mul(m4, ld4(fv, v, i)), lg = f32x4.mul(l4, gi);
  const d = bounded ? f32x4.sub(round4Bounded(f, mv), round4Bounded(f, lg)) : f32x4.sub(round4(f, mv), round4(f, lg));
  st4(fw, yw, i, f32x4.add(wi, roundStore4(f, yv, i, d)));
}

/**
 * One pass for a momentum update: v' as sgdVelocity writes it to `yv`, then w' = w + v' as sgdApply writes
 * it to `yw` (format `fw2`), with the same bits; it saves reading v' back. Nearest rounding only.
 */
export function sgdMomentum(
  v: usize, fv: i32, g: usize, fg: i32, w: usize, fw: i32, yv: usize, f: i32, yw: usize, fw2: i32, n: i32,
  lr: f64, mom: f64, wd: f64, inv: f64,
): void {
  let i = 0;
  if (fw == fw2 && exactInF32(f, fv, fg, fw, inv) && exactInF32(fw2, f, f, fw2, inv)) {
    const rl = round(f, lr), rm = round(f, mom), rw = round(f, wd);
    const l4 = f32x4.splat(<f32>rl), m4 = f32x4.splat(<f32>rm), w4 = f32x4.splat(<f32>rw), inv4 = f32x4.splat(<f32>inv);
    const scaled = <f32>inv != 1, decay = <f32>rw != 0;
    // With |momentum| and |lr| at most 1 the two products cannot overflow (their rounding needs no check).
    if (Math.abs(rm) <= 1 && Math.abs(rl) <= 1) {
      for (; i + 4 <= n; i += 4) momentum4(v, fv, g, fg, w, fw, yv, f, yw, i, l4, m4, w4, inv4, scaled, decay, true);
    } else {
      for (; i + 4 <= n; i += 4) momentum4(v, fv, g, fg, w, fw, yv, f, yw, i, l4, m4, w4, inv4, scaled, decay, false);
    }
  }
  // The rest (and every other case) element by element, through the two kernels.
  sgdVelocity(at(v, fv, i), fv, at(g, fg, i), fg, at(w, fw, i), fw, at(yv, f, i), f, n - i, lr, mom, wd, inv);
  sgdApply(at(w, fw2, i), at(yv, f, i), f, at(yw, fw2, i), fw2, n - i, lr, wd, true, inv, false, 0, 0);
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
