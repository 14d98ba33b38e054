/**
 * The wasm engine's op table: for each op of the step graph, a lowering that binds the node's buffers,
 * formats and attributes to kernel calls once, at compile time. Matmul and the three convolutions run
 * on the gemm kernel when they accumulate in fp32 and the operand that meets zero padding is finite;
 * otherwise they run the direct kernels, which follow the ref engine's loops for any format.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { Node } from "../../lib/graph/graph.ts";
import type { Arena } from "./memory.ts";
import type { ParallelKernel } from "./pool.ts";

/** A node's input or output buffer. */
export interface Operand {
  readonly ptr: number;
  readonly fmt: number;
  readonly format: FormatName;
  readonly shape: readonly number[];
  readonly size: number;
}

/** What a lowering can call. */
export interface Runtime {
  /** The kernel module's exports. */
  readonly k: Readonly<Record<string, (...a: number[]) => number>>;
  readonly arena: Arena;
  /** Threads of the pool (the calling thread included). */
  readonly threads: number;
  /** Runs `kernel` once per thread, with one argument row per thread. */
  parallel(kernel: ParallelKernel, rows: readonly (readonly number[])[]): void;
}

/** Arguments of a lowering. */
export interface LowerArgs {
  readonly node: Node;
  readonly x: readonly Operand[];
  readonly y: Operand;
  /** Accumulate format code. */
  readonly acc: number;
  readonly rt: Runtime;
}

/** A lowered node: the scratch bytes it needs, and the call that runs it with that scratch at `s`. */
export interface Lowered {
  readonly scratch: number;
  run(s: number): void;
}

type Lowering = (a: LowerArgs) => Lowered;

const FP32 = 0;
const num = (n: Node, key: string) => n.attrs[key] as number;
const list = (n: Node, key: string) => n.attrs[key] as readonly number[];
const prod = (s: readonly number[], from = 0, to = s.length) => s.slice(from, to).reduce((p, d) => p * d, 1);
/** Address of element `i` of an operand. */
const at = (o: Operand, i: number) => o.ptr + i * (o.fmt === FP32 ? 4 : 2);
const plain = (run: (s: number) => void, scratch = 0): Lowered => ({ scratch, run });
const scalar = (rt: Runtime, o: Operand) => rt.arena.scalar(o.ptr, o.format);

// ---------------------------------------------------------------- gemm

// A gemm's scratch: the job (56 bytes), then i32[8] per thread for its store (from 256), then i32[32] per
// thread for the gathers (threads <= 256).
const STORE_TMP = 256, GATHER_TMP = STORE_TMP + 256 * 32, JOB_BYTES = GATHER_TMP + 256 * 128;
const MAX_PANEL = 32 << 20;
const up = (v: number, m: number) => Math.ceil(v / m) * m;

/** Scratch of a gemm: the job, C, and the A and B panels. */
function gemmScratch(m: number, k: number, n: number): number {
  return JOB_BYTES + up(m, 4) * k * 4 + up(n, 8) * k * 4 + up(m, 4) * up(n, 8) * 4;
}

/** Splits `count` blocks into one contiguous range per thread. */
function shares(count: number, threads: number): [number, number][] {
  return Array.from({ length: threads }, (_, p) => [
    Math.floor((count * p) / threads),
    Math.floor((count * (p + 1)) / threads),
  ]);
}

/** Where a gemm stores C: element (i, j) at base + i * row + floor(j / cb) * cbs + j % cb. */
interface Store {
  out: Operand;
  base: number;
  row: number;
  cb: number;
  cbs: number;
}

/** A panel packer: for a thread's block range, the panel's address and its scratch, one kernel's arguments. */
type Packer = readonly [
  ParallelKernel,
  (b0: number, b1: number, panel: number, tmp: number) => readonly number[],
];

/**
 * Runs C [m, n] (+)= A B over k on every thread: the packers fill the panels (each thread a share of the
 * blocks), then each thread computes its share of the tiles; `init` continues from C.
 */
