/**
 * The convolutions: conv2d (grouped, so depthwise too) and its input and weight gradients, each output in
 * ref's summation order (kernels/ref/window.ts), every product and partial sum rounded with `racc`, and
 * padding taps skipped as ref skips them (adding a zero product would turn an infinite weight into NaN).
 * With fp32 accumulation, f32 `*` then `+` of values exact in f32 is ref's `fround(s + fround(a * b))`, so
 * the results are ref's bits wherever the GPU's f32 arithmetic is IEEE and unfused (measured on lavapipe:
 * tests/webgpu_window_norm_test.ts). A 16-bit accumulation rounds each f32 product and sum once more; both are exact or
 * correctly rounded in f32 first, and f32 has more than 2p + 2 bits, so that double rounding is innocuous.
 *
 * What a real GPU wants next (not measured yet, so not done): the gradients as implicit GEMMs with both
 * operands tiled in workgroup memory and vectorised 16-bit loads, and conv2d_grad_weight's long reduction
 * over (n, p, q) split across threads, which needs a fixed-order combination that is not ref's sequential
 * order (so it would trade ref's bits for speed, and say so in the guarantee).
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import { geometry } from "../ref/window.ts";
import { list, num } from "../ref/kernel.ts";
import type { GpuKernel, GpuKernelArgs, GpuPass } from "./kernel.ts";
import { GROUP_THREADS, groupPass, relayBody, RELAYS, threadPass, valuePass } from "./group_pass.ts";
import { THREAD_LOOPS } from "./loop_cap.ts";

/** WGSL: `s = racc(s + racc(a * b))`. */
const mac = (a: string, b: string) => `s = racc(s + racc(${a} * ${b}));`;

/** Output channels a conv2d thread computes: the most of 4, 2, 1 that divides a group's channels. */
function channelBlock(perGroup: number): number {
  return perGroup % 4 === 0 ? 4 : perGroup % 2 === 0 ? 2 : 1;
}

/** Weights staged in workgroup memory at once: 8 KiB of f32, half of lavapipe's (and WebGPU's) 16 KiB. */
const STAGED = 2048;

/** conv2d with one thread per output element, for small output planes. */
const conv2dDirect: GpuKernel = ({ node, x: [xs, ws], y }) => {
  const [o, cg] = ws.shape;
  const g = geometry(node, xs.shape, [ws.shape[2], ws.shape[3]], y.shape);
  const tap = mac(`x0(u32(xb + ti * ${g.w} + tj))`, `x1(u32(wb + ti * ${g.kw} + tj))`);
  return [valuePass({
    loops: cg * (g.kh * (g.kw + 1) + 1),
    body: `  let t = i32(i);
  let q = t % ${g.ow}; let p = (t / ${g.ow}) % ${g.oh}; let oc = (t / ${g.ow * g.oh}) % ${o};
  let n = t / ${g.ow * g.oh * o};
  let c0 = (oc / ${o / num(node, "groups")}) * ${cg};
  let ih0 = p * ${g.sh} - ${g.pt}; let iw0 = q * ${g.sw} - ${g.pl};
  let iLo = max(0, -ih0); let iHi = min(${g.kh}, ${g.h} - ih0);
  let jLo = max(0, -iw0); let jHi = min(${g.kw}, ${g.w} - iw0);
  var s = 0.0;
  for (var c = 0; c < ${cg}; c++) {
    let xb = ((n * ${g.c} + c0 + c) * ${g.h} + ih0) * ${g.w} + iw0;
    let wb = (oc * ${cg} + c) * ${g.kh * g.kw};
    for (var ti = iLo; ti < iHi; ti++) {
      for (var tj = jLo; tj < jHi; tj++) { ${tap} }
    }
  }
  return s;`,
  })];
};

/**
 * y[n,o,p,q] = sum over (c, i, j) ascending of x * w. A workgroup computes 64 output pixels of one image for
 * `ob` output channels of one group: each thread one pixel for `ob` channels, so it loads each input tap
 * once for `ob` products, and the weights of `cc` input channels at a time sit in workgroup memory, read by
 * all 64 threads.
 */
