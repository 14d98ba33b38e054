/**
 * Elementwise ops: activations and their gradients, add, scale, cast and dropout. Each output element is
 * computed in f32 from the widened inputs and rounded once to the output format.
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import { f32Lit, type GpuKernel, mapKernel } from "./kernel.ts";
import { num } from "../ref/kernel.ts";

/** A map kernel whose value is a WGSL expression of `a` (= x0(i)) and `b` (= x1(i)). */
function map(expr: string): GpuKernel {
  return mapKernel(({ x }) => `  let a = x0(i);${x.length > 1 ? " let b = x1(i);" : ""}\n  return ${expr};`);
}

/** Kernels of this file by op name. */
export const POINTWISE = {
  add: map("a + b"),
  scale: mapKernel(({ node }) => `  return x0(i) * ${f32Lit(num(node, "factor"))};`),
  cast: map("a"),
} satisfies Partial<Record<OpName, GpuKernel>>;