function gemm(
  rt: Runtime,
  s: number,
  [m, k, n]: readonly [number, number, number],
  [a, b]: readonly [Packer, Packer],
  init: boolean,
  store: Store | undefined,
) {
  // C first: its place must not move when a later chunk has a different k (the weight gradient).
  const c = s + JOB_BYTES, ap = c + up(m, 4) * up(n, 8) * 4, bp = ap + up(m, 4) * k * 4;
  // Small products are not worth waking the workers for.
  const t = m * k * n < 1 << 20 ? 1 : rt.threads, tmp = (p: number) => s + GATHER_TMP + p * 128;
  rt.parallel(a[0], shares(Math.ceil(m / 4), t).map(([b0, b1], p) => a[1](b0, b1, ap, tmp(p))));
  rt.parallel(b[0], shares(Math.ceil(n / 8), t).map(([b0, b1], p) => b[1](b0, b1, bp, tmp(p))));
  const i32 = rt.arena.views.i32, j = s >> 2;
  i32.set([ap, bp, c, m, n, k, init ? 1 : 0, store ? 1 : 0], j);
  if (store) i32.set([store.out.ptr, store.out.fmt, store.base, store.row, store.cb, store.cbs], j + 8);
  rt.parallel("gemmTiles", Array.from({ length: t }, (_, p) => [s, p, t]));
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
): Packer {
  return [
    "packA",
    (
      b0,
      b1,
      ap,
    ) => [
      at(o, start + 4 * b0 * row),
      o.fmt,
      Math.min(m, 4 * b1) - 4 * b0,
      k,
      row,
      kIn,
      kOut,
      kStep,
      ap + b0 * k * 16,
    ],
  ];
}

