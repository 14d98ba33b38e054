/**
 * The op table: every primitive op of the step graph, with its shape rule and
 * its reverse-mode derivative written next to it (micrograd style). The
 * derivative of an op is expressed with other ops of this table, so the whole
 * training step (backward included) is one graph an engine can run or lower.
 *
 * Layout conventions: images are NCHW, conv kernels are [O, C/groups, KH, KW],
 * dense kernels are [in, out], batch norm normalises over every axis but 1,
 * layer norm and softmax work on the last axis.
 *
 * @module
 */

import type { Attr, Graph, Node } from "./graph.ts";
import { sizeOf } from "./graph.ts";

/** Adds a backward node whose format is that of node `like` (a gradient has its primal's format). */
export type GradAdd = (op: string, inputs: number[], attrs: Record<string, Attr>, like: number) => number;

/** One entry of the op table. */
export interface OpDef {
  /** Number of inputs, or "variadic". */
  readonly arity: number | "variadic";
  /** Output shape from input shapes; throws a sentence-case error naming the op on bad shapes. */
  shape(inputs: readonly (readonly number[])[], attrs: Readonly<Record<string, Attr>>): number[];
  /**
   * Gradients of the inputs given the gradient `g` of the output, built with `add`.
   * `null` for inputs that take no gradient. Absent for ops that are never differentiated.
   */
  backward?(add: GradAdd, node: Node, g: number, graph: Graph): (number | null)[];
  /** True for ops that read parameters in their stored format (no cast is inserted; norm layers). */
  readonly readsStoredParams?: boolean;
  /** One line for the README's op list and error messages. */
  readonly doc: string;
}

type Shape = readonly number[];
const A = (attrs: Readonly<Record<string, Attr>>, k: string) => attrs[k] as readonly number[];
const N = (attrs: Readonly<Record<string, Attr>>, k: string) => attrs[k] as number;

function fail(op: string, msg: string): never {
  throw new Error(`Op ${op}: ${msg}`);
}

function same(op: string, a: Shape, b: Shape): number[] {
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) fail(op, `shapes [${a}] and [${b}] differ`);
  return [...a];
}

/** Output spatial size of a window op (conv or pool) along one axis. */
export function windowOut(
  size: number,
  k: number,
  stride: number,
  padBefore: number,
  padAfter: number,
): number {
  return Math.floor((size + padBefore + padAfter - k) / stride) + 1;
}

