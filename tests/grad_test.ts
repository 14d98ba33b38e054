/**
 * Gradient checks: the backward of every differentiable op in lib/graph/ops.ts,
 * run on the ref kernels in fp64, against float64 central finite differences of
 * L = sum(c * y) with fixed random coefficients c.
 */

import assert from "node:assert/strict";
import { sizeOf } from "../lib/graph/graph.ts";
import { OP_NAMES, opDef } from "../lib/graph/ops.ts";
import { Rng } from "../lib/random.ts";
import {
  awayFromZero,
  checkGradients,
  distinct,
  type GradCase,
  type LeafSpec,
  type OpFn,
  uniform,
} from "./support/graph_harness.ts";

type Gen = (rng: Rng, n: number) => Float64Array;

/** Data for a leaf; `stream` names the random stream so cases do not share values. */
function leaf(stream: string, shape: readonly number[], gen: Gen = (r, n) => uniform(r, n)): LeafSpec {
  return { shape, data: gen(new Rng(2024, stream), sizeOf(shape)) };
}

/** A leaf with given values. */
function fixed(shape: readonly number[], values: readonly number[]): LeafSpec {
  return { shape, data: Float64Array.from(values) };
}

/** A case with one param `x` of `shape` and one op applied to it. */
function unaryCase(name: string, op: string, shape: number[], attrs = {}, gen?: Gen): GradCase {
  return {
    name,
    params: { x: leaf(name, shape, gen) },
    forward: (f, l) => f(op, [l.x], attrs),
  };
}

/** Shapes of matmul operands for op(A) [.., m, k], op(B) [.., k, n]. */
function matmulCase(batch: number | undefined, ta: boolean, tb: boolean): GradCase {
  const [m, k, n] = [3, 4, 5];
  const pre = batch === undefined ? [] : [batch];
  const name = `matmul rank ${pre.length + 2} transA=${ta} transB=${tb}`;
  return {
    name,
    params: {
      a: leaf(`${name} a`, [...pre, ...(ta ? [k, m] : [m, k])]),
      b: leaf(`${name} b`, [...pre, ...(tb ? [n, k] : [k, n])]),
    },
    forward: (f, l) => f("matmul", [l.a, l.b], { transA: ta, transB: tb }),
  };
}

function biasCase(name: string, xShape: number[], bShape: number[]): GradCase {
  return {
    name,
    params: { x: leaf(`${name} x`, xShape), b: leaf(`${name} b`, bShape) },
    forward: (f, l) => f("bias_add", [l.x, l.b], { axis: 1 }),
  };
}

function convCase(
  name: string,
  xShape: number[],
  wShape: number[],
  attrs: { stride: number[]; pads: number[]; groups: number },
): GradCase {
  return {
    name,
    params: { x: leaf(`${name} x`, xShape), w: leaf(`${name} w`, wShape) },
    forward: (f, l) => f("conv2d", [l.x, l.w], attrs),
  };
}

function normCase(op: "batchnorm" | "layernorm", shape: number[], eps: number): GradCase {
  const c = op === "batchnorm" ? shape[1] : shape.at(-1)!;
  const name = `${op} [${shape}]`;
  return {
    name,
    params: {
      x: leaf(`${name} x`, shape, (r, n) => uniform(r, n, -2, 2)),
      gamma: leaf(`${name} gamma`, [c], (r, n) => uniform(r, n, 0.5, 1.5)),
      beta: leaf(`${name} beta`, [c]),
    },
    forward: (f, l) => f(op, [l.x, l.gamma, l.beta], { eps }),
  };
}

