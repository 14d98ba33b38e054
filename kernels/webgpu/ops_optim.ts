/**
 * Optimizer updates and the moving average, as kernels/ref/optim.ts writes them: every intermediate rounded
 * to the state's format (`ry`), hyperparameters rounded to it too (on the host, exactly as ref rounds them),
 * a gated update leaving the state unchanged when `ok` is 0, and stochastic rounding of parameter updates
 * from ref's counter hash. In fp32 every step is one correctly rounded f32 operation, as in ref; in 16-bit
 * formats an f32 product or sum that is not exact is rounded twice (to f32, then to the format).
 *
 * @module
 */

import { type FormatName, rounder } from "../../lib/formats/format.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { num } from "../ref/kernel.ts";
import {
  type Arith,
  F16_ARITH,
  F32_ARITH,
  f32Lit,
  fp16Operands,
  type GpuKernel,
  type GpuKernelArgs,
} from "./kernel.ts";
import { WGSL_HASH } from "./ops_pointwise.ts";

/** A hyperparameter attribute rounded to the output format, as a WGSL literal. */
function hyper(a: GpuKernelArgs, t: Arith, key: string): string {
  return t.lit(rounder(a.y.format)(num(a.node, key)));
}

/**
 * WGSL: the effective gradient r(g * invScale) + r(wd * w) of inputs xg, xw, xinv at element i. The
 * product with invScale (an fp32 input) is computed in f32 and rounded in integers in either spelling.
 */
function gradAt(a: GpuKernelArgs, t: Arith, g: number, w: number, inv: number): string {
  const wd = rounder(a.y.format)(num(a.node, "wd"));
  const v = `${t.fromF32}(x${g}(i) * x${inv}(0u))`;
  return wd === 0 ? v : `${t.round}(${v} + ${t.round}(${t.lit(wd)} * ${t.x(w, "i")}))`;
}

/** WGSL that returns the state (input 0) unchanged when the node is gated and input `ok` is 0. */
function gate(a: GpuKernelArgs, t: Arith, ok: number): string {
  return a.node.attrs.gated ? `  if (x${ok}(0u) == 0.0f) { return ${t.x(0, "i")}; }\n` : "";
}

/**
 * WGSL fn fin(a, b, i): the final rounding of a parameter update a + b, nearest-even (the compiler rounds), or
 * stochastic from hashUniform(seed, salt, i, "srnd"): the magnitude rounds up with probability equal to its
 * distance from the lower neighbour in ulps (u < d compared exactly, as 32-bit integers). For fp32 the exact
 * a + b is f32's sum s plus its rounding error e (TwoSum), so the rounding starts from the exact value, as
 * ref's does; for fp16 and bf16 it starts from s, whose error is below 2^-13 of their ulp.
 */
function finalRounding(a: GpuKernelArgs, t: Arith, seed: number): string {
  if (!a.node.attrs.stochastic) {
    return `fn fin(wa: ${t.type}, wb: ${t.type}, i: u32) -> ${t.type} { return wa + wb; }`;
  }
  const salt = num(a.node, "salt") >>> 0;
  const h = `hash4(u32(max(x${seed}(0u), 0.0f)), ${salt}u, i, ${0x73726e64}u)`;
  const body = a.y.format === "fp32"
    ? fp32Stochastic(h)
    : a.y.format === "bf16"
    ? bf16Stochastic(h)
    : fp16Stochastic(h);
  return `${WGSL_HASH}
fn fin(wa: f32, wb: f32, i: u32) -> f32 {
  let v = opq(wa + wb);
  if (!is_finite(v)) { return v; }
${body}
}`;
}

function fp32Stochastic(h: string): string {
  return `  let bb = opq(v - wa);
  let e = (wa - opq(v - bb)) + (wb - bb);
  if (e == 0.0f || v == 0.0f) { return v; }
  let bits = bitcast<u32>(v);
  let hh = ${h};
  if ((e < 0.0f) != (v < 0.0f)) {
    // The exact value lies toward zero from v: v is the upper neighbour, lo one ulp below it.
    let lo = bitcast<f32>(bits - 1u);
    let big = floor(abs(e) / abs(v - lo) * 4294967296.0f);
    if (hh <= 0xffffffffu - u32(big)) { return v; }
    return lo;
  }
  // The exact value lies away from zero: v is the lower neighbour, hi one ulp above it.
  let hi = bitcast<f32>(bits + 1u);
  if (hh < u32(ceil(abs(e) / abs(hi - v) * 4294967296.0f))) { return hi; }
  return v;`;
}

