/**
 * Lowerings of matmul and the three convolutions (onto the one gemm kernel, or the direct kernels) and
 * of pooling. Matmul and the convolutions run on the gemm when they accumulate in fp32 and the operand
 * that meets zero padding is finite; otherwise on the direct kernels, which follow the ref engine's loops.
 *
 * @module
 */

import type { Node } from "../../lib/graph/graph.ts";
import { type Geometry, geometry } from "../ref/window.ts";
import {
  at,
  FP32,
  list,
  type LowerArgs,
  type Lowered,
  type Lowering,
  num,
  type Operand,
  plain,
  prod,
  type Runtime,
  shares,
  split,
  SPLIT_MIN,
} from "./lowering.ts";
import { elementIndex } from "./memory.ts";
import { GemmJob, type KernelArgs } from "./kernels_wasm.ts";
import type { OpName } from "../../lib/graph/ops.ts";

// ---------------------------------------------------------------- gemm

// A gemm's scratch: the job (GemmJob), then i32[8] per thread for its store (from THREAD_SCRATCH), then
// i32[32] per thread for the gathers (threads <= 256).
const GATHER_TMP = GemmJob.THREAD_SCRATCH + 256 * 32, JOB_BYTES = GATHER_TMP + 256 * 128;
const MAX_PANEL = 32 << 20;
const up = (v: number, m: number) => Math.ceil(v / m) * m;

/** Scratch of a gemm: the job, C, and the A and B panels. */
function gemmScratch(m: number, k: number, n: number): number {
  return JOB_BYTES + up(m, 4) * k * 4 + up(n, 8) * k * 4 + up(m, 4) * up(n, 8) * 4;
}

/** Where a gemm stores C: element (i, j) at base + i * row + floor(j / cb) * cbs + j % cb. */
interface Store {
  out: Operand;
  base: number;
  row: number;
  cb: number;
  cbs: number;
}

/** Kernels that pack a gemm panel. */
type PackKernel = "packA" | "packB" | "im2col" | "col2imPanel";

/** A panel packer: for a thread's block range, the panel's address and its scratch, one kernel's arguments. */
interface Packer<K extends PackKernel = PackKernel> {
  readonly kernel: K;
  readonly row: (b0: number, b1: number, panel: number, tmp: number) => KernelArgs[K];
}

/** Packs a panel on `t` threads, each a share of its `blocks` blocks. */
function pack(
  rt: Runtime,
  { kernel, row }: Packer,
  blocks: number,
  t: number,
  panel: number,
  tmp: (p: number) => number,
) {
  rt.parallel(kernel, shares(blocks, t).map(([b0, b1], p) => row(b0, b1, panel, tmp(p))));
}

/** The fields of a gemm job, by name (GemmJob's offsets). */
type Job = Partial<Record<Exclude<keyof typeof GemmJob, "THREAD_SCRATCH">, number>>;

/** Writes the fields of a gemm job at `s`. */
function writeJob(rt: Runtime, s: number, job: Job) {
  const i32 = rt.arena.views.i32;
  for (const [field, value] of Object.entries(job) as [keyof Job, number][]) {
    i32[elementIndex(s + GemmJob[field], 4)] = value;
  }
}

/** An f32 B the tiles read in place: its k rows are `step` bytes apart, and its n columns whole blocks of 8. */
interface InPlace {
  readonly ptr: number;
  readonly step: number;
}

/**
 * Runs C [m, n] (+)= A B over k on every thread: the packers fill the panels (each thread a share of the
 * blocks), then each thread computes its share of the tiles; `init` continues from C. A plain f32 output
 * made of whole tiles is C itself (nothing left to store); otherwise C is scratch and the tiles store it.
 */
