/**
 * The wasm engine's op table: for each op of the step graph, a lowering that binds the node's buffers,
 * formats and attributes to kernel calls once, at compile time. Matmul, convolutions and pooling are in
 * lower_window.ts; elementwise ops, data movement, softmax, normalisation and optimizer updates here.
 *
 * @module
 */

import type { Node } from "../../lib/graph/graph.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { WINDOW_LOWERINGS } from "./lower_window.ts";
import { Groups, type KernelArgs, Map1, Map2 } from "./kernels_wasm.ts";
import {
  at,
  call,
  list,
  type LowerArgs,
  type Lowered,
  type Lowering,
  num,
  type Operand,
  plain,
  prod,
  type Runtime,
  scalar,
  shares,
  split,
  SPLIT_MIN,
  splitSum,
  type Tensors,
} from "./lowering.ts";
import { elementIndex } from "./memory.ts";

export type { LowerArgs, Lowered, Operand, Runtime } from "./lowering.ts";

// ---------------------------------------------------------------- elementwise, bias, data movement

type Map1Op = typeof Map1[keyof typeof Map1];
type Map2Op = typeof Map2[keyof typeof Map2];

const map1 = (op: Map1Op, factor?: (n: Node) => number): Lowering => ({ node, x: [x], y, rt }) => {
  const args = { op, x: x.ptr, fx: x.fmt, y: y.ptr, fy: y.fmt, n: y.size, factor: factor?.(node) ?? 0 };
  return plain(() => split(rt, "map1", args, { x: "fx", y: "fy" }, "n"));
};
const map2 = (op: Map2Op): Lowering => ({ x: [a, b], y, rt }) => {
  const args = { op, a: a.ptr, fa: a.fmt, b: b.ptr, fb: b.fmt, y: y.ptr, fy: y.fmt, n: y.size };
  return plain(() => split(rt, "map2", args, { a: "fa", b: "fb", y: "fy" }, "n"));
};

function bcast(node: Node, xs: readonly number[], rank: number) {
  const axis = num(node, "axis");
  return [prod(xs, 0, axis), prod(xs, axis, axis + rank), prod(xs, axis + rank)] as const;
}

const copyAll: Lowering = ({ x: [x], y, rt }) =>
  plain(() => rt.k.copy(x.ptr, x.fmt, 0, y.ptr, y.fmt, 0, y.size));

/** Writes one number to a one-element output through the arena (count_correct, all_finite, count_lost). */
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

/**
 * Sets the groups of a normalisation over `shape` on every thread (each has its own instance); returns one
 * [c0, c1) range of groups per thread that takes part (one range, all groups, for small tensors). Groups
 * are independent, so the split changes no bit.
 */
function groups(rt: Runtime, kind: Norm, shape: readonly number[]): [number, number][] {
  const d = shape.at(-1)!;
  const args = kind === "batchnorm"
    ? { kind: Groups.CHANNELS, n: shape[0], c: shape[1], s: prod(shape, 2) }
    : { kind: Groups.ROWS, n: 0, c: prod(shape) / d, s: d };
  // A small tensor runs on the calling thread alone: only its instance needs the groups.
  if (prod(shape) < SPLIT_MIN) {
    call(rt, "setGroups", args);
    return [[0, args.c]];
  }
  rt.parallel("setGroups", Array.from({ length: rt.threads }, () => args));
  return shares(args.c, rt.threads);
}

/** Runs a normalisation kernel once per range of groups, each range on its own thread. */
function byGroups<K extends "stats" | "normalize" | "affineGrad" | "inputGrad">(
  rt: Runtime,
  kernel: K,
  ranges: readonly [number, number][],
  args: Omit<KernelArgs[K], "c0" | "c1">,
) {
  rt.parallel(kernel, ranges.map(([c0, c1]) => ({ ...args, c0, c1 }) as KernelArgs[K]));
}