function bf16Stochastic(h: string): string {
  return `  let b = bitcast<u32>(v);
  var t = b & 0xffff0000u;
  if (${h} < ((b & 0xffffu) << 16u)) { t = t + 0x10000u; }
  return bitcast<f32>(t);`;
}

function fp16Stochastic(h: string): string {
  return `  let a = abs(v);
  if (a == 0.0f) { return v; }
  let e = max(i32((bitcast<u32>(a) >> 23u) & 0xffu) - 127, -14);
  let q = pow2_(e - 10);
  let y = a / q;
  var n = floor(y);
  if (${h} < u32((y - n) * 4294967296.0f)) { n = n + 1.0f; }
  var r = n * q;
  if (r > 65504.0f) { r = inf_(); }
  return select(r, -r, v < 0.0f);`;
}

/**
 * An update's map kernel. It computes in WGSL f16 (each intermediate the policy rounds is one f16
 * operation, kept from fusing with the next by `rh`) when the output and the inputs `half` are fp16 and
 * the rounding is to nearest; else (or without `half`) in f32 with every intermediate rounded by `ry`.
 */
function kernel(
  body: (a: GpuKernelArgs, t: Arith) => string,
  { ok, seed = -1, half }: { ok: number; seed?: number; half?: readonly number[] },
): GpuKernel {
  return (a) => {
    const t = half && fp16Operands(a, half) && !a.node.attrs.stochastic ? F16_ARITH : F32_ARITH;
    return [{
      kind: "map",
      ...(t === F16_ARITH ? { half: true } : {}),
      code: `${seed >= 0 ? finalRounding(a, t, seed) : ""}
fn value(i: u32) -> ${t.type} {
${gate(a, t, ok)}${body(a, t)}
}`,
    }];
  };
}

/** Keras SGD velocity: v' = r(r(mom * v) - r(lr * grad)); inputs (v, g, w, invScale, ok). */
const sgdVelocity = kernel(
  (a, t) =>
    `  return ${t.round}(${hyper(a, t, "momentum")} * ${t.x(0, "i")}) - ${t.round}(${hyper(a, t, "lr")} * ${
      gradAt(a, t, 1, 2, 3)
    });`,
  { ok: 4, half: [0, 1, 2] },
);

/** w' = w + v' with momentum, else w' = w - r(lr * grad); inputs (w, d, invScale, ok, seed). */
const sgdApply = kernel(
  (a, t) =>
    num(a.node, "momentum") > 0
      ? `  return fin(${t.x(0, "i")}, ${t.x(1, "i")}, i);`
      : `  return fin(${t.x(0, "i")}, -${t.round}(${hyper(a, t, "lr")} * ${gradAt(a, t, 1, 0, 2)}), i);`,
  { ok: 3, seed: 4, half: [0, 1] },
);

/** Keras Adam moment: m' = r(m + r(r(grad^p - m) * r(1 - beta))); inputs (m, g, w, invScale, ok). */
const adamMoment = kernel((a, t) => {
  const r = rounder(a.y.format as FormatName), omb = t.lit(r(1 - r(num(a.node, "beta"))));
  const square = num(a.node, "power") === 2, ry = t.round, m = t.x(0, "i");
  return `  let g = ${gradAt(a, t, 1, 2, 3)};
  return ${m} + ${ry}(${ry}(${square ? `${ry}(g * g)` : "g"} - ${m}) * ${omb});`;
}, { ok: 4, half: [0, 1, 2] });

/** Keras Adam step: w' = w - r(r(alpha * m) / r(r(sqrt(v)) + eps)); inputs (w, m, v, alpha, ok, seed). */
// In f32 always: WGSL lets f16 division and square root be off by more than half an ulp.
const adamApply = kernel(
  (a, t) =>
    `  return fin(x0(i), -ry(ry(ry(x3(0u)) * x1(i)) / ry(ry(sqrt(x2(i))) + ${hyper(a, t, "eps")})), i);`,
  { ok: 4, seed: 5 },
);

/** Moving average r - (r - v) (1 - momentum), v = moments[index]; inputs (r, moments). */
const ema: GpuKernel = (a) => [{
  kind: "map",
  code: `fn value(i: u32) -> f32 {
  let r = x0(i);
  return r - (r - x1(${num(a.node, "index") * a.y.size}u + i)) * ${f32Lit(1 - num(a.node, "momentum"))};
}`,
}];

/** Kernels of this file by op name. */
export const OPTIM = {
  sgd_velocity: sgdVelocity,
  sgd_apply: sgdApply,
  adam_moment: adamMoment,
  adam_apply: adamApply,
  ema,
} satisfies Partial<Record<OpName, GpuKernel>>;
