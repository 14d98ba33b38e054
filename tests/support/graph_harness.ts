/**
 * Test helpers: build small step graphs by hand, run them on the ref kernels,
 * and check gradients against float64 central finite differences.
 *
 * @module
 */

import { runGraph } from "../../kernels/ref/mod.ts";
import type { HostTensor } from "../../kernels/engine.ts";
import type { FormatName } from "../../lib/formats/format.ts";
import { backward } from "../../lib/graph/autodiff.ts";
import { type Attr, Graph, sizeOf } from "../../lib/graph/graph.ts";
import { Rng } from "../../lib/random.ts";

/** A host tensor from a shape, a format and values (assumed already representable in the format). */
export function tensor(shape: readonly number[], format: FormatName, data: ArrayLike<number>): HostTensor {
  if (data.length !== sizeOf(shape)) throw new Error(`tensor: ${data.length} values for shape [${shape}]`);
  return { shape: [...shape], format, data: Float64Array.from(data) };
}

/** A rank-0 tensor. */
export function scalar(format: FormatName, v: number): HostTensor {
  return tensor([], format, [v]);
}

/** Options of {@linkcode runOp}. */
export interface RunOpOptions {
  /** Output format of the op node (default: the first input's format). */
  format?: FormatName;
  /** Accumulate format of the graph (default "fp32"). */
  accumulate?: FormatName;
}

/** Runs one op on input leaves `in0`, `in1`, ... fed with `inputs` and returns its output tensor. */
export function runOp(
  op: string,
  inputs: readonly HostTensor[],
  attrs: Record<string, Attr> = {},
  opts: RunOpOptions = {},
): HostTensor {
  const g = new Graph();
  g.accumulate = opts.accumulate ?? "fp32";
  const feeds: Record<string, HostTensor> = {};
  const ids = inputs.map((t, i) => {
    feeds[`in${i}`] = t;
    return g.leaf("input", `in${i}`, t.shape, { format: t.format });
  });
  g.outputs.y = g.add(op, ids, attrs, { format: opts.format ?? inputs[0].format });
  return runGraph(g, feeds).y;
}

// ---------------------------------------------------------------------------------------------
// Random data

/** n values uniform in [lo, hi). */
export function uniform(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());
}

/** n values of magnitude in [0.1, 1) with random signs (far from the kink of relu). */
export function awayFromZero(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1) * (0.1 + 0.9 * rng.uniform()));
}

/** n pairwise distinct values at least 0.04 apart (no ties for max pooling), centred on 0. */
export function distinct(rng: Rng, n: number): Float64Array {
  const p = rng.permutation(n);
  return Float64Array.from(p, (k) => (k - n / 2) * 0.05 + 0.01 * rng.uniform());
}

// ---------------------------------------------------------------------------------------------
// Gradient checks