function normFamily<P extends Norm>(kind: P): Record<P | `${P}_grad_x` | `${P}_grad_affine`, Lowering> {
  const perGroup = kind === "batchnorm";
  const statsBytes = (shape: readonly number[]) =>
    3 * 8 * (kind === "batchnorm" ? shape[1] : prod(shape) / shape.at(-1)!);
  /** Sets the groups, fills the statistics at `s` and returns the threads' ranges of groups. */
  const prepare = (rt: Runtime, node: Node, x: Operand, s: number, acc: number) => {
    const ranges = groups(rt, kind, x.shape);
    byGroups(rt, "stats", ranges, { x: x.ptr, fx: x.fmt, eps: num(node, "eps"), s, acc });
    return ranges;
  };
  const table: Record<string, Lowering> = {
    [kind]: ({ node, x: [x, gamma, beta], y, acc, rt }) =>
      plain((s) => {
        const ranges = prepare(rt, node, x, s, acc);
        byGroups(rt, "normalize", ranges, {
          ...{ x: x.ptr, fx: x.fmt, s, gamma: gamma.ptr, fg: gamma.fmt, beta: beta.ptr, fb: beta.fmt },
          ...{ y: y.ptr, fy: y.fmt, perGroup },
        });
      }, statsBytes(x.shape)),
    [`${kind}_grad_x`]: ({ node, x: [x, gamma, gy], y, acc, rt }) =>
      plain((s) => {
        const ranges = prepare(rt, node, x, s, acc);
        byGroups(rt, "inputGrad", ranges, {
          ...{ x: x.ptr, fx: x.fmt, gamma: gamma.ptr, fg: gamma.fmt, gy: gy.ptr, fgy: gy.fmt, s },
          ...{ dx: y.ptr, fd: y.fmt, perGroup, acc },
        });
      }, statsBytes(x.shape)),
    [`${kind}_grad_affine`]: ({ node, x: [x, gy], y, acc, rt }) => {
      const st = statsBytes(x.shape);
      return plain((s) => {
        const ranges = prepare(rt, node, x, s, acc);
        // Per element of a row (layer norm) every row adds into every sum: one range, in row order.
        const count = ranges.at(-1)![1];
        byGroups(rt, "affineGrad", perGroup ? ranges : [[0, count]], {
          ...{ x: x.ptr, fx: x.fmt, gy: gy.ptr, fgy: gy.fmt, s, r: y.ptr, fr: y.fmt, perGroup },
          ...{ tmp: s + st, acc },
        });
      }, st + y.size * 8);
    },
  };
  // The keys are the three names of the family, which the computed keys cannot state.
  return table as Record<P | `${P}_grad_x` | `${P}_grad_affine`, Lowering>;
}

// ---------------------------------------------------------------- optimizer

/** True when the node is gated and its `ok` input says the gradients were not finite: the state is kept. */
function gatedOff(rt: Runtime, node: Node, ok: Operand): boolean {
  return !!node.attrs.gated && scalar(rt, ok) === 0;
}

/** Stochastic rounding hashes each element's index, so such an update runs whole, on one thread. */
function splitUnlessStochastic<K extends "sgdApply" | "adamApply">(
  rt: Runtime,
  kernel: K,
  args: KernelArgs[K],
  tensors: Tensors<K>,
) {
  if (args.stochastic) call(rt, kernel, args);
  else split(rt, kernel, args, tensors, "n");
}

/** The rounding arguments of an update: stochastic (seeded) or nearest. */
function seedOf(rt: Runtime, node: Node, seed: Operand) {
  return node.attrs.stochastic
    ? { stochastic: true, seed: scalar(rt, seed) >>> 0, salt: num(node, "salt") >>> 0 }
    : { stochastic: false, seed: 0, salt: 0 };
}

/**
 * An sgd_velocity node and the momentum sgd_apply that reads its output, lowered together into one pass
 * (`sgdMomentum`, the same bits as the two kernels). The pair runs at the velocity's place, so every other
 * input of the apply must be ready there, and the apply's own step does nothing.
 */
export function lowerMomentumPair(velocity: LowerArgs, apply: LowerArgs): [Lowered, Lowered] {
  const { node, x: [v, g, w, inv, ok], y, rt } = velocity, yw = apply.y;
  const [alone, aloneApply] = [LOWERINGS.sgd_velocity(velocity), LOWERINGS.sgd_apply(apply)];
  const fused = plain(() => {
    if (gatedOff(rt, node, ok) || gatedOff(rt, apply.node, apply.x[3])) {
      // A gated step copies (each node asked on its own, though one flag gates both).
      alone.run(0);
      return aloneApply.run(0);
    }
    const args = {
      ...{ v: v.ptr, fv: v.fmt, g: g.ptr, fg: g.fmt, w: w.ptr, fw: w.fmt, yv: y.ptr, f: y.fmt, yw: yw.ptr },
      ...{ fw2: yw.fmt, n: y.size, lr: num(node, "lr"), mom: num(node, "momentum"), wd: num(node, "wd") },
      inv: scalar(rt, inv),
    };
    split(rt, "sgdMomentum", args, { v: "fv", g: "fg", w: "fw", yv: "f", yw: "fw2" }, "n");
  });
  return [fused, plain(() => {})];
}

// ---------------------------------------------------------------- the table

