/**
 * Dense algebra: matmul (plain and batched, with transposes), bias_add and its gradient sum_to.
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import { flag, num, prod } from "../ref/kernel.ts";
import type { GpuKernel, GpuKernelArgs } from "./kernel.ts";
import { arithKernel, fp16Operands } from "./kernel.ts";
import { GROUP_THREADS, groupPass, relayBody, RELAYS, threadPass } from "./group_pass.ts";
import { THREAD_LOOPS } from "./loop_cap.ts";

/** Side of matmul's square output tile; also the depth of the k slices held in workgroup memory. */
const TILE = 16;

/**
 * C[i, j] = round_out(sum_k round_acc(A[i, k] B[k, j])), k ascending, as ref adds. One workgroup computes a
 * TILE x TILE block of C, one thread per element; A and B pass through workgroup memory in slices of TILE
 * values of k, and each thread adds its slice's products in k order, so the sum is ref's sequential sum.
 */
export const matmulTiled: GpuKernel = ({ node, x: [a, b] }) => {
  const ta = flag(node.attrs, "transA"), tb = flag(node.attrs, "transB");
  const sa = a.shape, sb = b.shape, r = sa.length, batch = r === 3 ? sa[0] : 1;
  const m = ta ? sa[r - 1] : sa[r - 2], k = ta ? sa[r - 2] : sa[r - 1];
  const n = tb ? sb[r - 2] : sb[r - 1];
  // Index of A[i, q] and B[q, j] within one batch.
  const aAt = ta ? `q * ${m}u + i` : `i * ${k}u + q`;
  const bAt = tb ? `j * ${k}u + q` : `q * ${n}u + j`;
  const code = `
var<workgroup> ta: array<array<f32, ${TILE}>, ${TILE}>;
var<workgroup> tb: array<array<f32, ${TILE}>, ${TILE}>;
fn load_a(bi: u32, i: u32, q: u32) -> f32 {
  if (i >= ${m}u || q >= ${k}u) { return 0.0f; }
  return x0(bi * ${m * k}u + ${aAt});
}
fn load_b(bi: u32, q: u32, j: u32) -> f32 {
  if (q >= ${k}u || j >= ${n}u) { return 0.0f; }
  return x1(bi * ${k * n}u + ${bAt});
}
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
  let bi = wg.z;
  let i = wg.y * ${TILE}u + l.y;
  let j = wg.x * ${TILE}u + l.x;
  var s = 0.0f;
  for (var k0 = 0u; k0 < ${k}u; k0 = k0 + ${TILE}u) {
    ta[l.y][l.x] = load_a(bi, i, k0 + l.x);
    tb[l.y][l.x] = load_b(bi, k0 + l.y, j);
    workgroupBarrier();
    let kk = min(${TILE}u, ${k}u - k0);
    for (var q = 0u; q < kk; q = q + 1u) { s = racc(s + racc(ta[l.y][q] * tb[q][l.x])); }
    workgroupBarrier();
  }
  if (i < ${m}u && j < ${n}u) { st_y((bi * ${m}u + i) * ${n}u + j, s); }
}`;
  return [{
    kind: "custom",
    code,
    workgroups: [Math.ceil(n / TILE), Math.ceil(m / TILE), batch],
    // The k slices, then each slice's products.
    loops: Math.ceil(k / TILE) * (TILE + 1),
  }];
};

/**
 * matmul with one thread per output element and no workgroup memory: the same sums in the same order as
 * {@linkcode matmulTiled}, so the same bits. On lavapipe (a CPU), whose barriers are costly, it is 3 times
 * faster per MLP step; the engine uses it where the adapter is a CPU.
 */