/** Packs B by column blocks: element (q, j) at start + (q / kInner) * kOuter + (q % kInner) * kStep + j * col. */
function packB(
  o: Operand,
  start: number,
  k: number,
  n: number,
  kIn: number,
  kOut: number,
  kStep: number,
  col: number,
): Packer {
  return [
    "packB",
    (
      b0,
      b1,
      bp,
    ) => [
      at(o, start + 8 * b0 * col),
      o.fmt,
      k,
      Math.min(n, 8 * b1) - 8 * b0,
      kIn,
      kOut,
      kStep,
      col,
      bp + b0 * k * 32,
    ],
  ];
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

/** Geometry of a window op: input [n, c, h, w], window, strides, pads and output size. */
interface Geometry {
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

function geometry(
  node: Node,
  xs: readonly number[],
  kernel: readonly number[],
  out: readonly number[],
): Geometry {
  const [sh, sw] = list(node, "stride"), [pt, pl] = list(node, "pads");
  return {
    ...{ n: xs[0], c: xs[1], h: xs[2], w: xs[3], kh: kernel[0], kw: kernel[1] },
    ...{ sh, sw, pt, pl, oh: out[2], ow: out[3] },
  };
}

/** Sets the window geometry on every thread (each has its own instance, and the gathers run on all). */
function setGeometry(rt: Runtime, g: Geometry) {
  const args = [g.n, g.c, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.oh, g.ow];
  rt.parallel("setGeometry", Array.from({ length: rt.threads }, () => args));
}

/** Images per gemm so that a B panel of `rows` x (images * perImage) stays under MAX_PANEL bytes. */
function imagesPerChunk(images: number, rows: number, perImage: number): number {
  return Math.max(1, Math.min(images, Math.floor(MAX_PANEL / (rows * perImage * 4))));
}

/**
 * A convolution op: the gemm path (m x k by per-image columns, chunked over images) or, when the
 * accumulate format is not fp32 or `guard` holds a non-finite value, the direct kernel.
 */
function convLowering(
  a: LowerArgs,
  g: Geometry,
  guard: Operand,
  shape: (chunk: number) => readonly [number, number, number],
  direct: () => void,
  chunkGemm: (s: number, group: number, n0: number, nc: number) => void,
  perImage: number,
  rows: number,
): Lowered {
  const groups = num(a.node, "groups"), nc = imagesPerChunk(g.n, rows, perImage);
  if (a.acc !== FP32) return plain(() => (setGeometry(a.rt, g), direct()));
  return plain((s) => {
    setGeometry(a.rt, g);
    if (!a.rt.k.allFinite(guard.ptr, guard.fmt, guard.size)) return direct();
    for (let grp = 0; grp < groups; grp++) {
      for (let n0 = 0; n0 < g.n; n0 += nc) chunkGemm(s, grp, n0, Math.min(nc, g.n - n0));
    }
  }, gemmScratch(...shape(nc)));
}

const conv2d: Lowering = (a) => {
  const { node, x: [x, w], y, acc, rt: { k: K } } = a;
  const o = w.shape[0], cg = w.shape[1], groups = num(node, "groups"), og = o / groups;
  const g = geometry(node, x.shape, [w.shape[2], w.shape[3]], y.shape),
    pix = g.oh * g.ow,
    kk = cg * g.kh * g.kw;
  return convLowering(
    a,
    g,
    w,
    (nc) => [og, kk, nc * pix],
    () => K.conv2dDirect(x.ptr, x.fmt, w.ptr, w.fmt, y.ptr, y.fmt, o, cg, groups, acc),
    (s, grp, n0, nc) =>
      gemm(
        a.rt,
        s,
        [og, kk, nc * pix],
        [
          packA(w, grp * og * kk, og, kk, kk, kk, 0, 1),
          ["im2col", (b0, b1, bp, tmp) => [x.ptr, x.fmt, n0, nc, grp * cg, cg, 0, bp, tmp, b0, b1]],
        ],
        false,
        { out: y, base: (n0 * o + grp * og) * pix, row: pix, cb: pix, cbs: o * pix },
      ),
    pix,
    kk,
  );
};

const conv2dGradInput: Lowering = (a) => {
  const { node, x: [gy, w], y, acc, rt: { k: K } } = a;
  const o = w.shape[0], cg = w.shape[1], groups = num(node, "groups"), og = o / groups;
  const g = geometry(node, list(node, "inShape"), [w.shape[2], w.shape[3]], gy.shape);
  const pix = g.h * g.w, t = g.kh * g.kw, kk = og * t;
  return convLowering(
    a,
    g,
    w,
    (nc) => [cg, kk, nc * pix],
    () => K.conv2dGradInputDirect(gy.ptr, gy.fmt, w.ptr, w.fmt, y.ptr, y.fmt, o, cg, groups, acc),
    (s, grp, n0, nc) =>
      gemm(
        a.rt,
        s,
        [cg, kk, nc * pix],
        [
          packA(w, grp * og * cg * t, cg, kk, t, t, cg * t, 1),
          ["col2imPanel", (b0, b1, bp, tmp) => [gy.ptr, gy.fmt, o, n0, nc, grp * og, og, bp, tmp, b0, b1]],
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
  return convLowering(
    a,
    g,
    gy,
    (nc) => [og, nc * pix, taps],
    () => K.conv2dGradWeightDirect(x.ptr, x.fmt, gy.ptr, gy.fmt, y.ptr, y.fmt, o, groups, acc),
    (s, grp, n0, nc) =>
      gemm(
        a.rt,
        s,
        [og, nc * pix, taps],
        [
          packA(gy, (n0 * o + grp * og) * pix, og, nc * pix, pix, pix, o * pix, 1),
          ["im2col", (b0, b1, bp, tmp) => [x.ptr, x.fmt, n0, nc, grp * cg, cg, 1, bp, tmp, b0, b1]],
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
    rt.parallel("maxpool", parts.map(([a, b]) => [x.ptr, x.fmt, s, y.ptr, y.fmt, a, b]));
  }, y.size * 4);
};

const maxpoolGrad: Lowering = ({ node, x: [x, gy], y, acc, rt }) => {
  const g = poolGeometry(node, x.shape, gy.shape),
    best = Math.ceil(gy.size / 2) * 8,
    parts = planes(rt, x.shape);
  return plain((s) => {
    setGeometry(rt, g);
    const args = (
      a: number,
      b: number,
    ) => [x.ptr, x.fmt, gy.ptr, gy.fmt, s, y.ptr, y.fmt, s + best, acc, a, b];
    rt.parallel("maxpoolGrad", parts.map(([a, b]) => args(a, b)));
  }, best + y.size * 8);
};

const avgpool: Lowering = ({ node, x: [x], y, acc, rt }) => {
  const g = poolGeometry(node, x.shape, y.shape);
  return plain((s) => (setGeometry(rt, g), rt.k.avgpool(x.ptr, x.fmt, y.ptr, y.fmt, s, 0, acc)), y.size * 8);
};

const avgpoolGrad: Lowering = ({ node, x: [gy], y, acc, rt }) => {
  const g = poolGeometry(node, list(node, "inShape"), gy.shape);
  return plain(
    (s) => (setGeometry(rt, g), rt.k.avgpool(gy.ptr, gy.fmt, y.ptr, y.fmt, s, 1, acc)),
    y.size * 8,
  );
};

// ---------------------------------------------------------------- elementwise, bias, data movement

/** Below this many elements an elementwise kernel runs on the calling thread alone. */
const SPLIT_MIN = 1 << 15;

/**
 * Runs an elementwise kernel over one contiguous range of elements per thread (starts at multiples of 4,
 * for SIMD): `tensors` lists the [address, format] argument positions to offset, `nAt` the count's.
 * Element i depends only on element i of each tensor, so the split never changes a bit.
 */
function split(
  rt: Runtime,
  kernel: ParallelKernel,
  args: readonly number[],
  tensors: readonly number[][],
  nAt: number,
) {
  const n = args[nAt], t = rt.threads;
  if (t === 1 || n < SPLIT_MIN) return void rt.k[kernel](...args);
  rt.parallel(
    kernel,
    Array.from({ length: t }, (_, p) => {
      const from = Math.floor((n * p) / t / 4) * 4,
        to = p === t - 1 ? n : Math.floor((n * (p + 1)) / t / 4) * 4;
      const row = [...args];
      for (const [pi, fi] of tensors) row[pi] += from * (row[fi] === FP32 ? 4 : 2);
      row[nAt] = to - from;
      return row;
    }),
  );
}

const map1 = (op: number, factor?: (n: Node) => number): Lowering => ({ node, x: [x], y, rt }) => {
  const f = factor?.(node) ?? 0;
  return plain(() => split(rt, "map1", [op, x.ptr, x.fmt, y.ptr, y.fmt, y.size, f], [[1, 2], [3, 4]], 5));
};
const map2 = (op: number): Lowering => ({ x: [a, b], y, rt }) =>
  plain(() =>
    split(rt, "map2", [op, a.ptr, a.fmt, b.ptr, b.fmt, y.ptr, y.fmt, y.size], [[1, 2], [3, 4], [5, 6]], 7)
  );

function bcast(node: Node, xs: readonly number[], rank: number) {
  const axis = num(node, "axis");
  return [prod(xs, 0, axis), prod(xs, axis, axis + rank), prod(xs, axis + rank)] as const;
}

const copyAll: Lowering = ({ x: [x], y, rt }) =>
  plain(() => rt.k.copy(x.ptr, x.fmt, 0, y.ptr, y.fmt, 0, y.size));

/** Writes one number to a one-element output through the arena (count_correct, all_finite). */
function writeScalar(rt: Runtime, y: Operand, v: number) {
  rt.arena.write(y.ptr, y.format, Float64Array.of(v));
}

// ---------------------------------------------------------------- softmax

function labelError(rt: Runtime, labels: Operand, row: number, k: number): Error {
  const v = rt.arena.read(labels.ptr, labels.format, row + 1)[row];
  return new RangeError(`Label ${v} at row ${row} is not in [0, ${k})`);
}

// ---------------------------------------------------------------- normalisation

type Norm = "batchnorm" | "layernorm";

/** Sets the groups of a normalisation over `shape`; returns [groups, elements per group]. */
function groups(rt: Runtime, kind: Norm, shape: readonly number[]): [number, number] {
  if (kind === "batchnorm") {
    rt.k.setGroups(0, shape[0], shape[1], prod(shape, 2));
    return [shape[1], shape[0] * prod(shape, 2)];
  }
  const d = shape.at(-1)!, rows = prod(shape) / d;
  rt.k.setGroups(1, 0, rows, d);
  return [rows, d];
}

function normFamily(kind: Norm): Record<string, Lowering> {
  const perGroup = kind === "batchnorm" ? 1 : 0;
  const statsBytes = (shape: readonly number[]) =>
    3 * 8 * (kind === "batchnorm" ? shape[1] : prod(shape) / shape.at(-1)!);
  const prepare = (rt: Runtime, node: Node, x: Operand, s: number, acc: number) => {
    groups(rt, kind, x.shape);
    rt.k.stats(x.ptr, x.fmt, num(node, "eps"), s, acc);
  };
  return {
    [kind]: ({ node, x: [x, gamma, beta], y, acc, rt }) =>
      plain((s) => {
        prepare(rt, node, x, s, acc);
        rt.k.normalize(x.ptr, x.fmt, s, gamma.ptr, gamma.fmt, beta.ptr, beta.fmt, y.ptr, y.fmt, perGroup);
      }, statsBytes(x.shape)),
    [`${kind}_grad_x`]: ({ node, x: [x, gamma, gy], y, acc, rt }) =>
      plain((s) => {
        prepare(rt, node, x, s, acc);
        rt.k.inputGrad(x.ptr, x.fmt, gamma.ptr, gamma.fmt, gy.ptr, gy.fmt, s, y.ptr, y.fmt, perGroup, acc);
      }, statsBytes(x.shape)),
    [`${kind}_grad_affine`]: ({ node, x: [x, gy], y, acc, rt }) => {
      const st = statsBytes(x.shape);
      return plain((s) => {
        prepare(rt, node, x, s, acc);
        rt.k.affineGrad(x.ptr, x.fmt, gy.ptr, gy.fmt, s, y.ptr, y.fmt, perGroup, s + st, acc);
      }, st + y.size * 8);
    },
  };
}

// ---------------------------------------------------------------- optimizer

/** True when the node is gated and its `ok` input says the gradients were not finite: the state is kept. */
function gatedOff(rt: Runtime, node: Node, ok: Operand): boolean {
  return !!node.attrs.gated && scalar(rt, ok) === 0;
}

/** Stochastic rounding hashes each element's index, so such an update runs whole, on one thread. */
function splitUnlessStochastic(
  rt: Runtime,
  node: Node,
  kernel: ParallelKernel,
  args: readonly number[],
  tensors: readonly number[][],
  nAt: number,
) {
  if (node.attrs.stochastic) rt.k[kernel](...args);
  else split(rt, kernel, args, tensors, nAt);
}

function seedOf(rt: Runtime, node: Node, seed: Operand): [number, number, number] {
  return node.attrs.stochastic ? [1, scalar(rt, seed) >>> 0, num(node, "salt") >>> 0] : [0, 0, 0];
}

// ---------------------------------------------------------------- the table

/** Every op of the step graph and its lowering. */
export const LOWERINGS: Readonly<Record<string, Lowering>> = {
  matmul,
  conv2d,
  conv2d_grad_input: conv2dGradInput,
  conv2d_grad_weight: conv2dGradWeight,
  maxpool,
  maxpool_grad: maxpoolGrad,
  avgpool,
  avgpool_grad: avgpoolGrad,
  relu: map1(0),
  tanh: map1(1),
  gelu: map1(2),
  scale: map1(3, (n) => num(n, "factor")),
  cast: map1(4),
  relu_grad: map2(0),
  tanh_grad: map2(1),
  gelu_grad: map2(2),
  add: map2(3),
  dropout: ({ node, x: [x, seed], y, rt }) =>
    plain(() =>
      rt.k.dropout(
        x.ptr,
        x.fmt,
        scalar(rt, seed) >>> 0,
        num(node, "salt") >>> 0,
        num(node, "rate"),
        y.ptr,
        y.fmt,
        y.size,
      )
    ),
  all_finite: ({ x, y, rt }) =>
    plain(() => writeScalar(rt, y, x.every((o) => rt.k.allFinite(o.ptr, o.fmt, o.size)) ? 1 : 0)),
  bias_add: ({ node, x: [x, b], y, rt }) => {
    const [outer, mid, inner] = bcast(node, x.shape, b.shape.length);
    const args = [x.ptr, x.fmt, b.ptr, b.fmt, y.ptr, y.fmt, outer, mid, inner];
    if (rt.threads === 1 || x.size < SPLIT_MIN) return plain(() => rt.k.biasAdd(...args));
    // One range of the outer index per thread.
    const rows = shares(outer, rt.threads).map(([o0, o1]) => {
      const row = [...args], skip = o0 * mid * inner;
      row[0] = at(x, skip);
      row[4] = at(y, skip);
      row[6] = o1 - o0;
      return row;
    });
    return plain(() => rt.parallel("biasAdd", rows));
  },
  sum_to: ({ node, x: [g], y, acc, rt }) => {
    const [outer, mid, inner] = bcast(node, g.shape, num(node, "rank"));
    return plain(() => rt.k.sumTo(g.ptr, g.fmt, y.ptr, y.fmt, outer, mid, inner, acc));
  },
  reshape: copyAll,
  row: ({ node, x: [x], y, rt }) =>
    plain(() => rt.k.copy(x.ptr, x.fmt, num(node, "index") * y.size, y.ptr, y.fmt, 0, y.size)),
  transpose: ({ node, x: [x], y, rt }) => {
    const perm = list(node, "perm"), r = x.shape.length, stride: number[] = [];
    for (let i = r - 1, s = 1; i >= 0; i--) (stride[i] = s), (s *= x.shape[i]);
    const dims = [...perm.map((p) => x.shape[p]), ...perm.map((p) => stride[p])];
    return plain((s) => {
      rt.arena.views.i32.set(dims, s >> 2);
      rt.k.transpose(x.ptr, x.fmt, y.ptr, y.fmt, y.size, r, s, s + 8 * r);
    }, 12 * r);
  },
  concat: ({ node, x, y, rt }) => {
    const ax = num(node, "axis"), outer = prod(y.shape, 0, ax), inner = prod(y.shape, ax + 1);
    return plain(() => {
      let to = 0;
      for (const a of x) {
        rt.k.copyAxis(a.ptr, a.fmt, a.shape[ax], y.ptr, y.fmt, y.shape[ax], outer, inner, 0, to, a.shape[ax]);
        to += a.shape[ax];
      }
    });
  },
  slice: ({ node, x: [x], y, rt }) => {
    const ax = num(node, "axis"), size = num(node, "size");
    const [outer, inner] = [prod(x.shape, 0, ax), prod(x.shape, ax + 1)];
    return plain(() =>
      rt.k.copyAxis(x.ptr, x.fmt, x.shape[ax], y.ptr, y.fmt, size, outer, inner, num(node, "start"), 0, size)
    );
  },
  pad_channels: ({ node, x: [x], y, rt }) =>
    plain(() => {
      rt.arena.views.u8.fill(0, y.ptr, at(y, y.size));
      const [n, c] = x.shape;
      rt.k.copyAxis(
        x.ptr,
        x.fmt,
        c,
        y.ptr,
        y.fmt,
        y.shape[1],
        n,
        prod(x.shape, 2),
        0,
        num(node, "before"),
        c,
      );
    }),
  softmax: ({ x: [x], y, acc, rt }) => {
    const k = x.shape.at(-1)!;
    return plain((s) => rt.k.softmax(x.ptr, x.fmt, y.ptr, y.fmt, x.size / k, k, s, acc), k * 8);
  },
  softmax_grad: ({ x: [p, g], y, acc, rt }) => {
    const k = p.shape.at(-1)!;
    return plain(() => rt.k.softmaxGrad(p.ptr, p.fmt, g.ptr, g.fmt, y.ptr, y.fmt, p.size / k, k, acc));
  },
  softmax_xent: ({ x: [x, labels], y, acc, rt }) => {
    const [n, k] = x.shape;
    return plain((s) => {
      const bad = rt.k.softmaxXent(x.ptr, x.fmt, labels.ptr, labels.fmt, y.ptr, y.fmt, n, k, s, acc);
      if (bad >= 0) throw labelError(rt, labels, bad, k);
    }, k * 8);
  },
  softmax_xent_grad: ({ x: [x, labels, seed], y, acc, rt }) => {
    const [n, k] = x.shape;
    return plain((s) => {
      const sd = scalar(rt, seed);
      const bad = rt.k.softmaxXentGrad(x.ptr, x.fmt, labels.ptr, labels.fmt, sd, y.ptr, y.fmt, n, k, s, acc);
      if (bad >= 0) throw labelError(rt, labels, bad, k);
    }, k * 8);
  },
  count_correct: ({ x: [x, labels], y, rt }) => {
    const [n, k] = x.shape;
    return plain(() => writeScalar(rt, y, rt.k.countCorrect(x.ptr, x.fmt, labels.ptr, labels.fmt, n, k)));
  },
  ...normFamily("batchnorm"),
  ...normFamily("layernorm"),
  batchnorm_infer: ({ node, x: [x, gamma, beta, mean, variance], y, acc, rt }) =>
    plain((s) => {
      groups(rt, "batchnorm", x.shape);
      rt.k.inferStats(mean.ptr, mean.fmt, variance.ptr, variance.fmt, num(node, "eps"), s, acc);
      rt.k.normalize(x.ptr, x.fmt, s, gamma.ptr, gamma.fmt, beta.ptr, beta.fmt, y.ptr, y.fmt, 1);
    }, 3 * x.shape[1] * 8),
  moments: ({ x: [x], y, acc, rt }) =>
    plain((s) => {
      groups(rt, "batchnorm", x.shape);
      rt.k.stats(x.ptr, x.fmt, 0, s, acc);
      rt.k.writeMoments(s, y.ptr, y.fmt);
    }, 3 * x.shape[1] * 8),
  ema: ({ node, x: [r, m], y, rt }) =>
    plain(() =>
      rt.k.ema(
        r.ptr,
        r.fmt,
        m.ptr,
        m.fmt,
        num(node, "index") * r.size,
        1 - num(node, "momentum"),
        y.ptr,
        y.fmt,
        y.size,
      )
    ),
  sgd_velocity: ({ node, x: [v, g, w, inv, ok], y, rt }) =>
    plain(() => {
      if (gatedOff(rt, node, ok)) return rt.k.copy(v.ptr, v.fmt, 0, y.ptr, y.fmt, 0, y.size);
      const args = [v.ptr, v.fmt, g.ptr, g.fmt, w.ptr, w.fmt, y.ptr, y.fmt, y.size];
      args.push(num(node, "lr"), num(node, "momentum"), num(node, "wd"), scalar(rt, inv));
      split(rt, "sgdVelocity", args, [[0, 1], [2, 3], [4, 5], [6, 7]], 8);
    }),
  sgd_apply: ({ node, x: [w, d, inv, ok, seed], y, rt }) =>
    plain(() => {
      if (gatedOff(rt, node, ok)) return rt.k.copy(w.ptr, w.fmt, 0, y.ptr, y.fmt, 0, y.size);
      const args = [w.ptr, d.ptr, d.fmt, y.ptr, y.fmt, y.size, num(node, "lr"), num(node, "wd")];
      args.push(num(node, "momentum") > 0 ? 1 : 0, scalar(rt, inv), ...seedOf(rt, node, seed));
      splitUnlessStochastic(rt, node, "sgdApply", args, [[0, 4], [1, 2], [3, 4]], 5);
    }),
  adam_moment: ({ node, x: [m, g, w, inv, ok], y, rt }) =>
    plain(() => {
      if (gatedOff(rt, node, ok)) return rt.k.copy(m.ptr, m.fmt, 0, y.ptr, y.fmt, 0, y.size);
      const args = [m.ptr, m.fmt, g.ptr, g.fmt, w.ptr, w.fmt, y.ptr, y.fmt, y.size];
      args.push(num(node, "beta"), num(node, "wd"), num(node, "power") === 2 ? 1 : 0, scalar(rt, inv));
      split(rt, "adamMoment", args, [[0, 1], [2, 3], [4, 5], [6, 7]], 8);
    }),
  adam_apply: ({ node, x: [w, m, v, alpha, ok, seed], y, rt }) =>
    plain(() => {
      if (gatedOff(rt, node, ok)) return rt.k.copy(w.ptr, w.fmt, 0, y.ptr, y.fmt, 0, y.size);
      const args = [w.ptr, m.ptr, m.fmt, v.ptr, v.fmt, y.ptr, y.fmt, y.size];
      args.push(scalar(rt, alpha), num(node, "eps"), ...seedOf(rt, node, seed));
      splitUnlessStochastic(rt, node, "adamApply", args, [[0, 6], [1, 2], [3, 4], [5, 6]], 7);
    }),
};
