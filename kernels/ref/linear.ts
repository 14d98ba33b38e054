/**
 * Dense algebra: matmul (plain and batched, with transposes), bias_add and its gradient sum_to.
 *
 * @module
 */

import { flag, type Kernel, num, prod } from "./kernel.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/**
 * C[i, j] = round_out(sum_k round_acc(A[i, k] B[k, j])), k ascending. The loops run i, k, j with one running
 * sum per output of the row, so every sum still adds its products in k order (the same bits as a dot product
 * per output) while the inner loop walks a contiguous row of B.
 */
const matmul: Kernel = ({ node, x: [a, b], shapes: [sa, sb], out, acc }) => {
  const ta = flag(node.attrs, "transA"), tb = flag(node.attrs, "transB");
  const r = sa.length, batch = r === 3 ? sa[0] : 1;
  const m = ta ? sa[r - 1] : sa[r - 2], k = ta ? sa[r - 2] : sa[r - 1];
  const n = tb ? sb[r - 2] : sb[r - 1];
  const y = new Float64Array(batch * m * n);
  const rowB = tb ? new Float64Array(k * n) : null, sums = new Float64Array(n);
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * m * k, bo = bi * k * n;
    // B as [k, n] rows: a view when it is stored that way, a transposed copy once per batch otherwise.
    let bRows: Float64Array, base = 0;
    if (rowB) {
      for (let q = 0; q < k; q++) for (let j = 0; j < n; j++) rowB[q * n + j] = b[bo + j * k + q];
      bRows = rowB;
    } else {
      bRows = b;
      base = bo;
    }
    for (let i = 0; i < m; i++) {
      sums.fill(0);
      for (let q = 0; q < k; q++) {
        const av = ta ? a[ao + q * m + i] : a[ao + i * k + q], off = base + q * n;
        for (let j = 0; j < n; j++) sums[j] = acc(sums[j] + acc(av * bRows[off + j]));
      }
      const yo = (bi * m + i) * n;
      for (let j = 0; j < n; j++) y[yo + j] = out(sums[j]);
    }
  }
  return y;
};

function bcast(node: Parameters<Kernel>[0]["node"], xs: readonly number[], rank: number) {
  const axis = num(node, "axis");
  return { outer: prod(xs, 0, axis), mid: prod(xs, axis, axis + rank), inner: prod(xs, axis + rank) };
}

/** x + b with b broadcast around `axis`. */
const biasAdd: Kernel = ({ node, x: [x, b], shapes: [sx, sb], out }) => {
  const { outer, mid, inner } = bcast(node, sx, sb.length);
  const y = new Float64Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let m = 0; m < mid; m++) {
      const base = (o * mid + m) * inner, bv = b[m];
      for (let i = 0; i < inner; i++) y[base + i] = out(x[base + i] + bv);
    }
  }
  return y;
};

/** Sum over the broadcast axes of bias_add, in (outer, inner) row-major order per element. */
const sumTo: Kernel = ({ node, x: [g], shapes: [sg], out, acc }) => {
  const { outer, mid, inner } = bcast(node, sg, num(node, "rank"));
  const y = new Float64Array(mid);
  for (let m = 0; m < mid; m++) {
    let s = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * mid + m) * inner;
      for (let i = 0; i < inner; i++) s = acc(s + g[base + i]);
    }
    y[m] = out(s);
  }
  return y;
};

/** Kernels of this file by op name. */
export const LINEAR = { matmul, bias_add: biasAdd, sum_to: sumTo } satisfies Partial<Record<OpName, Kernel>>;