function gemm(
  rt: Runtime,
  s: number,
  [m, k, n]: readonly [number, number, number],
  [a, b]: readonly [Packer, Packer | InPlace],
  init: boolean,
  store: Store | undefined,
) {
  // C first: its place must not move when a later chunk has a different k (the weight gradient).
  const scratchC = s + JOB_BYTES, ap = scratchC + up(m, 4) * up(n, 8) * 4, bp = ap + up(m, 4) * k * 4;
  // Small products are not worth waking the workers for.
  const t = m * k * n < 1 << 20 ? 1 : rt.threads, tmp = (p: number) => s + GATHER_TMP + p * 128;
  pack(rt, a, Math.ceil(m / 4), t, ap, tmp);
  if (!("ptr" in b)) pack(rt, b, Math.ceil(n / 8), t, bp, tmp);
  const [bAt, bStep, bJb] = "ptr" in b ? [b.ptr, b.step, 32] : [bp, 32, k * 32];
  const direct = !!store && !init && store.out.fmt === FP32 && store.cbs === 0 && store.cb === n &&
    n % 8 === 0 && m % 4 === 0;
  const [c, cRow] = direct ? [at(store.out, store.base), store.row] : [scratchC, up(n, 8)];
  writeJob(rt, s, { AP: ap, BP: bAt, C: c, M: m, N: n, K: k, BSTEP: bStep, BJB: bJb, CROW: cRow });
  writeJob(rt, s, { INIT: init ? 1 : 0, STORE: store && !direct ? 1 : 0 });
  if (store) {
    const { out, base, row, cb, cbs } = store;
    writeJob(rt, s, { OUT: out.ptr, FMT: out.fmt, BASE: base, ROW: row, CB: cb, CBS: cbs });
  }
  rt.parallel("gemmTiles", Array.from({ length: t }, (_, p) => ({ job: s, part: p, parts: t })));
}

/** Packs A by row blocks: element (i, q) at start + i * row + (q / kInner) * kOuter + (q % kInner) * kStep. */
function packA(
  o: Operand,
  start: number,
  m: number,
  k: number,
  row: number,
  kIn: number,
  kOut: number,
  kStep: number,
): Packer<"packA"> {
  return {
    kernel: "packA",
    row: (b0, b1, ap) => ({
      ...{ src: at(o, start + 4 * b0 * row), fmt: o.fmt, m: Math.min(m, 4 * b1) - 4 * b0, k, rowStride: row },
      ...{ kInner: kIn, kOuterStride: kOut, kInnerStride: kStep, dst: ap + b0 * k * 16 },
    }),
  };
}

/**
 * Packs B by column blocks: element (q, j) at start + (q / kInner) * kOuter + (q % kInner) * kStep + j * col;
 * a plain f32 matrix of whole column blocks is read in place instead. An operand with `roundTo` (a cast fused
 * into this matmul) is rounded to that format as it is packed.
 */
function packB(
  o: Operand,
  start: number,
  k: number,
  n: number,
  kIn: number,
  kOut: number,
  kStep: number,
  col: number,
): Packer<"packB"> | InPlace {
  const to = o.roundTo ?? FP32;
  if (o.fmt === FP32 && to === FP32 && col === 1 && kIn === k && n % 8 === 0) {
    return { ptr: at(o, start), step: kStep * 4 };
  }
  return {
    kernel: "packB",
    row: (b0, b1, bp) => ({
      ...{ src: at(o, start + 8 * b0 * col), fmt: o.fmt, to, k, n: Math.min(n, 8 * b1) - 8 * b0 },
      ...{ kInner: kIn, kOuterStride: kOut, kInnerStride: kStep, colStride: col, dst: bp + b0 * k * 32 },
    }),
  };
}

const matmul: Lowering = ({ node, x: [a, b], y, acc, rt }) => {
  const ta = !!node.attrs.transA, tb = !!node.attrs.transB, r = a.shape.length;
  const batch = r === 3 ? a.shape[0] : 1;
  const m = ta ? a.shape[r - 1] : a.shape[r - 2], k = ta ? a.shape[r - 2] : a.shape[r - 1];
  const n = tb ? b.shape[r - 2] : b.shape[r - 1];
  const K = rt.k;
  const [aRow, aCol, bRow, bCol] = [ta ? 1 : k, ta ? m : 1, tb ? 1 : n, tb ? k : 1];
  if (acc !== FP32) {
    return plain((s) => {
      for (let bi = 0; bi < batch; bi++) {
        K.matmulDirect(
          ...[at(a, bi * m * k), a.fmt, aRow, aCol, at(b, bi * k * n), b.fmt, bRow, bCol],
          ...[at(y, bi * m * n), y.fmt, m, k, n, acc, s],
        );
      }
    }, n * 8);
  }
  return plain((s) => {
    for (let bi = 0; bi < batch; bi++) {
      gemm(
        rt,
        s,
        [m, k, n],
        [packA(a, bi * m * k, m, k, aRow, k, 0, aCol), packB(b, bi * k * n, k, n, k, 0, bRow, bCol)],
        false,
        { out: y, base: bi * m * n, row: n, cb: n, cbs: 0 },
      );
    }
  }, gemmScratch(m, k, n));
};

