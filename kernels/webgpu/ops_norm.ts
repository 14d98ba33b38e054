/**
 * Batch norm (training and inference), its moments, and layer norm, with gradients, as kernels/ref/norm.ts
 * defines them. A group is a channel (batch norm: x[n, c, s] for n, then s) or a row (layer norm: the last
 * axis). The statistics are ref's two sequential passes in the accumulate format, run by one thread per
 * group in ref's order; the elementwise parts, which ref computes in float64 and rounds once, are computed
 * in float-float (wide.ts) and rounded once, so they too can give ref's bits.
 *
 * What a real GPU wants next (not measured yet, so not done): the statistics of a channel reduced by many
 * threads. Ref's order is sequential, so a parallel reduction in a fixed tree order would repeat its bits but
 * not give ref's; the workgroup per group here spreads only the elementwise output over its threads.
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import { num, prod } from "../ref/kernel.ts";
import type { GpuKernel, GpuKernelArgs } from "./kernel.ts";
import { GROUP_THREADS, groupPass, threadPass, valuePass } from "./group_pass.ts";
import { f32Lit } from "./kernel.ts";
import { ffLit, finishers } from "./wide.ts";

type Kind = "channels" | "rows";

/** The groups of input shape `shape`: their count and size, and WGSL `gidx(c, i)`, element i of group c. */
function groupsOf(kind: Kind, shape: readonly number[]) {
  if (kind === "channels") {
    const c = shape[1], s = prod(shape, 2);
    return {
      count: c,
      size: shape[0] * s,
      gidx: `fn gidx(c: i32, i: i32) -> u32 { return u32((i / ${s} * ${c} + c) * ${s} + i % ${s}); }`,
    };
  }
  const d = shape.at(-1)!;
  return {
    count: prod(shape) / d,
    size: d,
    gidx: `fn gidx(c: i32, i: i32) -> u32 { return u32(c * ${d} + i); }`,
  };
}

/**
 * WGSL: the float-float helpers, `gidx`, `rstd_of(v)` = racc(1 / sqrt(v + eps)) with eps in float64 as ref
 * adds it, and `stats(c)` = vec3f(mean, biased variance, rstd) of group c over x0, ref's two passes.
 */
function statsDecls({ node, y, acc }: GpuKernelArgs, kind: Kind, shape: readonly number[]): string {
  const g = groupsOf(kind, shape), n = f32Lit(g.size);
  const eps = node.attrs.eps === undefined ? 0 : num(node, "eps");
  return `${finishers(acc, y.format)}
${g.gidx}
fn rstd_of(v: f32) -> f32 { return acc_ff(ff_rsqrt(ff_add(vec2f(v, 0.0), ${ffLit(eps)}))); }
fn stats(c: i32) -> vec3f {
  var s = 0.0;
  for (var i = 0; i < ${g.size}; i++) { s = racc(s + x0(gidx(c, i))); }
  let m = acc_ff(ff_div(vec2f(s, 0.0), ${n}));
  var q = 0.0;
  for (var i = 0; i < ${g.size}; i++) {
    let d = acc_ff(ff_sum(x0(gidx(c, i)), -m));
    q = racc(q + acc_ff(ff_prod(d, d)));
  }
  let v = acc_ff(ff_div(vec2f(q, 0.0), ${n}));
  return vec3f(m, v, rstd_of(v));
}
// (x - mean) * rstd in float-float: ref's x hat in float64.
fn xhat(x: f32, st: vec3f) -> vec2f { return ff_mul(ff_sum(x, -st.x), vec2f(st.z, 0.0)); }`;
}

/** y = (x - mean) * rstd * gamma + beta: a workgroup per group, its thread 0 computing the statistics. */
function forward(kind: Kind): GpuKernel {
  return (a) => {
    const g = groupsOf(kind, a.x[0].shape), p = kind === "channels" ? "c" : "i";
    return [groupPass(g.count, {
      loops: 2 * g.size + Math.ceil(g.size / GROUP_THREADS),
      decls: `${statsDecls(a, kind, a.x[0].shape)}\nvar<workgroup> wst: vec3f;`,
      body: `  let c = grp;
  if (lid == 0) { wst = stats(c); }
  workgroupBarrier();
  for (var i = lid; i < ${g.size}; i += ${GROUP_THREADS}) {
    let k = gidx(c, i);
    let y = ff_add(ff_mul(xhat(x0(k), wst), vec2f(x1(u32(${p})), 0.0)), vec2f(x2(u32(${p})), 0.0));
    st_y(k, out_ff(y));
  }`,
    })];
  };
}

