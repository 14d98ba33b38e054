/**
 * Data movement: reshape, transpose, concat, slice, channel padding and row
 * selection. Values are copied, never computed, apart from the final rounding
 * to the output format (a no-op when formats agree).
 *
 * @module
 */

import { type Kernel, list, num, prod } from "./kernel.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/** Copies blocks along `axis`: for each outer index, `size * inner` elements from `src` at `from` to `dst` at `to`. */
function copyAxis(
  src: Float64Array,
  srcAxis: number,
  dst: Float64Array,
  dstAxis: number,
  outer: number,
  inner: number,
  from: number,
  to: number,
  size: number,
  out: (v: number) => number,
) {
  for (let o = 0; o < outer; o++) {
    const s = (o * srcAxis + from) * inner, d = (o * dstAxis + to) * inner;
    for (let i = 0; i < size * inner; i++) dst[d + i] = out(src[s + i]);
  }
}

const transpose: Kernel = ({ node, x: [x], shapes: [sx], out }) => {
  const perm = list(node, "perm"), r = sx.length;
  const inStride = new Array<number>(r);
  for (let i = r - 1, s = 1; i >= 0; i--) (inStride[i] = s), (s *= sx[i]);
  const os = perm.map((p) => sx[p]), st = perm.map((p) => inStride[p]);
  const y = new Float64Array(x.length), idx = new Array<number>(r).fill(0);
  for (let k = 0; k < y.length; k++) {
    let src = 0;
    for (let i = 0; i < r; i++) src += idx[i] * st[i];
    y[k] = out(x[src]);
    for (let i = r - 1; i >= 0; i--) {
      if (++idx[i] < os[i]) break;
      idx[i] = 0;
    }
  }
  return y;
};

const concat: Kernel = ({ node, x, shapes, out }) => {
  const ax = num(node, "axis"), ys = node.shape;
  const y = new Float64Array(prod(ys));
  const outer = prod(ys, 0, ax), inner = prod(ys, ax + 1);
  let at = 0;
  x.forEach((a, k) => {
    copyAxis(a, shapes[k][ax], y, ys[ax], outer, inner, 0, at, shapes[k][ax], out);
    at += shapes[k][ax];
  });
  return y;
};

const slice: Kernel = ({ node, x: [x], shapes: [sx], out }) => {
  const ax = num(node, "axis"), size = num(node, "size");
  const y = new Float64Array(prod(node.shape));
  copyAxis(x, sx[ax], y, size, prod(sx, 0, ax), prod(sx, ax + 1), num(node, "start"), 0, size, out);
  return y;
};

const padChannels: Kernel = ({ node, x: [x], shapes: [sx], out }) => {
  const y = new Float64Array(prod(node.shape));
  copyAxis(x, sx[1], y, node.shape[1], sx[0], prod(sx, 2), 0, num(node, "before"), sx[1], out);
  return y;
};

/** Kernels of this file by op name. */
export const SHAPE = {
  reshape: ({ x: [x], out }) => Float64Array.from(x, out),
  transpose,
  concat,
  slice,
  pad_channels: padChannels,
  row: ({ node, x: [x], out }) => {
    const n = prod(node.shape), at = num(node, "index") * n;
    return Float64Array.from(x.subarray(at, at + n), out);
  },
} satisfies Partial<Record<OpName, Kernel>>;