/** Every op of the step graph and its lowering. */
export const LOWERINGS: Readonly<Record<OpName, Lowering>> = {
  ...WINDOW_LOWERINGS,
  relu: map1(Map1.RELU),
  tanh: map1(Map1.TANH),
  gelu: map1(Map1.GELU),
  scale: map1(Map1.SCALE, (n) => num(n, "factor")),
  cast: map1(Map1.CAST),
  relu_grad: map2(Map2.RELU_GRAD),
  tanh_grad: map2(Map2.TANH_GRAD),
  gelu_grad: map2(Map2.GELU_GRAD),
  add: map2(Map2.ADD),
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
  // The checks read what every thread just wrote: each thread checks its own range (the optimizer's split).
  all_finite: ({ x, y, rt }) =>
    plain((s) => {
      const bad = (o: Operand) =>
        splitSum(rt, "nonFiniteInto", { x: o.ptr, fx: o.fmt, n: o.size }, { x: "fx" }, "n", s);
      writeScalar(rt, y, x.every((o) => bad(o) === 0) ? 1 : 0);
    }, 4 * rt.threads),
  count_lost: ({ x, y, rt }) =>
    plain((s) => {
      let lost = 0;
      for (let k = 0; k < x.length; k += 3) {
        const [w0, w1, step] = [x[k], x[k + 1], x[k + 2]];
        const args = { w0: w0.ptr, w1: w1.ptr, fw: w0.fmt, s: step.ptr, fs: step.fmt, n: w0.size };
        lost += splitSum(rt, "countLostInto", args, { w0: "fw", w1: "fw", s: "fs" }, "n", s);
      }
      writeScalar(rt, y, lost);
    }, 4 * rt.threads),
  bias_add: ({ node, x: [x, b], y, rt }) => {
    const [outer, mid, inner] = bcast(node, x.shape, b.shape.length);
    const args = { x: x.ptr, fx: x.fmt, b: b.ptr, fb: b.fmt, y: y.ptr, fy: y.fmt, outer, mid, inner };
    if (rt.threads === 1 || x.size < SPLIT_MIN) return plain(() => call(rt, "biasAdd", args));
    // One range of the outer index per thread.
    const rows = shares(outer, rt.threads).map(([o0, o1]) => {
      const skip = o0 * mid * inner;
      return { ...args, x: at(x, skip), y: at(y, skip), outer: o1 - o0 };
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
      rt.arena.views.i32.set(dims, elementIndex(s, 4));
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
      const ranges = groups(rt, "batchnorm", x.shape);
      rt.k.inferStats(mean.ptr, mean.fmt, variance.ptr, variance.fmt, num(node, "eps"), s, acc);
      byGroups(rt, "normalize", ranges, {
        ...{ x: x.ptr, fx: x.fmt, s, gamma: gamma.ptr, fg: gamma.fmt, beta: beta.ptr, fb: beta.fmt },
        ...{ y: y.ptr, fy: y.fmt, perGroup: true },
      });
    }, 3 * x.shape[1] * 8),
  moments: ({ x: [x], y, acc, rt }) =>
    plain((s) => {
      byGroups(rt, "stats", groups(rt, "batchnorm", x.shape), { x: x.ptr, fx: x.fmt, eps: 0, s, acc });
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
      const args = {
        ...{ v: v.ptr, fv: v.fmt, g: g.ptr, fg: g.fmt, w: w.ptr, fw: w.fmt, y: y.ptr, f: y.fmt, n: y.size },
        ...{ lr: num(node, "lr"), mom: num(node, "momentum"), wd: num(node, "wd"), inv: scalar(rt, inv) },
      };
      split(rt, "sgdVelocity", args, { v: "fv", g: "fg", w: "fw", y: "f" }, "n");
    }),
  sgd_apply: ({ node, x: [w, d, inv, ok, seed], y, rt }) =>
    plain(() => {
      if (gatedOff(rt, node, ok)) return rt.k.copy(w.ptr, w.fmt, 0, y.ptr, y.fmt, 0, y.size);
      const args = {
        ...{ w: w.ptr, d: d.ptr, fd: d.fmt, y: y.ptr, f: y.fmt, n: y.size, lr: num(node, "lr") },
        ...{ wd: num(node, "wd"), momentum: num(node, "momentum") > 0, inv: scalar(rt, inv) },
        ...seedOf(rt, node, seed),
      };
      // The weights are in the output's format (the update reads them as `f`).
      splitUnlessStochastic(rt, "sgdApply", args, { w: "f", d: "fd", y: "f" });
    }),
  adam_moment: ({ node, x: [m, g, w, inv, ok], y, rt }) =>
    plain(() => {
      if (gatedOff(rt, node, ok)) return rt.k.copy(m.ptr, m.fmt, 0, y.ptr, y.fmt, 0, y.size);
      const args = {
        ...{ m: m.ptr, fm: m.fmt, g: g.ptr, fg: g.fmt, w: w.ptr, fw: w.fmt, y: y.ptr, f: y.fmt, n: y.size },
        ...{ beta: num(node, "beta"), wd: num(node, "wd"), square: num(node, "power") === 2 },
        inv: scalar(rt, inv),
      };
      split(rt, "adamMoment", args, { m: "fm", g: "fg", w: "fw", y: "f" }, "n");
    }),
  adam_apply: ({ node, x: [w, m, v, alpha, ok, seed], y, rt }) =>
    plain(() => {
      if (gatedOff(rt, node, ok)) return rt.k.copy(w.ptr, w.fmt, 0, y.ptr, y.fmt, 0, y.size);
      const args = {
        ...{ w: w.ptr, m: m.ptr, fm: m.fmt, v: v.ptr, fv: v.fmt, y: y.ptr, f: y.fmt, n: y.size },
        ...{ alpha: scalar(rt, alpha), eps: num(node, "eps") },
        ...seedOf(rt, node, seed),
      };
      // The weights are in the output's format (the update reads them as `f`).
      splitUnlessStochastic(rt, "adamApply", args, { w: "f", m: "fm", v: "fv", y: "f" });
    }),
};