const CASES: GradCase[] = [
  // matmul: every transpose combination, plain and batched.
  ...[undefined, 2].flatMap((batch) =>
    [false, true].flatMap((ta) => [false, true].map((tb) => matmulCase(batch, ta, tb)))
  ),
  // bias_add: channel bias on images, [T, D] bias on sequences, dense bias.
  biasCase("bias_add NCHW bias [C]", [2, 3, 2, 3], [3]),
  biasCase("bias_add [N,T,D] bias [T,D]", [2, 3, 4], [3, 4]),
  biasCase("bias_add [N,D] bias [D]", [4, 5], [5]),
  // conv2d: strides, valid / asymmetric / symmetric pads, groups, depthwise, non-square everything.
  convCase("conv2d stride 1 valid", [2, 3, 5, 6], [4, 3, 3, 3], {
    stride: [1, 1],
    pads: [0, 0, 0, 0],
    groups: 1,
  }),
  convCase("conv2d stride 2 pads [0,0,1,1]", [1, 2, 6, 5], [3, 2, 3, 3], {
    stride: [2, 2],
    pads: [0, 0, 1, 1],
    groups: 1,
  }),
  convCase("conv2d stride 1 pads [1,1,1,1]", [2, 2, 5, 7], [3, 2, 3, 3], {
    stride: [1, 1],
    pads: [1, 1, 1, 1],
    groups: 1,
  }),
  convCase("conv2d stride 2 valid, uncovered rows", [1, 2, 6, 7], [2, 2, 3, 3], {
    stride: [2, 2],
    pads: [0, 0, 0, 0],
    groups: 1,
  }),
  convCase("conv2d depthwise stride 2 pads [1,1,1,1]", [2, 3, 5, 6], [3, 1, 3, 3], {
    stride: [2, 2],
    pads: [1, 1, 1, 1],
    groups: 3,
  }),
  convCase("conv2d depthwise stride 1 pads [0,0,1,1]", [1, 3, 4, 6], [3, 1, 2, 2], {
    stride: [1, 1],
    pads: [0, 0, 1, 1],
    groups: 3,
  }),
  convCase("conv2d depthwise multiplier 2", [1, 2, 4, 5], [4, 1, 3, 3], {
    stride: [1, 1],
    pads: [1, 1, 1, 1],
    groups: 2,
  }),
  convCase("conv2d groups 2, stride [2,1], kernel [3,2]", [1, 4, 5, 4], [6, 2, 3, 2], {
    stride: [2, 1],
    pads: [1, 0, 1, 1],
    groups: 2,
  }),
  // pooling: distinct inputs so maxima are never tied.
  unaryCase("maxpool kernel 2 stride 2", "maxpool", [2, 2, 4, 6], {
    kernel: [2, 2],
    stride: [2, 2],
    pads: [0, 0, 0, 0],
  }, distinct),
  unaryCase("maxpool kernel 3 stride 2 (overlap)", "maxpool", [1, 2, 7, 5], {
    kernel: [3, 3],
    stride: [2, 2],
    pads: [0, 0, 0, 0],
  }, distinct),
  unaryCase("maxpool kernel 3 stride 2 pads [1,1,1,1]", "maxpool", [1, 2, 5, 6], {
    kernel: [3, 3],
    stride: [2, 2],
    pads: [1, 1, 1, 1],
  }, distinct),
  unaryCase("avgpool kernel 3 stride 2 pads [1,1,1,1]", "avgpool", [2, 2, 5, 6], {
    kernel: [3, 3],
    stride: [2, 2],
    pads: [1, 1, 1, 1],
  }),
  unaryCase("avgpool kernel 2 stride 2 valid", "avgpool", [1, 2, 4, 5], {
    kernel: [2, 2],
    stride: [2, 2],
    pads: [0, 0, 0, 0],
  }),
  // activations
  unaryCase("relu", "relu", [3, 7], {}, awayFromZero),
  unaryCase("tanh", "tanh", [3, 7], {}, (r, n) => uniform(r, n, -3, 3)),
  unaryCase("gelu", "gelu", [3, 7], {}, (r, n) => uniform(r, n, -4, 4)),
  unaryCase("softmax [B,T,T]", "softmax", [2, 4, 4], {}, (r, n) => uniform(r, n, -3, 3)),
  {
    name: "softmax_xent",
    params: { x: leaf("softmax_xent x", [4, 5], (r, n) => uniform(r, n, -3, 3)) },
    inputs: { labels: fixed([4], [0, 3, 1, 4]) },
    forward: (f, l) => f("softmax_xent", [l.x, l.labels]),
  },
  // normalisation: x, gamma and beta are all checked.
  normCase("batchnorm", [6, 3], 1e-3),
  normCase("batchnorm", [2, 3, 2, 3], 1e-3),
  normCase("layernorm", [2, 3, 5], 1e-5),
  {
    name: "dropout rate 0.3",
    params: { x: leaf("dropout x", [4, 6]) },
    inputs: { seed: fixed([], [12345]) },
    forward: (f, l) => f("dropout", [l.x, l.seed], { rate: 0.3, salt: 7 }),
  },
  // data movement
  unaryCase("reshape", "reshape", [2, 3, 4], { shape: [4, 6] }),
  unaryCase("transpose perm [0,2,1,3]", "transpose", [2, 3, 4, 2], { perm: [0, 2, 1, 3] }),
  unaryCase("transpose perm [0,2,3,1] (not an involution)", "transpose", [2, 3, 4, 2], {
    perm: [0, 2, 3, 1],
  }),
  unaryCase("transpose perm [3,1,0,2]", "transpose", [2, 3, 4, 2], { perm: [3, 1, 0, 2] }),
  {
    name: "add",
    params: { a: leaf("add a", [3, 4]), b: leaf("add b", [3, 4]) },
    forward: (f, l) => f("add", [l.a, l.b]),
  },
  {
    name: "add x + x (one param twice)",
    params: { x: leaf("add x", [3, 4]) },
    forward: (f, l) => f("add", [l.x, l.x]),
  },
  unaryCase("scale", "scale", [3, 4], { factor: -1.7 }),
  {
    name: "concat axis 1, 3 inputs",
    params: {
      a: leaf("concat a", [2, 1, 3]),
      b: leaf("concat b", [2, 2, 3]),
      c: leaf("concat c", [2, 3, 3]),
    },
    forward: (f, l) => f("concat", [l.a, l.b, l.c], { axis: 1 }),
  },
  {
    name: "concat axis 2, 2 inputs",
    params: { a: leaf("concat2 a", [2, 2, 1]), b: leaf("concat2 b", [2, 2, 3]) },
    forward: (f, l) => f("concat", [l.a, l.b], { axis: 2 }),
  },
  unaryCase("pad_channels", "pad_channels", [2, 3, 2, 2], { before: 1, after: 2 }),
  unaryCase("cast fp64 -> fp64", "cast", [3, 4]),
];