// ---------------------------------------------------------------- convolutions

/** Sets the window geometry on every thread (each has its own instance, and the gathers run on all). */
function setGeometry(rt: Runtime, g: Geometry) {
  const { n, c, h, w, kh, kw, sh, sw, pt, pl, oh, ow } = g;
  const args = { n, c, h, w, kh, kw, sh, sw, pt, pl, oh, ow };
  rt.parallel("setGeometry", Array.from({ length: rt.threads }, () => args));
}

/** Images per gemm so that a B panel of `rows` x (images * perImage) stays under MAX_PANEL bytes. */
function imagesPerChunk(images: number, rows: number, perImage: number): number {
  return Math.max(1, Math.min(images, Math.floor(MAX_PANEL / (rows * perImage * 4))));
}

/** Where a gather reads: a tensor, or its f32 copy. */
interface Source {
  readonly ptr: number;
  readonly fmt: number;
}

/**
 * A convolution op: the gemm path (m x k by per-image columns, chunked over images) or, when the
 * accumulate format is not fp32 or `guard` holds a non-finite value, the direct kernel.
 */
function convLowering(
  a: LowerArgs,
  g: Geometry,
  guard: Operand,
  gathered: Operand,
  shape: (chunk: number) => readonly [number, number, number],
  direct: () => void,
  chunkGemm: (s: number, src: Source, group: number, n0: number, nc: number) => void,
  perImage: number,
  rows: number,
): Lowered {
  const groups = num(a.node, "groups"), nc = imagesPerChunk(g.n, rows, perImage);
  if (a.acc !== FP32) return plain(() => (setGeometry(a.rt, g), direct()));
  const gemmBytes = gemmScratch(...shape(nc)), wide = gathered.fmt !== FP32;
  return plain((s) => {
    setGeometry(a.rt, g);
    if (!a.rt.k.allFinite(guard.ptr, guard.fmt, guard.size)) return direct();
    // A 16-bit tensor is widened to f32 once: the gathers read each element up to kh * kw times.
    let src: Source = gathered;
    if (wide) {
      src = { ptr: s + gemmBytes, fmt: FP32 };
      const args = { x: gathered.ptr, fx: gathered.fmt, y: src.ptr, n: gathered.size };
      split(a.rt, "widen", args, { x: "fx", y: "f32" }, "n");
    }
    for (let grp = 0; grp < groups; grp++) {
      for (let n0 = 0; n0 < g.n; n0 += nc) chunkGemm(s, src, grp, n0, Math.min(nc, g.n - n0));
    }
  }, gemmBytes + (wide ? 4 * gathered.size : 0));
}

/** True for a convolution with one filter per channel (groups = channels = filters). */
const isDepthwise = (groups: number, c: number, o: number) => groups > 1 && groups === c && groups === o;

/**
 * A depthwise convolution op in fp32 accumulation: its direct kernel (kernels/wasm/as/depthwise.ts), each
 * thread a share [r0, r1) of the `count` planes (or channels) that `row` turns into the kernel's arguments.
 */
function depthwiseLowering<K extends "depthwise" | "depthwiseGradInput" | "depthwiseGradWeight">(
  { rt }: LowerArgs,
  g: Geometry,
  kernel: K,
  count: number,
  row: (r0: number, r1: number) => KernelArgs[K],
): Lowered {
  const t = g.n * g.c * g.h * g.w < SPLIT_MIN ? 1 : rt.threads;
  return plain(() => {
    setGeometry(rt, g);
    rt.parallel(kernel, shares(count, t).map(([r0, r1]) => row(r0, r1)));
  });
}