function conv2d(a: GpuKernelArgs): GpuPass[] {
  const { node, x: [xs, ws], y } = a;
  const [o, cg] = ws.shape, groups = num(node, "groups");
  const g = geometry(node, xs.shape, [ws.shape[2], ws.shape[3]], y.shape);
  const og = o / groups, kk = g.kh * g.kw, ob = channelBlock(og);
  // Planes smaller than a workgroup would leave most of its threads idle: one thread per output instead.
  if (g.oh * g.ow < GROUP_THREADS / 2) return [...conv2dDirect(a)];
  const cc = Math.max(1, Math.min(cg, Math.floor(STAGED / (ob * kk))));
  const pix = g.oh * g.ow, tiles = Math.ceil(pix / GROUP_THREADS), blocks = o / ob;
  // The ob sums are separate variables, unrolled: an array indexed in a loop compiles slower on lavapipe.
  const each = (f: (b: number) => string) => Array.from({ length: ob }, (_, b) => f(b)).join(" ");
  const taps = each((b) =>
    `s${b} = racc(s${b} + racc(xv * wt[${b * cc * kk} + (c - cBase) * ${kk} + i * ${g.kw} + j]));`
  );
  return [groupPass(g.n * blocks * tiles, {
    // Per chunk of input channels: the staging loop, then the taps of each channel for each of ob outputs.
    loops: Math.ceil(cg / cc) * (Math.ceil((cc * ob * kk) / GROUP_THREADS) + 1) +
      cg * (g.kh * (g.kw + 1) + 1),
    decls: `var<workgroup> wt: array<f32, ${cc * ob * kk}>;`,
    body: `  let tile = grp % ${tiles}; let ob = (grp / ${tiles}) % ${blocks}; let n = grp / ${
      tiles * blocks
    };
  let pix = tile * ${GROUP_THREADS} + lid; let live = pix < ${pix};
  let q = pix % ${g.ow}; let p = pix / ${g.ow};
  let oc0 = ob * ${ob}; let c0 = (oc0 / ${og}) * ${cg};
  let ih0 = p * ${g.sh} - ${g.pt}; let iw0 = q * ${g.sw} - ${g.pl};
  // In-bounds taps only; a thread past the last pixel has none but still joins the barriers.
  let iLo = max(0, -ih0); let iHi = select(iLo, min(${g.kh}, ${g.h} - ih0), live);
  let jLo = max(0, -iw0); let jHi = min(${g.kw}, ${g.w} - iw0);
  ${each((b) => `var s${b} = 0.0;`)}
  for (var cBase = 0; cBase < ${cg}; cBase += ${cc}) {
    workgroupBarrier();
    for (var e = lid; e < ${cc * ob * kk}; e += ${GROUP_THREADS}) {
      let b = e / ${cc * kk}; let r = e % ${cc * kk}; let c = cBase + r / ${kk};
      var v = 0.0;
      if (c < ${cg}) { v = x1(u32(((oc0 + b) * ${cg} + c) * ${kk} + r % ${kk})); }
      wt[e] = v;
    }
    workgroupBarrier();
    for (var c = cBase; c < min(cBase + ${cc}, ${cg}); c++) {
      let xb = ((n * ${g.c} + c0 + c) * ${g.h} + ih0) * ${g.w} + iw0;
      for (var i = iLo; i < iHi; i++) {
        for (var j = jLo; j < jHi; j++) {
          let xv = x0(u32(xb + i * ${g.w} + j));
          ${taps}
        }
      }
    }
  }
  if (live) {
    ${each((b) => `st_y(u32((n * ${o} + oc0 + ${b}) * ${pix} + pix), s${b});`)}
  }`,
  })];
}

/** dx[n,c,h,w] = sum over (o in c's group, i, j) ascending of g[n,o,p,q] * w[o,c,i,j], p*s+i-pad = h. */
const conv2dGradInput: GpuKernel = ({ node, x: [gs, ws] }) => {
  const [o, cg] = ws.shape, og = o / num(node, "groups");
  const g = geometry(node, list(node, "inShape"), [ws.shape[2], ws.shape[3]], gs.shape);
  // Per output channel of the group: the taps that hit, rows by stride, each with its column loop.
  const rows = Math.ceil(g.kh / g.sh), cols = Math.ceil(g.kw / g.sw);
  return [valuePass({
    loops: og * (rows * (cols + 1) + 1),
    body: `  let t = i32(i);
  let wi = t % ${g.w}; let h = (t / ${g.w}) % ${g.h}; let c = (t / ${g.w * g.h}) % ${g.c};
  let n = t / ${g.w * g.h * g.c};
  let grp = c / ${cg}; let cl = c - grp * ${cg};
  // The taps that read this position: the first with (pos - tap) divisible by the stride and inside the
  // output, stepping by the stride, as ref's hitting().
  let ph = h + ${g.pt}; let pw = wi + ${g.pl};
  var iFirst = max(0, ph - ${(g.oh - 1) * g.sh}); iFirst += (ph - iFirst) % ${g.sh};
  var jFirst = max(0, pw - ${(g.ow - 1) * g.sw}); jFirst += (pw - jFirst) % ${g.sw};
  let iLast = min(${g.kh - 1}, ph); let jLast = min(${g.kw - 1}, pw);
  var s = 0.0;
  for (var oc = grp * ${og}; oc < (grp + 1) * ${og}; oc++) {
    let gb = (n * ${o} + oc) * ${g.oh}; let wb = (oc * ${cg} + cl) * ${g.kh};
    for (var ti = iFirst; ti <= iLast; ti += ${g.sh}) {
      let gr = (gb + (ph - ti) / ${g.sh}) * ${g.ow}; let wr = (wb + ti) * ${g.kw};
      for (var tj = jFirst; tj <= jLast; tj += ${g.sw}) {
        ${mac(`x0(u32(gr + (pw - tj) / ${g.sw}))`, "x1(u32(wr + tj))")}
      }
    }
  }
  return s;`,
  })];
};