/** relu(x W + b), W [in, out] a param. */
function dense(f: OpFn, x: number, w: number, b: number): number {
  return f("bias_add", [f("matmul", [x, w]), b], { axis: 1 });
}

const COMPOSED: GradCase[] = [
  {
    // W1 feeds two matmuls, so its gradient is the autodiff sum of two contributions.
    name: "2-layer network with a shared weight",
    params: {
      w1: leaf("net w1", [5, 5], (r, n) => uniform(r, n, -0.8, 0.8)),
      b1: leaf("net b1", [5], (r, n) => uniform(r, n, -0.2, 0.2)),
      w2: leaf("net w2", [5, 3]),
      b2: leaf("net b2", [3]),
    },
    inputs: { x: leaf("net x", [4, 5]), labels: fixed([4], [2, 0, 1, 2]) },
    forward: (f, l) => {
      const h = f("relu", [dense(f, l.x, l.w1, l.b1)]);
      const h2 = f("matmul", [h, l.w1]);
      return f("softmax_xent", [dense(f, h2, l.w2, l.b2), l.labels]);
    },
  },
  {
    name: "self-attention (x as query, key and value)",
    params: { x: leaf("attn x", [2, 4, 3]) },
    forward: (f, l) => {
      const s = f("scale", [f("matmul", [l.x, l.x], { transB: true })], { factor: 1 / Math.sqrt(3) });
      return f("matmul", [f("softmax", [s]), l.x]);
    },
  },
  {
    name: "self-attention (separate q, k, v)",
    params: { q: leaf("attn q", [2, 4, 3]), k: leaf("attn k", [2, 5, 3]), v: leaf("attn v", [2, 5, 2]) },
    forward: (f, l) => {
      const s = f("scale", [f("matmul", [l.q, l.k], { transB: true })], { factor: 1 / Math.sqrt(3) });
      return f("matmul", [f("softmax", [s]), l.v]);
    },
  },
];

for (const c of [...CASES, ...COMPOSED]) {
  Deno.test(`gradient: ${c.name}`, () => {
    const { maxError, checked } = checkGradients(c);
    assert.ok(checked > 0);
    assert.ok(maxError <= 1e-6, `max error ${maxError}`);
  });
}

Deno.test("gradient: every op with a backward has a case", () => {
  const covered = new Set<string>();
  // The op names a case uses are read from the forward builder by recording its calls.
  for (const c of [...CASES, ...COMPOSED]) {
    const ids: Record<string, number> = {};
    let next = 0;
    for (const k of [...Object.keys(c.params), ...Object.keys(c.inputs ?? {})]) ids[k] = next++;
    c.forward((op) => {
      covered.add(op);
      return next++;
    }, ids);
  }
  const differentiable = OP_NAMES.filter((n) => opDef(n).backward !== undefined);
  assert.deepEqual(differentiable.filter((n) => !covered.has(n)), []);
});

Deno.test("gradient check harness: a wrong backward is caught", () => {
  // Sanity of the harness itself: scale's backward is temporarily made 1% off, which must fail the check.
  const def = opDef("scale") as { backward?: NonNullable<ReturnType<typeof opDef>["backward"]> };
  const original = def.backward!;
  def.backward = (
    add,
    node,
    g,
  ) => [add("scale", [g], { factor: (node.attrs.factor as number) * 1.01 }, node.inputs[0])];
  try {
    assert.throws(
      () => checkGradients(unaryCase("scale (broken)", "scale", [2, 3], { factor: 2 })),
      /gradient elements wrong/,
    );
  } finally {
    def.backward = original;
  }
  assert.ok(checkGradients(unaryCase("scale (restored)", "scale", [2, 3], { factor: 2 })).maxError <= 1e-6);
});