/** The gather of the conv2d input as a B panel (`transposed`: the weight gradient's, taps as columns). */
function im2col(
  src: Source,
  n0: number,
  nc: number,
  c0: number,
  cg: number,
  transposed: boolean,
): Packer<"im2col"> {
  const { ptr: x, fmt: fx } = src;
  return {
    kernel: "im2col",
    row: (jb0, jb1, dst, tmp) => ({ x, fx, n0, nc, c0, cg, transposed, dst, tmp, jb0, jb1 }),
  };
}

const conv2d: Lowering = (a) => {
  const { node, x: [x, w], y, acc, rt: { k: K } } = a;
  const o = w.shape[0], cg = w.shape[1], groups = num(node, "groups"), og = o / groups;
  const g = geometry(node, x.shape, [w.shape[2], w.shape[3]], y.shape),
    pix = g.oh * g.ow,
    kk = cg * g.kh * g.kw;
  if (acc === FP32 && isDepthwise(groups, g.c, o)) {
    const args = { x: x.ptr, fx: x.fmt, w: w.ptr, fw: w.fmt, y: y.ptr, fy: y.fmt };
    return depthwiseLowering(a, g, "depthwise", g.n * g.c, (nc0, nc1) => ({ ...args, nc0, nc1 }));
  }
  return convLowering(
    a,
    g,
    w,
    x,
    (nc) => [og, kk, nc * pix],
    () => K.conv2dDirect(x.ptr, x.fmt, w.ptr, w.fmt, y.ptr, y.fmt, o, cg, groups, acc),
    (s, src, grp, n0, nc) =>
      gemm(
        a.rt,
        s,
        [og, kk, nc * pix],
        [
          packA(w, grp * og * kk, og, kk, kk, kk, 0, 1),
          im2col(src, n0, nc, grp * cg, cg, false),
        ],
        false,
        { out: y, base: (n0 * o + grp * og) * pix, row: pix, cb: pix, cbs: o * pix },
      ),
    pix,
    kk,
  );
};

/** The gather of the output gradient as the B panel of the input gradient. */
function col2im(
  src: Source,
  o: number,
  n0: number,
  nc: number,
  o0: number,
  og: number,
): Packer<"col2imPanel"> {
  const { ptr: g, fmt: fg } = src;
  return {
    kernel: "col2imPanel",
    row: (jb0, jb1, dst, tmp) => ({ g, fg, o, n0, nc, o0, og, dst, tmp, jb0, jb1 }),
  };
}

const conv2dGradInput: Lowering = (a) => {
  const { node, x: [gy, w], y, acc, rt: { k: K } } = a;
  const o = w.shape[0], cg = w.shape[1], groups = num(node, "groups"), og = o / groups;
  const g = geometry(node, list(node, "inShape"), [w.shape[2], w.shape[3]], gy.shape);
  const pix = g.h * g.w, t = g.kh * g.kw, kk = og * t;
  if (acc === FP32 && isDepthwise(groups, g.c, o)) {
    const args = { gy: gy.ptr, fg: gy.fmt, w: w.ptr, fw: w.fmt, dx: y.ptr, fd: y.fmt };
    return depthwiseLowering(a, g, "depthwiseGradInput", g.n * g.c, (nc0, nc1) => ({ ...args, nc0, nc1 }));
  }
  return convLowering(
    a,
    g,
    w,
    gy,
    (nc) => [cg, kk, nc * pix],
    () => K.conv2dGradInputDirect(gy.ptr, gy.fmt, w.ptr, w.fmt, y.ptr, y.fmt, o, cg, groups, acc),
    (s, src, grp, n0, nc) =>
      gemm(
        a.rt,
        s,
        [cg, kk, nc * pix],
        [
          packA(w, grp * og * cg * t, cg, kk, t, t, cg * t, 1),
          col2im(src, o, n0, nc, grp * og, og),
        ],
        false,
        { out: y, base: (n0 * g.c + grp * cg) * pix, row: pix, cb: pix, cbs: g.c * pix },
      ),
    pix,
    kk,
  );
};

