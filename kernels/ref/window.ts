/**
 * Window ops on NCHW tensors: conv2d (grouped, so depthwise too), max and
 * average pooling, and their gradients. Out-of-bounds (padding) taps are not
 * part of any sum or max. Summation orders are fixed and documented per kernel.
 *
 * @module
 */

import type { Node } from "../../lib/graph/graph.ts";
import { windowOut } from "../../lib/graph/ops.ts";
import { type Kernel, list, num } from "./kernel.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { sizeOf } from "../../lib/graph/graph.ts";

/** Geometry of a window op: input [n, c, h, w], window, strides, top/left pads and output size. */
export interface Geometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pt: number;
  pl: number;
  oh: number;
  ow: number;
}

/** The geometry of window op `node` on input shape `xs` with window `kernel` and output shape `out`. */
export function geometry(
  node: Node,
  xs: readonly number[],
  kernel: readonly number[],
  out: readonly number[],
): Geometry {
  const [sh, sw] = list(node, "stride");
  const [pt, pl] = list(node, "pads");
  return {
    n: xs[0],
    c: xs[1],
    h: xs[2],
    w: xs[3],
    kh: kernel[0],
    kw: kernel[1],
    sh,
    sw,
    pt,
    pl,
    oh: out[2],
    ow: out[3],
  };
}

/**
 * The taps of a window along one axis that land inside the input, as [lo, hi)
 * over kernel offsets, for a window whose first tap is at input index `start`.
 */
function inside(start: number, k: number, size: number): [number, number] {
  return [Math.max(0, -start), Math.min(k, size - start)];
}

/**
 * First kernel offset t in [0, k) with (pos - t) divisible by `stride` and
 * 0 <= (pos - t) / stride < out, i.e. the taps that read input position
 * `pos - pad` in a gradient; returns [first, last] stepping by `stride`.
 */
function hitting(pos: number, k: number, stride: number, out: number): [number, number] {
  let first = Math.max(0, pos - (out - 1) * stride);
  first += (((pos - first) % stride) + stride) % stride;
  return [first, Math.min(k - 1, pos)];
}

/** y[n,o,p,q] = sum over (c, i, j) ascending of x[n, group c, p*s+i-pad, q*s+j-pad] * w[o, c, i, j]. */
const conv2d: Kernel = ({ node, x: [x, w], shapes: [sx, sw], out, acc }) => {
  const o = sw[0], cg = sw[1], groups = num(node, "groups");
  const g = geometry(node, sx, [sw[2], sw[3]], node.shape);
  const og = o / groups, kk = g.kh * g.kw;
  const y = new Float64Array(g.n * o * g.oh * g.ow);
  let t = 0;
  for (let n = 0; n < g.n; n++) {
    for (let oc = 0; oc < o; oc++) {
      const c0 = Math.floor(oc / og) * cg;
      for (let p = 0; p < g.oh; p++) {
        const ih0 = p * g.sh - g.pt;
        const [iLo, iHi] = inside(ih0, g.kh, g.h);
        for (let q = 0; q < g.ow; q++) {
          const iw0 = q * g.sw - g.pl;
          const [jLo, jHi] = inside(iw0, g.kw, g.w);
          let s = 0;
          for (let c = 0; c < cg; c++) {
            const xb = ((n * g.c + c0 + c) * g.h + ih0) * g.w + iw0, wb = (oc * cg + c) * kk;
            for (let i = iLo; i < iHi; i++) {
              const xr = xb + i * g.w, wr = wb + i * g.kw;
              for (let j = jLo; j < jHi; j++) s = acc(s + acc(x[xr + j] * w[wr + j]));
            }
          }
          y[t++] = out(s);
        }
      }
    }
  }
  return y;
};

/** dx[n,c,h,w] = sum over (o in c's group, i, j) ascending of g[n,o,p,q] * w[o,c,i,j], p*s+i-pad = h. */
const conv2dGradInput: Kernel = ({ node, x: [gy, w], shapes: [sg, sw], out, acc }) => {
  const inShape = list(node, "inShape");
  const o = sw[0], cg = sw[1], groups = num(node, "groups");
  const g = geometry(node, inShape, [sw[2], sw[3]], sg);
  const og = o / groups;
  const dx = new Float64Array(g.n * g.c * g.h * g.w);
  let t = 0;
  for (let n = 0; n < g.n; n++) {
    for (let c = 0; c < g.c; c++) {
      const grp = Math.floor(c / cg), cl = c - grp * cg;
      for (let h = 0; h < g.h; h++) {
        const [iFirst, iLast] = hitting(h + g.pt, g.kh, g.sh, g.oh);
        for (let wi = 0; wi < g.w; wi++) {
          const [jFirst, jLast] = hitting(wi + g.pl, g.kw, g.sw, g.ow);
          let s = 0;
          for (let oc = grp * og; oc < (grp + 1) * og; oc++) {
            const gb = (n * o + oc) * g.oh, wb = (oc * cg + cl) * g.kh;
            for (let i = iFirst; i <= iLast; i += g.sh) {
              const gr = (gb + (h + g.pt - i) / g.sh) * g.ow, wr = (wb + i) * g.kw;
              for (let j = jFirst; j <= jLast; j += g.sw) {
                s = acc(s + acc(gy[gr + (wi + g.pl - j) / g.sw] * w[wr + j]));
              }
            }
          }
          dx[t++] = out(s);
        }
      }
    }
  }
  return dx;
};