/**
 * dw[o,c,i,j] = sum over (n, p, q) ascending of g[n,o,p,q] * x[n, group c, p*s+i-pad, q*s+j-pad]. One
 * thread per weight (a custom pass, not a map: a map computes two 16-bit outputs per thread, which doubles
 * a thread's loop iterations). When one thread's share would pass llvmpipe's loop limit, a workgroup per
 * weight relays the sum: threads of different subgroups take turns, each adding the next images to the
 * running sum it finds in workgroup memory, so the order (and the bits) stay ref's while no thread loops too long.
 */
const conv2dGradWeight: GpuKernel = ({ node, x: [xs, gs] }) => {
  const [kh, kw] = list(node, "kernel");
  const g = geometry(node, xs.shape, [kh, kw], gs.shape);
  const o = gs.shape[1], cg = g.c / num(node, "groups"), og = o / num(node, "groups");
  const weights = o * cg * kh * kw, perImage = g.oh * (g.ow + 1) + 1;
  // Images a thread adds in one turn, and the turns.
  const images = Math.max(1, Math.min(g.n, Math.floor((THREAD_LOOPS - GROUP_THREADS) / perImage)));
  const turns = Math.ceil(g.n / images);
  const sum = (w: string, from: string, to: string) => `
  let tj = ${w} % ${kw}; let ti = (${w} / ${kw}) % ${kh}; let c = (${w} / ${kw * kh}) % ${cg};
  let oc = ${w} / ${kw * kh * cg};
  let c0 = (oc / ${og}) * ${cg};
  // Output rows (columns) whose tap lands inside the input: 0 <= p * stride + tap - pad < size.
  let pa = ${g.pt} - ti; let pLo = select(0, (pa + ${g.sh - 1}) / ${g.sh}, pa > 0);
  let pb = ${g.h - 1 + g.pt} - ti; let pHi = select(0, min(${g.oh}, pb / ${g.sh} + 1), pb >= 0);
  let qa = ${g.pl} - tj; let qLo = select(0, (qa + ${g.sw - 1}) / ${g.sw}, qa > 0);
  let qb = ${g.w - 1 + g.pl} - tj; let qHi = select(0, min(${g.ow}, qb / ${g.sw} + 1), qb >= 0);
  for (var n = ${from}; n < ${to}; n++) {
    let gb = (n * ${o} + oc) * ${g.oh}; let xb = (n * ${g.c} + c0 + c) * ${g.h};
    for (var p = pLo; p < pHi; p++) {
      let gr = (gb + p) * ${g.ow}; let xr = (xb + p * ${g.sh} + ti - ${g.pt}) * ${g.w} + tj - ${g.pl};
      for (var q = qLo; q < qHi; q++) { ${mac("x1(u32(gr + q))", `x0(u32(xr + q * ${g.sw}))`)} }
    }
  }`;
  if (turns === 1) {
    return [threadPass(weights, {
      loops: g.n * perImage,
      decls: `fn dw(t: i32) -> f32 {\n  var s = 0.0;${sum("t", "0", `${g.n}`)}\n  return s;\n}`,
      body: "  st_y(u32(t), dw(t));",
    })];
  }
  return [groupPass(weights, {
    loops: turns + Math.ceil(turns / RELAYS) * images * perImage + 1,
    decls: `var<workgroup> part: f32;
fn dw(t: i32, turn: i32, s0: f32) -> f32 {
  var s = s0;${sum("t", `turn * ${images}`, `min(${g.n}, (turn + 1) * ${images})`)}
  return s;
}`,
    body: relayBody(turns, "dw"),
  })];
};

/** Kernels of this file by op name. */
export const WINDOW = {
  conv2d,
  conv2d_grad_input: conv2dGradInput,
  conv2d_grad_weight: conv2dGradWeight,
} satisfies Partial<Record<OpName, GpuKernel>>;
