/**
 * Elementwise ops: activations and their gradients, add, scale, cast and dropout. Each output element is
 * computed in f32 from the widened inputs and rounded once to the output format, except the ops that are
 * one IEEE operation or a selection (relu, relu_grad, add, scale by an fp16 number, cast), which compute in
 * WGSL f16 when their operands are fp16 (docs/engines.md has the table).
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import { rounder } from "../../lib/formats/format.ts";
import { type Arith, arithKernel, f32Lit, fp16Operands, type GpuKernel, mapKernel } from "./kernel.ts";
import { num } from "../ref/kernel.ts";

/** A map kernel whose value is a WGSL expression of `a` (= x0(i)) and `b` (= x1(i)), computed in f32. */
function map(expr: string): GpuKernel {
  return mapKernel(({ x }) => `  let a = x0(i);${x.length > 1 ? " let b = x1(i);" : ""}\n  return ${expr};`);
}

/**
 * As {@linkcode map}, for an op that is one IEEE operation (or a selection) of its inputs: computed in WGSL
 * f16 when the output and inputs are fp16, whose rounding to nearest gives the bits of rounding the exact
 * result once.
 */
function map16(expr: (t: Arith) => string): GpuKernel {
  return arithKernel(
    (a) => fp16Operands(a),
    ({ x }, t) =>
      `  let a = ${t.x(0, "i")};${x.length > 1 ? ` let b = ${t.x(1, "i")};` : ""}\n  return ${expr(t)};`,
  );
}

/** lib/random.ts's mix32 and hashUniform's 32-bit hash (WGSL): the same bits as ref's counter hash. */
export const WGSL_HASH = `
fn mix32(x: u32) -> u32 {
  var z = x + 0x9e3779b9u;
  z = (z ^ (z >> 16u)) * 0x85ebca6bu;
  z = (z ^ (z >> 13u)) * 0xc2b2ae35u;
  return z ^ (z >> 16u);
}
fn hash4(a: u32, b: u32, c: u32, d: u32) -> u32 { return mix32(mix32(mix32(mix32(a) ^ b) ^ c) ^ d); }
`;

/** A seed value (a non-negative integer held in a float tensor) as the u32 ref's hash sees. */
export const SEED_U32 = "u32(max(x1(0), 0.0f))";

/**
 * Dropout keeps element i when hashUniform(seed, salt, i, "drop") >= rate, that is when the 32-bit hash h
 * satisfies h >= ceil(rate 2^32) (exact in integers), and scales kept values by 1 / (1 - rate).
 */
const dropout: GpuKernel = (a) => {
  const rate = num(a.node, "rate"), salt = num(a.node, "salt") >>> 0;
  const threshold = Math.ceil(rate * 2 ** 32);
  const keeps = threshold > 0xffffffff
    ? "false"
    : `hash4(${SEED_U32}, ${salt}u, i, ${0x64726f70}u) >= ${threshold}u`;
  return [{
    kind: "map",
    code: `${WGSL_HASH}
fn value(i: u32) -> f32 {
  if (${keeps}) { return x0(i) / ${f32Lit(1 - rate)}; }
  return 0.0f;
}`,
  }];
};

/** Kernels of this file by op name. */
export const POINTWISE = {
  // relu keeps NaN (so divergence stays visible) and maps -0 to +0.
  relu: map16((t) => `select(${t.zero}, a, a > ${t.zero} || ${t.isNan}(a))`),
  relu_grad: map16((t) => `select(${t.zero}, b, a > ${t.zero})`),
  tanh: map("tanh_(a)"),
  tanh_grad: map("b * (1.0f - a * a)"),
  gelu: map("gelu_(a)"),
  gelu_grad: map("b * gelu_grad_(a)"),
  add: map16(() => "a + b"),
  // In f16 only when the factor is an fp16 number (a loss scale's power of two): x * factor is then one
  // operation on fp16 values.
  scale: arithKernel(
    (a) => fp16Operands(a) && rounder("fp16")(num(a.node, "factor")) === num(a.node, "factor"),
    ({ node }, t) => `  return ${t.x(0, "i")} * ${t.lit(num(node, "factor"))};`,
  ),
  // fp16 to fp16 is a copy; to or from another format it rounds (in integers: prelude.ts's f2h).
  cast: map16(() => "a"),
  dropout,
} satisfies Partial<Record<OpName, GpuKernel>>;