/** dw[o,c,i,j] = sum over (n, p, q) ascending of g[n,o,p,q] * x[n, group c, p*s+i-pad, q*s+j-pad]. */
const conv2dGradWeight: Kernel = ({ node, x: [x, gy], shapes: [sx, sg], out, acc }) => {
  const [kh, kw] = list(node, "kernel");
  const groups = num(node, "groups");
  const g = geometry(node, sx, [kh, kw], sg);
  const o = sg[1], cg = g.c / groups, og = o / groups;
  const dw = new Float64Array(o * cg * kh * kw);
  // Output rows/columns whose window tap i (or j) lands inside the input.
  const span = (tap: number, pad: number, stride: number, size: number, outN: number): [number, number] => [
    Math.max(0, Math.ceil((pad - tap) / stride)),
    Math.min(outN, Math.floor((size - 1 + pad - tap) / stride) + 1),
  ];
  let t = 0;
  for (let oc = 0; oc < o; oc++) {
    const c0 = Math.floor(oc / og) * cg;
    for (let c = 0; c < cg; c++) {
      for (let i = 0; i < kh; i++) {
        const [pLo, pHi] = span(i, g.pt, g.sh, g.h, g.oh);
        for (let j = 0; j < kw; j++) {
          const [qLo, qHi] = span(j, g.pl, g.sw, g.w, g.ow);
          let s = 0;
          for (let n = 0; n < g.n; n++) {
            const gb = (n * o + oc) * g.oh, xb = (n * g.c + c0 + c) * g.h;
            for (let p = pLo; p < pHi; p++) {
              const gr = (gb + p) * g.ow, xr = (xb + p * g.sh + i - g.pt) * g.w + j - g.pl;
              for (let q = qLo; q < qHi; q++) s = acc(s + acc(gy[gr + q] * x[xr + q * g.sw]));
            }
          }
          dw[t++] = out(s);
        }
      }
    }
  }
  return dw;
};

/**
 * Visits every window of a pooling op in (n, c, p, q) order and, inside it,
 * every in-bounds tap in (i, j) order: `visit(windowIndex, inputIndex, tapNumber)`.
 */
function eachTap(node: Node, xs: readonly number[], visit: (win: number, idx: number, tap: number) => void) {
  const [kh, kw] = list(node, "kernel"), [sh, sw] = list(node, "stride"), [pt, pl] = list(node, "pads");
  const [, , h, w] = xs;
  const [oh, ow] = outSize(node, xs);
  let win = 0;
  for (let nc = 0; nc < xs[0] * xs[1]; nc++) {
    for (let p = 0; p < oh; p++) {
      for (let q = 0; q < ow; q++, win++) {
        let tap = 0;
        for (let i = 0; i < kh; i++) {
          const ih = p * sh + i - pt;
          if (ih < 0 || ih >= h) continue;
          for (let j = 0; j < kw; j++) {
            const iw = q * sw + j - pl;
            if (iw < 0 || iw >= w) continue;
            visit(win, (nc * h + ih) * w + iw, tap++);
          }
        }
      }
    }
  }
}

function outSize(node: Node, xs: readonly number[]): [number, number] {
  const [kh, kw] = list(node, "kernel"),
    [sh, sw] = list(node, "stride"),
    [pt, pl, pb, pr] = list(node, "pads");
  return [windowOut(xs[2], kh, sh, pt, pb), windowOut(xs[3], kw, sw, pl, pr)];
}

/** Index (into x) of the first maximum of every window; NaN in a window wins, so NaN propagates. */
function argmaxes(node: Node, x: Float64Array, xs: readonly number[], windows: number): Int32Array {
  const best = new Int32Array(windows);
  eachTap(node, xs, (win, idx, tap) => {
    const b = x[best[win]];
    if (tap === 0 || (b === b && (x[idx] > b || x[idx] !== x[idx]))) best[win] = idx;
  });
  return best;
}

const maxpool: Kernel = ({ node, x: [x], shapes: [sx], out }) => {
  const y = new Float64Array(sizeOf(node.shape));
  const best = argmaxes(node, x, sx, y.length);
  for (let k = 0; k < y.length; k++) y[k] = out(x[best[k]]);
  return y;
};

/** Routes each window's gradient to its first maximum; overlapping windows add in window order. */
const maxpoolGrad: Kernel = ({ node, x: [x, gy], shapes: [sx], out, acc }) => {
  const best = argmaxes(node, x, sx, gy.length);
  const dx = new Float64Array(x.length);
  for (let k = 0; k < gy.length; k++) dx[best[k]] = acc(dx[best[k]] + gy[k]);
  return Float64Array.from(dx, out);
};

/** y = round_out(sum of in-bounds taps / their count). */
const avgpool: Kernel = ({ node, x: [x], shapes: [sx], out, acc }) => {
  const n = sizeOf(node.shape);
  const sum = new Float64Array(n), count = new Int32Array(n);
  eachTap(node, sx, (win, idx) => {
    sum[win] = acc(sum[win] + x[idx]);
    count[win]++;
  });
  return Float64Array.from(sum, (s, k) => out(s / count[k]));
};

/** dx = sum over windows holding the tap, in window order, of round_acc(g / count). */
const avgpoolGrad: Kernel = ({ node, x: [gy], out, acc }) => {
  const xs = list(node, "inShape");
  const count = new Int32Array(gy.length);
  eachTap(node, xs, (win) => count[win]++);
  const dx = new Float64Array(sizeOf(xs));
  eachTap(node, xs, (win, idx) => {
    dx[idx] = acc(dx[idx] + acc(gy[win] / count[win]));
  });
  return Float64Array.from(dx, out);
};

/** Kernels of this file by op name. */
export const WINDOW = {
  conv2d,
  conv2d_grad_input: conv2dGradInput,
  conv2d_grad_weight: conv2dGradWeight,
  maxpool,
  maxpool_grad: maxpoolGrad,
  avgpool,
  avgpool_grad: avgpoolGrad,
} satisfies Partial<Record<OpName, Kernel>>;