export const matmulMap: GpuKernel = (a0: GpuKernelArgs) => [{
  kind: "map" as const,
  code: `fn value(e: u32) -> f32 {\n${mmBody(a0)}\n}`,
  loops: a0.x[0].shape.at(flag(a0.node.attrs, "transA") ? -2 : -1)!,
}];
function mmBody({ node, x: [a, b] }: GpuKernelArgs): string {
  const ta = flag(node.attrs, "transA"), tb = flag(node.attrs, "transB");
  const sa = a.shape, sb = b.shape, r = sa.length;
  const m = ta ? sa[r - 1] : sa[r - 2], k = ta ? sa[r - 2] : sa[r - 1];
  const n = tb ? sb[r - 2] : sb[r - 1];
  const aAt = ta ? `q * ${m}u + i` : `i * ${k}u + q`;
  const bAt = tb ? `j * ${k}u + q` : `q * ${n}u + j`;
  return `  let bi = e / ${m * n}u; let i = (e / ${n}u) % ${m}u; let j = e % ${n}u;
  let ao = bi * ${m * k}u; let bo = bi * ${k * n}u;
  var s = 0.0f;
  for (var q = 0u; q < ${k}u; q = q + 1u) { s = racc(s + racc(x0(ao + ${aAt}) * x1(bo + ${bAt}))); }
  return s;`;
}

/** outer, mid and inner sizes of bias_add's broadcast of a rank-`rank` bias at `axis` of `shape`. */
function bcast({ node }: GpuKernelArgs, shape: readonly number[], rank: number) {
  const axis = num(node, "axis");
  return {
    outer: prod(shape, 0, axis),
    mid: prod(shape, axis, axis + rank),
    inner: prod(shape, axis + rank),
  };
}

/** x + b with b broadcast around `axis`: one addition, in f16 when the operands are fp16. */
const biasAdd: GpuKernel = arithKernel((a) => fp16Operands(a), (a, t) => {
  const { mid, inner } = bcast(a, a.x[0].shape, a.x[1].shape.length);
  return `  return ${t.x(0, "i")} + ${t.x(1, `(i / ${inner}u) % ${mid}u`)};`;
});

/**
 * Sum over the broadcast axes of bias_add, in (outer, inner) row-major order per element. One thread per
 * element (a custom pass: a map would compute two 16-bit outputs in one thread and double its loops, which
 * llvmpipe cuts at 65535); past one thread's share (a CNN's bias gradient at batch 128 adds 100,352 terms
 * per channel) a workgroup per element relays the sum in ref's order, as conv2d's weight gradient does.
 */
const sumTo: GpuKernel = (a) => {
  const { outer, mid, inner } = bcast(a, a.x[0].shape, num(a.node, "rank"));
  // Rows of `inner` terms a thread adds in one turn, and the turns.
  const rows = Math.max(1, Math.min(outer, Math.floor((THREAD_LOOPS - GROUP_THREADS) / (inner + 1))));
  const turns = Math.ceil(outer / rows);
  const rowsSum = (m: string, from: string, to: string) => `
  for (var o = ${from}; o < ${to}; o++) {
    let base = (o * ${mid} + ${m}) * ${inner};
    for (var k = 0; k < ${inner}; k++) { s = racc(s + x0(u32(base + k))); }
  }`;
  if (turns === 1) {
    return [threadPass(mid, {
      loops: outer * (inner + 1) + 1,
      body: `  var s = 0.0f;${rowsSum("t", "0", `${outer}`)}
  st_y(u32(t), s);`,
    })];
  }
  return [groupPass(mid, {
    loops: turns + Math.ceil(turns / RELAYS) * rows * (inner + 1) + 1,
    decls: `var<workgroup> part: f32;
fn rows_sum(m: i32, turn: i32, s0: f32) -> f32 {
  var s = s0;${rowsSum("m", `turn * ${rows}`, `min(${outer}, (turn + 1) * ${rows})`)}
  return s;
}`,
    body: relayBody(turns, "rows_sum"),
  })];
};

/** matmul: tiled on a GPU, one thread per output on a CPU adapter (the same bits either way). */
const matmul: GpuKernel = (a) => a.cpu ? matmulMap(a) : matmulTiled(a);

/** Kernels of this file by op name. */
export const LINEAR = { matmul, bias_add: biasAdd, sum_to: sumTo } satisfies Partial<
  Record<OpName, GpuKernel>
>;
