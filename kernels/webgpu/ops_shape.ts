/**
 * Data movement: reshape, transpose, concat, slice, channel padding and row selection. Values are copied,
 * never computed, apart from the final rounding to the output format (exact when formats agree). When every
 * operand is fp16 the values move as WGSL f16, never widened.
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import { list, num, prod } from "../ref/kernel.ts";
import type { Arith, GpuKernel, GpuKernelArgs } from "./kernel.ts";
import { arithKernel, fp16Operands } from "./kernel.ts";

/** A data movement kernel: in f16 when every operand is fp16 (a copy), else in f32. */
const move = (body: (a: GpuKernelArgs, t: Arith) => string): GpuKernel =>
  arithKernel((a) => fp16Operands(a), body);

/** Output element i's source index, from the output's shape and the source strides of its axes. */
const transpose: GpuKernel = move(({ node, x: [x] }, t) => {
  const perm = list(node, "perm"), sx = x.shape, r = sx.length;
  const inStride = new Array<number>(r);
  for (let i = r - 1, s = 1; i >= 0; i--) (inStride[i] = s), (s *= sx[i]);
  const lines = ["  var rem = i;", "  var src = 0u;"];
  for (let d = r - 1; d >= 0; d--) {
    const size = sx[perm[d]];
    lines.push(`  src = src + (rem % ${size}u) * ${inStride[perm[d]]}u; rem = rem / ${size}u;`);
  }
  return `${lines.join("\n")}\n  return ${t.x(0, "src")};`;
});

const concat: GpuKernel = move(({ node, x, y }, t) => {
  const ax = num(node, "axis"), ys = y.shape;
  const inner = prod(ys, ax + 1), width = ys[ax];
  const lines = [
    `  let o = i / ${inner * width}u; let a = (i / ${inner}u) % ${width}u; let e = i % ${inner}u;`,
  ];
  let at = 0;
  x.forEach((xk, k) => {
    const size = xk.shape[ax];
    lines.push(
      `  if (a < ${at + size}u) { return ${t.x(k, `(o * ${size}u + a - ${at}u) * ${inner}u + e`)}; }`,
    );
    at += size;
  });
  return `${lines.join("\n")}\n  return ${t.zero};`;
});

const slice: GpuKernel = move(({ node, x: [x] }, t) => {
  const ax = num(node, "axis"), size = num(node, "size"), start = num(node, "start");
  const inner = prod(x.shape, ax + 1), width = x.shape[ax];
  return `  let o = i / ${inner * size}u; let a = (i / ${inner}u) % ${size}u; let e = i % ${inner}u;
  return ${t.x(0, `(o * ${width}u + ${start}u + a) * ${inner}u + e`)};`;
});

const padChannels: GpuKernel = move(({ node, x: [x], y }, t) => {
  const before = num(node, "before"), c = x.shape[1], cy = y.shape[1], inner = prod(x.shape, 2);
  return `  let o = i / ${inner * cy}u; let a = (i / ${inner}u) % ${cy}u; let e = i % ${inner}u;
  if (a < ${before}u || a >= ${before + c}u) { return ${t.zero}; }
  return ${t.x(0, `(o * ${c}u + a - ${before}u) * ${inner}u + e`)};`;
});

/** Kernels of this file by op name. */
export const SHAPE = {
  reshape: move((_, t) => `  return ${t.x(0, "i")};`),
  transpose,
  concat,
  slice,
  pad_channels: padChannels,
  row: move(({ node, y }, t) => `  return ${t.x(0, `${num(node, "index") * y.size}u + i`)};`),
} satisfies Partial<Record<OpName, GpuKernel>>;
