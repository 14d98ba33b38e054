/**
 * Max and average pooling and their gradients, as kernels/ref/window.ts defines them: padding taps are
 * never part of a max, a sum or a count; a max pool's gradient goes to the first maximum of each window
 * (NaN wins, so it propagates); overlapping windows add into a gradient in window order. The gradients are
 * gathers: each input element visits the windows that hold it, in ref's window order, so no two threads
 * write one element and no atomics are needed. A max pool gradient recomputes each window's first maximum
 * (kh * kw loads) instead of keeping an index tensor: pooling windows are small.
 *
 * @module
 */

import type { Node } from "../../lib/graph/graph.ts";
import { type OpName, windowOut } from "../../lib/graph/ops.ts";
import { type Geometry, geometry } from "../ref/window.ts";
import { list } from "../ref/kernel.ts";
import type { GpuKernel } from "./kernel.ts";
import { valuePass } from "./group_pass.ts";
import { finishers } from "./wide.ts";

/** The geometry of pooling node `node` over input shape `xs`. */
function pool(node: Node, xs: readonly number[]): Geometry {
  const [kh, kw] = list(node, "kernel"),
    [sh, sw] = list(node, "stride"),
    [pt, pl, pb, pr] = list(node, "pads");
  const out = [xs[0], xs[1], windowOut(xs[2], kh, sh, pt, pb), windowOut(xs[3], kw, sw, pl, pr)];
  return geometry(node, xs, [kh, kw], out);
}

/** WGSL `first_max(nc, p, q)`: the index in x0 of the first maximum of a window, over in-bounds taps. */
function firstMax(g: Geometry): string {
  return `
fn first_max(nc: i32, p: i32, q: i32) -> i32 {
  var best = -1;
  var bv = 0.0;
  for (var ti = 0; ti < ${g.kh}; ti++) {
    let ih = p * ${g.sh} + ti - ${g.pt};
    if (ih < 0 || ih >= ${g.h}) { continue; }
    for (var tj = 0; tj < ${g.kw}; tj++) {
      let iw = q * ${g.sw} + tj - ${g.pl};
      if (iw < 0 || iw >= ${g.w}) { continue; }
      let k = (nc * ${g.h} + ih) * ${g.w} + iw;
      let v = x0(u32(k));
      if (best < 0 || (!is_nan(bv) && (v > bv || is_nan(v)))) { best = k; bv = v; }
    }
  }
  return best;
}`;
}

/** WGSL: the windows holding input element `t` (at ih, iw of plane nc), as p in [pLo, pHi], q in [qLo, qHi]. */
function windowsOf(g: Geometry): string {
  return `  let t = i32(i);
  let iw = t % ${g.w}; let ih = (t / ${g.w}) % ${g.h}; let nc = t / ${g.w * g.h};
  let pa = ih + ${g.pt - g.kh + 1}; let pLo = select(0, (pa + ${g.sh - 1}) / ${g.sh}, pa > 0);
  let pHi = min(${g.oh - 1}, (ih + ${g.pt}) / ${g.sh});
  let qa = iw + ${g.pl - g.kw + 1}; let qLo = select(0, (qa + ${g.sw - 1}) / ${g.sw}, qa > 0);
  let qHi = min(${g.ow - 1}, (iw + ${g.pl}) / ${g.sw});`;
}

/** WGSL: the output position (nc, p, q) of output element `i`. */
function outputAt(g: Geometry): string {
  return `  let t = i32(i);
  let q = t % ${g.ow}; let p = (t / ${g.ow}) % ${g.oh}; let nc = t / ${g.ow * g.oh};`;
}

/** y = the first maximum of each window. */
const maxpool: GpuKernel = ({ node, x: [xs] }) => {
  const g = pool(node, xs.shape);
  return [valuePass({ decls: firstMax(g), body: `${outputAt(g)}\n  return x0(u32(first_max(nc, p, q)));` })];
};

/** dx = the sum, in window order, of the gradients of the windows whose first maximum is this element. */
const maxpoolGrad: GpuKernel = ({ node, x: [xs] }) => {
  const g = pool(node, xs.shape);
  return [valuePass({
    decls: firstMax(g),
    body: `${windowsOf(g)}
  var s = 0.0;
  for (var p = pLo; p <= pHi; p++) {
    for (var q = qLo; q <= qHi; q++) {
      if (first_max(nc, p, q) == t) { s = racc(s + x1(u32((nc * ${g.oh} + p) * ${g.ow} + q))); }
    }
  }
  return s;`,
  })];
};

/** y = round_out(sum of the in-bounds taps / their count), the division in float-float. */
const avgpool: GpuKernel = ({ node, x: [xs], y, acc }) => {
  const g = pool(node, xs.shape);
  return [valuePass({
    decls: finishers(acc, y.format),
    body: `${outputAt(g)}
  let ih0 = p * ${g.sh} - ${g.pt}; let iw0 = q * ${g.sw} - ${g.pl};
  let iLo = max(0, -ih0); let iHi = min(${g.kh}, ${g.h} - ih0);
  let jLo = max(0, -iw0); let jHi = min(${g.kw}, ${g.w} - iw0);
  var s = 0.0;
  for (var ti = iLo; ti < iHi; ti++) {
    let xr = (nc * ${g.h} + ih0 + ti) * ${g.w} + iw0;
    for (var tj = jLo; tj < jHi; tj++) { s = racc(s + x0(u32(xr + tj))); }
  }
  return out_ff(ff_div(vec2f(s, 0.0), f32((iHi - iLo) * (jHi - jLo))));`,
  })];
};

/** dx = the sum, in window order, of racc(g / count) over the windows holding this element. */
const avgpoolGrad: GpuKernel = ({ node, y, acc }) => {
  const g = pool(node, list(node, "inShape"));
  return [valuePass({
    decls: finishers(acc, y.format),
    body: `${windowsOf(g)}
  var s = 0.0;
  for (var p = pLo; p <= pHi; p++) {
    let ih0 = p * ${g.sh} - ${g.pt};
    let rows = min(${g.kh}, ${g.h} - ih0) - max(0, -ih0);
    for (var q = qLo; q <= qHi; q++) {
      let iw0 = q * ${g.sw} - ${g.pl};
      let count = rows * (min(${g.kw}, ${g.w} - iw0) - max(0, -iw0));
      let v = x0(u32((nc * ${g.oh} + p) * ${g.ow} + q));
      s = racc(s + acc_ff(ff_div(vec2f(v, 0.0), f32(count))));
    }
  }
  return s;`,
  })];
};

/** Kernels of this file by op name. */
export const POOL = {
  maxpool,
  maxpool_grad: maxpoolGrad,
  avgpool,
  avgpool_grad: avgpoolGrad,
} satisfies Partial<Record<OpName, GpuKernel>>;