/** TensorFlow-style "same"/"valid" padding for one axis: [before, after]. */
export function padsFor(mode: "same" | "valid", size: number, k: number, stride: number): [number, number] {
  if (mode === "valid") return [0, 0];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function windowShape(
  op: string,
  x: Shape,
  c: number,
  attrs: Readonly<Record<string, Attr>>,
  k: Shape,
): number[] {
  if (x.length !== 4) fail(op, `expects an NCHW input, got [${x}]`);
  const [sh, sw] = A(attrs, "stride");
  const [pt, pl, pb, pr] = A(attrs, "pads");
  const oh = windowOut(x[2], k[0], sh, pt, pb);
  const ow = windowOut(x[3], k[1], sw, pl, pr);
  if (oh <= 0 || ow <= 0) fail(op, `window [${k}] does not fit input [${x}]`);
  return [x[0], c, oh, ow];
}

function matmulShape(op: string, a: Shape, b: Shape, ta: boolean, tb: boolean): number[] {
  if (a.length !== b.length || (a.length !== 2 && a.length !== 3)) {
    fail(op, `expects two rank-2 or two rank-3 inputs, got [${a}] and [${b}]`);
  }
  const r = a.length;
  if (r === 3 && a[0] !== b[0]) fail(op, `batch sizes ${a[0]} and ${b[0]} differ`);
  const [m, k1] = ta ? [a[r - 1], a[r - 2]] : [a[r - 2], a[r - 1]];
  const [k2, n] = tb ? [b[r - 1], b[r - 2]] : [b[r - 2], b[r - 1]];
  if (k1 !== k2) fail(op, `inner sizes ${k1} and ${k2} differ`);
  return r === 3 ? [a[0], m, n] : [m, n];
}

function unary(doc: string, gradOp: string, fromOutput: boolean): OpDef {
  return {
    arity: 1,
    doc,
    shape: ([x]) => [...x],
    backward: (add, node, g) => [add(gradOp, [fromOutput ? node.id : node.inputs[0], g], {}, node.inputs[0])],
  };
}

function unaryGrad(doc: string): OpDef {
  return { arity: 2, doc, shape: ([x, g]) => same("activation gradient", x, g) };
}

function channelsOf(op: string, x: Shape): number {
  if (x.length < 2) fail(op, `expects a rank-2+ input with channels on axis 1, got [${x}]`);
  return x[1];
}

/** Update ops take tensors shaped like the state first, then `scalars` scalar inputs. */
function updateShape(op: string, scalars: number) {
  return (s: readonly Shape[]) => {
    for (const t of s.slice(1, -scalars)) same(op, s[0], t);
    if (s.slice(-scalars).some((t) => t.length !== 0)) fail(op, `the last ${scalars} inputs must be scalars`);
    return [...s[0]];
  };
}

/** Backward of a normalisation (x, gamma, beta): input gradient plus gamma/beta rows of one packed reduction. */
function normBackward(prefix: string): OpDef["backward"] {
  return (add, node, g) => {
    const [x, gamma, beta] = node.inputs;
    const eps = { eps: node.attrs.eps };
    const packed = add(`${prefix}_grad_affine`, [x, g], eps, gamma);
    return [
      add(`${prefix}_grad_x`, [x, gamma, g], eps, x),
      add("row", [packed], { index: 0 }, gamma),
      add("row", [packed], { index: 1 }, beta),
    ];
  };
}

const OPS = {
  matmul: {
    arity: 2,
    doc: "C = op(A) op(B), rank 2 or batched rank 3, op = transpose when transA/transB",
    shape: ([a, b], at) => matmulShape("matmul", a, b, !!at.transA, !!at.transB),
    backward: (add, node, g) => {
      const [a, b] = node.inputs;
      const ta = !!node.attrs.transA, tb = !!node.attrs.transB;
      const mm = (x: number, y: number, transA: boolean, transB: boolean, like: number) =>
        add("matmul", [x, y], { transA, transB }, like);
      const ga = ta ? mm(b, g, tb, true, a) : mm(g, b, false, !tb, a);
      const gb = tb ? mm(g, a, true, ta, b) : mm(a, g, !ta, false, b);
      return [ga, gb];
    },
  },
  bias_add: {
    arity: 2,
    doc: "x + b, b broadcast over the axes before `axis` and after axis+rank(b)",
    shape: ([x, b], at) => {
      const ax = N(at, "axis");
      if (b.some((d, i) => x[ax + i] !== d)) {
        fail("bias_add", `bias [${b}] does not match [${x}] at axis ${ax}`);
      }
      return [...x];
    },
    backward: (add, node, g, graph) => {
      const b = node.inputs[1];
      const attrs = { axis: node.attrs.axis, rank: graph.node(b).shape.length };
      return [g, add("sum_to", [g], attrs, b)];
    },
  },
  sum_to: {
    arity: 1,
    doc: "sum over every axis outside [axis, axis+rank) (the gradient of bias_add)",
    shape: ([x], at) => x.slice(N(at, "axis"), N(at, "axis") + N(at, "rank")),
  },
  conv2d: {
    arity: 2,
    doc: "2-D convolution (cross-correlation), NCHW, stride, explicit pads, groups (groups = C: depthwise)",
    shape: ([x, w], at) => {
      const gr = N(at, "groups");
      if (w.length !== 4 || x[1] !== w[1] * gr || w[0] % gr !== 0) {
        fail("conv2d", `kernel [${w}] does not fit input [${x}] with ${gr} groups`);
      }
      return windowShape("conv2d", x, w[0], at, [w[2], w[3]]);
    },
    backward: (add, node, g, graph) => {
      const [x, w] = node.inputs;
      const base = { stride: node.attrs.stride, pads: node.attrs.pads, groups: node.attrs.groups };
      const ws = graph.node(w).shape;
      return [
        add("conv2d_grad_input", [g, w], { ...base, inShape: graph.node(x).shape }, x),
        add("conv2d_grad_weight", [x, g], { ...base, kernel: [ws[2], ws[3]] }, w),
      ];
    },
  },
  conv2d_grad_input: {
    arity: 2,
    doc: "gradient of conv2d with respect to its input",
    shape: (_s, at) => [...A(at, "inShape")],
  },
  conv2d_grad_weight: {
    arity: 2,
    doc: "gradient of conv2d with respect to its kernel",
    shape: ([x, g], at) => [g[1], x[1] / N(at, "groups"), ...A(at, "kernel")],
  },
  maxpool: {
    arity: 1,
    doc: "max pooling over in-bounds window elements",
    shape: ([x], at) => windowShape("maxpool", x, x[1], at, A(at, "kernel")),
    backward: (add, node, g) => [add("maxpool_grad", [node.inputs[0], g], { ...node.attrs }, node.inputs[0])],
  },
  maxpool_grad: {
    arity: 2,
    doc: "gradient of maxpool: routed to the first maximum of each window",
    shape: ([x]) => [...x],
  },
  avgpool: {
    arity: 1,
    doc: "average pooling; padding is excluded from the count (TensorFlow 'same')",
    shape: ([x], at) => windowShape("avgpool", x, x[1], at, A(at, "kernel")),
    backward: (add, node, g, graph) => [
      add("avgpool_grad", [g], { ...node.attrs, inShape: graph.node(node.inputs[0]).shape }, node.inputs[0]),
    ],
  },
  avgpool_grad: {
    arity: 1,
    doc: "gradient of avgpool",
    shape: (_s, at) => [...A(at, "inShape")],
  },
  relu: unary("max(x, 0)", "relu_grad", false),
  relu_grad: unaryGrad("g where x > 0, else 0"),
  tanh: unary("hyperbolic tangent (the project's own tanh)", "tanh_grad", true),
  tanh_grad: unaryGrad("g * (1 - y^2), from the forward output y"),
  gelu: unary("exact GELU, 0.5 x (1 + erf(x / sqrt 2))", "gelu_grad", false),
  gelu_grad: unaryGrad("g * GELU'(x)"),
  softmax: {
    arity: 1,
    doc: "max-subtracted softmax over the last axis",
    shape: ([x]) => [...x],
    backward: (add, node, g) => [add("softmax_grad", [node.id, g], {}, node.inputs[0])],
  },
  softmax_grad: {
    arity: 2,
    doc: "y * (g - sum(g * y)) over the last axis",
    shape: ([y, g]) => same("softmax_grad", y, g),
  },
  softmax_xent: {
    arity: 2,
    doc: "mean sparse softmax cross-entropy of logits [N, K] and labels [N], fused log-softmax",
    shape: ([x, l]) => {
      if (x.length !== 2 || l.length !== 1 || l[0] !== x[0]) {
        fail("softmax_xent", `bad shapes [${x}], [${l}]`);
      }
      return [];
    },
    backward: (add, node, g) => [add("softmax_xent_grad", [...node.inputs, g], {}, node.inputs[0]), null],
  },
  softmax_xent_grad: {
    arity: 3,
    doc: "(softmax(x) - onehot(label)) * g / N",
    shape: ([x]) => [...x],
  },
  count_correct: {
    arity: 2,
    doc: "number of rows whose first maximal logit is at the label",
    shape: ([x, l]) => {
      if (x.length !== 2 || l[0] !== x[0]) fail("count_correct", `bad shapes [${x}], [${l}]`);
      return [];
    },
  },
  batchnorm: {
    arity: 3,
    doc: "batch normalisation with batch statistics (training mode), channels on axis 1",
    readsStoredParams: true,
    shape: ([x, ga, be]) => {
      const c = channelsOf("batchnorm", x);
      if (ga.length !== 1 || ga[0] !== c) fail("batchnorm", `gamma [${ga}] does not match ${c} channels`);
      same("batchnorm", ga, be);
      return [...x];
    },
    backward: normBackward("batchnorm"),
  },
  batchnorm_grad_x: {
    arity: 3,
    doc: "gradient of batchnorm with respect to x, through the batch statistics",
    shape: ([x]) => [...x],
  },
  batchnorm_grad_affine: {
    arity: 2,
    doc: "[sum(g * xhat), sum(g)] per channel: the gamma and beta gradients",
    shape: ([x]) => [2, x[1]],
  },
  batchnorm_infer: {
    arity: 5,
    doc: "batch normalisation with moving statistics (inference mode)",
    readsStoredParams: true,
    shape: ([x]) => [...x],
  },
  moments: {
    arity: 1,
    doc: "[mean, biased variance] per channel (axis 1), for the moving statistics",
    shape: ([x]) => [2, channelsOf("moments", x)],
  },
  ema: {
    arity: 2,
    doc: "moving average r - (r - v) * (1 - momentum) with v = moments[index], Keras form",
    shape: ([r, m], at) => {
      if (m.length !== 2 || r.length !== 1 || m[1] !== r[0] || N(at, "index") > 1) {
        fail("ema", `[${r}] vs [${m}]`);
      }
      return [...r];
    },
  },
  layernorm: {
    arity: 3,
    doc: "layer normalisation over the last axis",
    readsStoredParams: true,
    shape: ([x, ga, be]) => {
      if (ga.length !== 1 || ga[0] !== x.at(-1)) fail("layernorm", `gamma [${ga}] does not match [${x}]`);
      same("layernorm", ga, be);
      return [...x];
    },
    backward: normBackward("layernorm"),
  },
  layernorm_grad_x: {
    arity: 3,
    doc: "gradient of layernorm with respect to x",
    shape: ([x]) => [...x],
  },
  layernorm_grad_affine: {
    arity: 2,
    doc: "[sum(g * xhat), sum(g)] per feature: the gamma and beta gradients",
    shape: ([x]) => [2, x.at(-1)!],
  },
  row: {
    arity: 1,
    doc: "t[index] of a packed [k, ...] tensor",
    shape: ([t], at) => {
      if (N(at, "index") >= t[0]) fail("row", `index ${at.index} out of range for [${t}]`);
      return t.slice(1);
    },
  },
  dropout: {
    arity: 2,
    doc: "x * mask / (1 - rate), mask from a counter hash of (seed input, salt, element)",
    shape: ([x, s]) => {
      if (s.length !== 0) fail("dropout", "the seed input must be a scalar");
      return [...x];
    },
    backward: (
      add,
      node,
      g,
    ) => [add("dropout", [g, node.inputs[1]], { ...node.attrs }, node.inputs[0]), null],
  },
  reshape: {
    arity: 1,
    doc: "same elements, new shape",
    shape: ([x], at) => {
      const s = A(at, "shape");
      if (sizeOf(s) !== sizeOf(x)) fail("reshape", `[${x}] to [${s}]`);
      return [...s];
    },
    backward: (add, node, g, graph) => [
      add("reshape", [g], { shape: graph.node(node.inputs[0]).shape }, node.inputs[0]),
    ],
  },
  transpose: {
    arity: 1,
    doc: "permute axes",
    shape: ([x], at) => {
      const p = A(at, "perm");
      if (p.length !== x.length || [...p].sort().some((v, i) => v !== i)) {
        fail("transpose", `bad perm [${p}]`);
      }
      return p.map((i) => x[i]);
    },
    backward: (add, node, g) => {
      const p = A(node.attrs, "perm");
      const inv = p.map((_, i) => p.indexOf(i));
      return [add("transpose", [g], { perm: inv }, node.inputs[0])];
    },
  },
  add: {
    arity: 2,
    doc: "a + b, same shapes",
    shape: ([a, b]) => same("add", a, b),
    backward: (_add, _node, g) => [g, g],
  },
  scale: {
    arity: 1,
    doc: "x * factor (a constant attribute)",
    shape: ([x]) => [...x],
    backward: (add, node, g) => [add("scale", [g], { ...node.attrs }, node.inputs[0])],
  },
  concat: {
    arity: "variadic",
    doc: "concatenate along an axis",
    shape: (xs, at) => {
      const ax = N(at, "axis");
      const out = [...xs[0]];
      for (const x of xs.slice(1)) {
        if (x.length !== out.length || x.some((d, i) => i !== ax && d !== out[i])) fail("concat", `[${x}]`);
        out[ax] += x[ax];
      }
      return out;
    },
    backward: (add, node, g, graph) => {
      let start = 0;
      const ax = N(node.attrs, "axis");
      return node.inputs.map((i) => {
        const size = graph.node(i).shape[ax];
        const s = add("slice", [g], { axis: ax, start, size }, i);
        start += size;
        return s;
      });
    },
  },
  slice: {
    arity: 1,
    doc: "x[..., start:start+size, ...] along an axis",
    shape: ([x], at) => {
      const ax = N(at, "axis");
      if (N(at, "start") + N(at, "size") > x[ax]) fail("slice", `out of range for [${x}]`);
      return x.map((d, i) => (i === ax ? N(at, "size") : d));
    },
  },
  pad_channels: {
    arity: 1,
    doc: "zero channels before and after (axis 1), the ResNet option-A shortcut",
    shape: ([x], at) => x.map((d, i) => (i === 1 ? d + N(at, "before") + N(at, "after") : d)),
    backward: (add, node, g, graph) => [
      add(
        "slice",
        [g],
        { axis: 1, start: node.attrs.before, size: graph.node(node.inputs[0]).shape[1] },
        node.inputs[0],
      ),
    ],
  },
  cast: {
    arity: 1,
    doc: "round to the node's format (inserted by the precision policy pass)",
    shape: ([x]) => [...x],
    backward: (add, node, g) => [add("cast", [g], {}, node.inputs[0])],
  },
  all_finite: {
    arity: "variadic",
    doc: "1 when every element of every input is finite, else 0",
    shape: () => [],
  },
  count_lost: {
    arity: "variadic",
    doc: "(w, w', step) triples -> how many elements had a nonzero step and kept w' == w (lost updates)",
    shape: (xs) => {
      if (xs.length % 3) fail("count_lost", `takes (w, w', step) triples, got ${xs.length} inputs`);
      for (let k = 0; k < xs.length; k += 3) {
        same("count_lost", same("count_lost", xs[k], xs[k + 1]), xs[k + 2]);
      }
      return [];
    },
  },
  sgd_velocity: {
    arity: 5,
    doc: "(v, g, w, invScale, ok) -> momentum * v - lr * (g * invScale + wd * w), Keras SGD",
    shape: updateShape("sgd_velocity", 2),
  },
  sgd_apply: {
    arity: 5,
    doc:
      "(w, d, invScale, ok, seed) -> w + d (d = velocity, momentum > 0) or w - lr * (d * invScale + wd * w)",
    shape: updateShape("sgd_apply", 3),
  },
  adam_moment: {
    arity: 5,
    doc: "(m, g, w, invScale, ok) -> m + (g^p - m) * (1 - beta), p = 1 or 2",
    shape: updateShape("adam_moment", 2),
  },
  adam_apply: {
    arity: 6,
    doc: "(w, m, v, alpha, ok, seed) -> w - alpha * m / (sqrt(v) + eps), alpha the bias-corrected rate",
    shape: updateShape("adam_apply", 3),
  },
} satisfies Record<string, OpDef>;

/**
 * The name of an op of the step graph. Engines type their op tables as `Record<OpName, ...>`, so a table that
 * misses an op fails `deno check`.
 */
export type OpName = keyof typeof OPS;

/** The op definition for `name`, or an error naming the unknown op. */
export function opDef(name: string): OpDef {
  const d: OpDef | undefined = Object.hasOwn(OPS, name) ? OPS[name as OpName] : undefined;
  if (!d) throw new Error(`Unknown op "${name}"`);
  return d;
}

/** Every op name, sorted. */
export const OP_NAMES: readonly OpName[] = (Object.keys(OPS) as OpName[]).sort();