/** dx = rstd / M * (M gh - sum gh - xhat sum(gh xhat)), gh = g * gamma (exact in float-float). */
function gradX(kind: Kind): GpuKernel {
  return (a) => {
    const g = groupsOf(kind, a.x[0].shape), p = kind === "channels" ? "c" : "i", m = f32Lit(g.size);
    const gh = `ff_prod(x2(k), x1(u32(${p})))`;
    return [groupPass(g.count, {
      loops: 3 * g.size + Math.ceil(g.size / GROUP_THREADS),
      decls: `${statsDecls(a, kind, a.x[0].shape)}\nvar<workgroup> wst: vec3f;\nvar<workgroup> sums: vec2f;`,
      body: `  let c = grp;
  if (lid == 0) {
    let t = stats(c);
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = 0; i < ${g.size}; i++) {
      let k = gidx(c, i);
      let gh = ${gh};
      s1 = racc(s1 + acc_ff(gh));
      s2 = racc(s2 + acc_ff(ff_mul(gh, xhat(x0(k), t))));
    }
    wst = t;
    sums = vec2f(s1, s2);
  }
  workgroupBarrier();
  let scale = ff_div(vec2f(wst.z, 0.0), ${m});
  for (var i = lid; i < ${g.size}; i += ${GROUP_THREADS}) {
    let k = gidx(c, i);
    let gh = ${gh};
    let d = ff_add(ff_add(ff_mul(gh, vec2f(${m}, 0.0)), vec2f(-sums.x, 0.0)), -ff_mul(xhat(x0(k), wst), vec2f(sums.y, 0.0)));
    st_y(k, out_ff(ff_mul(scale, d)));
  }`,
    })];
  };
}

/** WGSL: dg += racc(xhat * g), db += g for element k of a group with statistics `st`. */
const affineStep = `
    let gy = x1(k);
    dg = racc(dg + acc_ff(ff_mul(xhat(x0(k), st), vec2f(gy, 0.0))));
    db = racc(db + gy);`;

/** Batch norm's [sum(g xhat), sum(g)] per channel: a thread per channel. */
const batchnormGradAffine: GpuKernel = (a) => {
  const g = groupsOf("channels", a.x[0].shape);
  return [threadPass(g.count, {
    loops: 3 * g.size,
    decls: statsDecls(a, "channels", a.x[0].shape),
    body: `  let st = stats(t);
  var dg = 0.0;
  var db = 0.0;
  for (var i = 0; i < ${g.size}; i++) {
    let k = gidx(t, i);${affineStep}
  }
  st_y(u32(t), dg);
  st_y(u32(t + ${g.count}), db);`,
  })];
};

/** Rows whose statistics a layer norm affine gradient holds in workgroup memory at once (8 KiB: a vec3f takes 16 bytes). */
const ROW_CHUNK = 512;

/**
 * Layer norm's [sum(g xhat), sum(g)] per feature, summed over rows in order: a thread per feature, 64 per
 * workgroup; the workgroup's threads first compute the statistics of a chunk of rows (a row each), then each
 * thread adds that chunk's rows for its feature.
 */
const layernormGradAffine: GpuKernel = (a) => {
  const g = groupsOf("rows", a.x[0].shape), d = g.size, rows = g.count, ch = Math.min(ROW_CHUNK, rows);
  return [groupPass(Math.ceil(d / GROUP_THREADS), {
    // Per chunk: the statistics of its rows a thread owns (two passes over d each), then the chunk's rows.
    loops: Math.ceil(rows / ch) * (Math.ceil(ch / GROUP_THREADS) * (2 * d + 1) + ch + 1),
    decls: `${statsDecls(a, "rows", a.x[0].shape)}\nvar<workgroup> rst: array<vec3f, ${ch}>;`,
    body: `  let f = grp * ${GROUP_THREADS} + lid;
  var dg = 0.0;
  var db = 0.0;
  for (var r0 = 0; r0 < ${rows}; r0 += ${ch}) {
    for (var r = lid; r < ${ch} && r0 + r < ${rows}; r += ${GROUP_THREADS}) { rst[r] = stats(r0 + r); }
    workgroupBarrier();
    if (f < ${d}) {
      for (var r = 0; r < ${ch} && r0 + r < ${rows}; r++) {
        let k = gidx(r0 + r, f);
        let st = rst[r];${affineStep}
      }
    }
    workgroupBarrier();
  }
  if (f < ${d}) {
    st_y(u32(f), dg);
    st_y(u32(f + ${d}), db);
  }`,
  })];
};

/** [mean, biased variance] per channel: a thread per channel. */
const moments: GpuKernel = (a) => {
  const c = a.x[0].shape[1];
  const size = a.x[0].shape[0] * prod(a.x[0].shape, 2);
  return [threadPass(c, {
    loops: 2 * size,
    decls: statsDecls(a, "channels", a.x[0].shape),
    body: `  let st = stats(t);\n  st_y(u32(t), st.x);\n  st_y(u32(t + ${c}), st.y);`,
  })];
};

/** y = (x - mean) * racc(1 / sqrt(variance + eps)) * gamma + beta with the moving statistics. */
const batchnormInfer: GpuKernel = (a) => {
  const [, c] = a.x[0].shape, s = prod(a.x[0].shape, 2);
  // The statistics helpers need x0's groups only for stats(), which this kernel does not call.
  return [valuePass({
    decls: statsDecls(a, "channels", a.x[0].shape),
    body: `  let c = (i / ${s}u) % ${c}u;
  let st = vec3f(x3(c), 0.0, rstd_of(x4(c)));
  return out_ff(ff_add(ff_mul(xhat(x0(i), st), vec2f(x1(c), 0.0)), vec2f(x2(c), 0.0)));`,
  })];
};

/** Kernels of this file by op name. */
export const NORM = {
  batchnorm: forward("channels"),
  batchnorm_grad_x: gradX("channels"),
  batchnorm_grad_affine: batchnormGradAffine,
  batchnorm_infer: batchnormInfer,
  moments,
  layernorm: forward("rows"),
  layernorm_grad_x: gradX("rows"),
  layernorm_grad_affine: layernormGradAffine,
} satisfies Partial<Record<OpName, GpuKernel>>;