/** A leaf of a gradient case: its shape and its values. */
export interface LeafSpec {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/** Adds an fp64 node to the case's graph. */
export type OpFn = (op: string, inputs: readonly number[], attrs?: Record<string, Attr>) => number;

/** One gradient check: differentiable leaves, other leaves, and the forward computation. */
export interface GradCase {
  readonly name: string;
  /** Differentiable leaves (role param). */
  readonly params: Readonly<Record<string, LeafSpec>>;
  /** Non-differentiable leaves (role input): labels, dropout seeds, fixed data. */
  readonly inputs?: Readonly<Record<string, LeafSpec>>;
  /** Builds the forward ops and returns the node whose values enter the objective. */
  forward(op: OpFn, leaf: Readonly<Record<string, number>>): number;
}

/** Tolerances of {@linkcode checkGradients}. */
export interface GradCheckOptions {
  /** Seed of the objective's coefficients. */
  seed?: number;
  /** Relative finite-difference step: h = step * max(1, |x|). */
  step?: number;
  /** An element passes when |analytic - numeric| <= tol * max(1, |numeric|). */
  tol?: number;
}

/** Result of a gradient check. */
export interface GradCheckResult {
  /** Largest |analytic - numeric| / max(1, |numeric|) over every checked element. */
  maxError: number;
  /** Number of gradient elements checked. */
  checked: number;
}

const COEF = "__coef", SEED = "__seed";

/** Builds L = reshape(y, [1, n]) @ coef (shape [1, 1]) in fp64, with the backward graph when `grads`. */
function objective(c: GradCase, grads: boolean): Graph {
  const g = new Graph();
  g.accumulate = "fp64";
  const ids: Record<string, number> = {};
  for (const [name, s] of Object.entries(c.params)) {
    ids[name] = g.leaf("param", name, s.shape, { format: "fp64" });
  }
  for (const [name, s] of Object.entries(c.inputs ?? {})) {
    ids[name] = g.leaf("input", name, s.shape, { format: "fp64" });
  }
  const op: OpFn = (name, inputs, attrs = {}) => g.add(name, inputs, attrs, { format: "fp64" });
  const y = c.forward(op, ids);
  const n = sizeOf(g.node(y).shape);
  const coef = g.leaf("input", COEF, [n, 1], { format: "fp64" });
  const loss = op("matmul", [op("reshape", [y], { shape: [1, n] }), coef]);
  g.outputs.loss = loss;
  if (grads) {
    const seed = g.leaf("input", SEED, [1, 1], { format: "fp64" });
    const wrt = Object.keys(c.params).map((name) => ids[name]);
    const gr = backward(g, loss, seed, wrt);
    for (const name of Object.keys(c.params)) g.outputs[`grad:${name}`] = gr.get(ids[name])!;
  }
  return g;
}

/**
 * Checks the autodiff gradient of every param of `c` against central finite
 * differences of the objective L = sum(coef * y) with fixed random coefficients.
 * Throws an error listing the worst elements when a check fails.
 */
export function checkGradients(c: GradCase, opts: GradCheckOptions = {}): GradCheckResult {
  const step = opts.step ?? 1e-6, tol = opts.tol ?? 1e-6;
  const fwd = objective(c, false), full = objective(c, true);
  const loss = fwd.node(fwd.outputs.loss);
  const n = sizeOf(fwd.node(fwd.node(loss.inputs[0]).inputs[0]).shape);
  const rng = new Rng(opts.seed ?? 7, `coef:${c.name}`);
  const feeds: Record<string, HostTensor> = { [COEF]: tensor([n, 1], "fp64", uniform(rng, n)) };
  for (const [name, s] of [...Object.entries(c.params), ...Object.entries(c.inputs ?? {})]) {
    feeds[name] = tensor(s.shape, "fp64", s.data);
  }
  const res = runGraph(full, { ...feeds, [SEED]: tensor([1, 1], "fp64", [1]) });
  const L0 = runGraph(fwd, feeds).loss.data[0];
  if (res.loss.data[0] !== L0) throw new Error(`${c.name}: loss differs with the backward graph attached`);

  let maxError = 0, checked = 0;
  const bad: string[] = [];
  for (const [name, s] of Object.entries(c.params)) {
    const grad = res[`grad:${name}`];
    if (grad.format !== "fp64" || grad.shape.join() !== s.shape.join()) {
      throw new Error(
        `${c.name}: gradient of ${name} is [${grad.shape}] ${grad.format}, want [${s.shape}] fp64`,
      );
    }
    let maxNumeric = 0;
    for (let i = 0; i < s.data.length; i++) {
      const x = s.data[i], h = step * Math.max(1, Math.abs(x));
      const at = (v: number) => {
        const d = Float64Array.from(s.data);
        d[i] = v;
        return runGraph(fwd, { ...feeds, [name]: tensor(s.shape, "fp64", d) }).loss.data[0];
      };
      const numeric = (at(x + h) - at(x - h)) / (2 * h);
      const analytic = grad.data[i];
      const err = Math.abs(analytic - numeric) / Math.max(1, Math.abs(numeric));
      if (!(err <= tol)) bad.push(`${name}[${i}]: analytic ${analytic}, numeric ${numeric}`);
      maxError = Math.max(maxError, err);
      maxNumeric = Math.max(maxNumeric, Math.abs(numeric));
      checked++;
    }
    // A gradient that is zero everywhere checks nothing; every case must exercise its param.
    if (maxNumeric === 0) bad.push(`${name}: the objective does not depend on it (all-zero gradient)`);
  }
  if (bad.length) {
    throw new Error(`${c.name}: ${bad.length} gradient elements wrong:\n  ${bad.slice(0, 12).join("\n  ")}`);
  }
  return { maxError, checked };
}
