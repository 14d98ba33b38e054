/**
 * Whole-model gradient check: a model's softmax cross-entropy loss built in
 * fp64, its backward graph against float64 central finite differences on a
 * few random elements of every parameter (batch norm in training mode, the
 * moving averages left out).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { HostTensor } from "../../kernels/engine.ts";
import { runGraph } from "../../kernels/ref/mod.ts";
import { backward } from "../../lib/graph/autodiff.ts";
import { sizeOf } from "../../lib/graph/graph.ts";
import { ModelBuilder } from "../../lib/model/builder.ts";
import type { ModelDef } from "../../lib/model/zoo.ts";
import { applyPolicy } from "../../lib/policy/apply.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { Rng } from "../../lib/random.ts";
import { initialState } from "../../lib/train/init.ts";

/** What to check: the input batch shape [N, C, H, W], the labels (one per image), the class count. */
export interface ModelGradCase {
  readonly model: ModelDef;
  readonly input: readonly number[];
  readonly labels: readonly number[];
  readonly classes: number;
  /** Random elements checked per parameter (default 3). */
  readonly perParam?: number;
}

/** Result: parameter tensors, elements checked, and the worst relative error. */
export interface ModelGradResult {
  readonly params: number;
  readonly checked: number;
  readonly worst: number;
}

/**
 * Asserts that every checked element's analytic gradient is within 1e-4
 * (relative, floored at 1e-3 absolute) of the central difference with step
 * 1e-6 * max(1, |w|). Batch-norm gamma and beta are moved off 1 and 0 first
 * so their gradients are generic.
 */
export function checkModelGradient(c: ModelGradCase): ModelGradResult {
  const n = c.input[0], perParam = c.perParam ?? 3;
  const b = new ModelBuilder(true);
  const x = b.input("x", [...c.input]);
  const labels = b.graph.leaf("input", "labels", [n]);
  const logits = c.model.build(b, x, { classes: c.classes, hidden: [] });
  b.graph.outputs.loss = b.op("softmax_xent", [logits, labels]);
  const { graph: g, map } = applyPolicy(b.graph, parsePolicy("params=fp64,compute=fp64,accumulate=fp64"));
  const seed = g.leaf("input", "loss_scale", [], { format: "fp32" });
  const params = g.leaves("param").map((p) => p.id);
  const grads = backward(g, map[b.graph.outputs.loss], seed, params);
  params.forEach((p) => (g.outputs[`grad:${g.node(p).name}`] = grads.get(p)!));
  g.state.length = 0; // the moving averages are not under test

  const rng = new Rng(7, `model-grad/${c.model.name}`);
  const feeds: Record<string, HostTensor> = {
    ...initialState(g, 3),
    x: {
      shape: [...c.input],
      format: "fp64",
      data: Float64Array.from({ length: sizeOf(c.input) }, () => rng.uniform() * 2 - 1),
    },
    labels: { shape: [n], format: "fp32", data: Float64Array.from(c.labels) },
    loss_scale: { shape: [], format: "fp32", data: Float64Array.of(1) },
    step_seed: { shape: [], format: "fp32", data: Float64Array.of(12345) },
  };
  for (const [k, t] of Object.entries(feeds)) {
    if (/gamma|beta/.test(k)) { for (let i = 0; i < t.data.length; i++) t.data[i] += rng.uniform() * 0.5; }
  }
  const loss = (f: Record<string, HostTensor>) => runGraph(g, f).loss.data[0];
  const out = runGraph(g, feeds);
  let checked = 0, worst = 0;
  for (const p of params) {
    const name = g.node(p).name!, data = feeds[name].data, analytic = out[`grad:${name}`].data;
    for (let k = 0; k < perParam; k++) {
      const i = rng.below(data.length), orig = data[i], h = 1e-6 * Math.max(1, Math.abs(orig));
      data[i] = orig + h;
      const up = loss(feeds);
      data[i] = orig - h;
      const down = loss(feeds);
      data[i] = orig;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(numeric - analytic[i]) / Math.max(1e-3, Math.abs(numeric));
      worst = Math.max(worst, err);
      assert.ok(err < 1e-4, `${name}[${i}]: analytic ${analytic[i]}, numeric ${numeric}`);
      checked++;
    }
  }
  return { params: params.length, checked, worst };
}