const conv2dGradWeight: Lowering = (a) => {
  const { node, x: [x, gy], y, acc, rt: { k: K } } = a;
  const groups = num(node, "groups"), o = gy.shape[1], og = o / groups;
  const g = geometry(node, x.shape, list(node, "kernel"), gy.shape);
  const cg = g.c / groups, pix = g.oh * g.ow, taps = cg * g.kh * g.kw;
  // A kernel row is one vector of the depthwise weight gradient's sums: wider kernels take the gemm.
  if (acc === FP32 && isDepthwise(groups, g.c, o) && g.kw <= 4) {
    const args = { x: x.ptr, fx: x.fmt, gy: gy.ptr, fg: gy.fmt, dw: y.ptr, fd: y.fmt };
    return depthwiseLowering(a, g, "depthwiseGradWeight", g.c, (c0, c1) => ({ ...args, c0, c1 }));
  }
  return convLowering(
    a,
    g,
    gy,
    x,
    (nc) => [og, nc * pix, taps],
    () => K.conv2dGradWeightDirect(x.ptr, x.fmt, gy.ptr, gy.fmt, y.ptr, y.fmt, o, groups, acc),
    (s, src, grp, n0, nc) =>
      gemm(
        a.rt,
        s,
        [og, nc * pix, taps],
        [
          packA(gy, (n0 * o + grp * og) * pix, og, nc * pix, pix, pix, o * pix, 1),
          im2col(src, n0, nc, grp * cg, cg, true),
        ],
        n0 > 0,
        n0 + nc === g.n ? { out: y, base: grp * og * taps, row: taps, cb: taps, cbs: 0 } : undefined,
      ),
    1, // the panel's rows are the image pixels, its columns the taps
    taps * pix,
  );
};

// ---------------------------------------------------------------- pooling

function poolGeometry(node: Node, xs: readonly number[], out: readonly number[]): Geometry {
  return geometry(node, xs, list(node, "kernel"), out);
}

/** One [first, last) range of the N * C planes per thread (one range when the work is small). */
function planes(rt: Runtime, shape: readonly number[]): [number, number][] {
  const count = shape[0] * shape[1];
  return shares(count, prod(shape) < SPLIT_MIN ? 1 : rt.threads);
}

const maxpool: Lowering = ({ node, x: [x], y, rt }) => {
  const g = poolGeometry(node, x.shape, y.shape), parts = planes(rt, x.shape);
  return plain((s) => {
    setGeometry(rt, g);
    rt.parallel(
      "maxpool",
      parts.map(([nc0, nc1]) => ({ x: x.ptr, fx: x.fmt, best: s, y: y.ptr, fy: y.fmt, nc0, nc1 })),
    );
  }, y.size * 4);
};

const maxpoolGrad: Lowering = ({ node, x: [x, gy], y, acc, rt }) => {
  const g = poolGeometry(node, x.shape, gy.shape),
    best = Math.ceil(gy.size / 2) * 8,
    parts = planes(rt, x.shape);
  return plain((s) => {
    setGeometry(rt, g);
    const args = {
      x: x.ptr,
      fx: x.fmt,
      gy: gy.ptr,
      fg: gy.fmt,
      best: s,
      dx: y.ptr,
      fd: y.fmt,
      sum: s + best,
      acc,
    };
    rt.parallel("maxpoolGrad", parts.map(([nc0, nc1]) => ({ ...args, nc0, nc1 })));
  }, best + y.size * 8);
};

const avgpool: Lowering = ({ node, x: [x], y, acc, rt }) => {
  const g = poolGeometry(node, x.shape, y.shape);
  return plain(
    (s) => (setGeometry(rt, g), rt.k.avgpool(x.ptr, x.fmt, y.ptr, y.fmt, s, false, acc)),
    y.size * 8,
  );
};

const avgpoolGrad: Lowering = ({ node, x: [gy], y, acc, rt }) => {
  const g = poolGeometry(node, list(node, "inShape"), gy.shape);
  return plain(
    (s) => (setGeometry(rt, g), rt.k.avgpool(gy.ptr, gy.fmt, y.ptr, y.fmt, s, true, acc)),
    y.size * 8,
  );
};

/** The lowerings of this file by op name. */
export const WINDOW_LOWERINGS = {
  matmul,
  conv2d,
  conv2d_grad_input: conv2dGradInput,
  conv2d_grad_weight: conv2dGradWeight,
  maxpool,
  maxpool_grad: maxpoolGrad,
  avgpool,
  avgpool_grad: avgpoolGrad,
} satisfies Partial<Record<OpName, Lowering>>;
