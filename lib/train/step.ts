/**
 * Builds the two graphs a run executes: the training step (forward, loss,
 * backward, finite check, optimizer update) and the evaluation pass (forward
 * with moving statistics and no dropout), both through the policy pass.
 *
 * @module
 */

import { backward } from "../graph/autodiff.ts";
import type { Graph } from "../graph/graph.ts";
import { ModelBuilder } from "../model/builder.ts";
import type { ModelDef, ModelOptions } from "../model/zoo.ts";
import { applyPolicy } from "../policy/apply.ts";
import type { Policy } from "../policy/policy.ts";
import { appendUpdates } from "./optimizer.ts";
import type { OptimizerConfig } from "../record/schema.ts";

/** What the step graphs are built from. */
export interface StepSpec {
  readonly model: ModelDef;
  readonly modelOptions: ModelOptions;
  readonly policy: Policy;
  readonly optimizer: OptimizerConfig;
  /** One example's shape, [C, H, W]. */
  readonly inputShape: readonly number[];
}

/** A built training step with the ids the accounting needs. */
export interface TrainGraph {
  readonly graph: Graph;
  /** Gradient node of every parameter, in parameter order. */
  readonly grads: readonly number[];
  readonly slots: readonly number[];
}

function forward(spec: StepSpec, batch: number, training: boolean) {
  const b = new ModelBuilder(training);
  const x = b.input("x", [batch, ...spec.inputShape]);
  const labels = b.graph.leaf("input", "labels", [batch]);
  const logits = b.op("reshape", [spec.model.build(b, x, spec.modelOptions)], {
    shape: [batch, spec.modelOptions.classes],
  });
  b.graph.outputs.loss = b.op("softmax_xent", [logits, labels]);
  b.graph.outputs.correct = b.op("count_correct", [logits, labels]);
  if (!training) b.graph.outputs.logits = logits;
  return applyPolicy(b.graph, spec.policy).graph;
}

/** The training step graph for one batch size. */
export function buildTrainGraph(spec: StepSpec, batch: number): TrainGraph {
  const g = forward(spec, batch, true);
  const seed = g.leaf("input", "loss_scale", [], { format: "fp32" });
  const params = g.leaves("param").map((n) => n.id);
  const grads = backward(g, g.outputs.loss, seed, params);
  const gradIds = params.map((p) => grads.get(p)!);
  const finite = g.add("all_finite", gradIds, {}, { format: "fp32", role: "metric" });
  g.outputs.finite = finite;
  const slots = appendUpdates(g, grads, finite, spec.optimizer, spec.policy, spec.model.decays);
  appendUpdateChecks(g, spec.optimizer);
  return { graph: g, grads: gradIds, slots };
}

/**
 * The optimizer slot whose nonzero value means a parameter was meant to move (a lost update is one that
 * left it unchanged): SGD momentum's velocity, Adam's first moment; none for plain SGD.
 */
export function stepSlot(o: OptimizerConfig): string | null {
  return o.kind === "adam" ? "m" : o.momentum > 0 ? "momentum" : null;
}

/** The outputs `appendUpdateChecks` adds (a graph without them does the work of a plain training loop). */
export const UPDATE_CHECKS = ["params_finite", "lost"] as const;

/**
 * Outputs the training loop checks every step, computed in the graph so that the parameters need not leave
 * the engine: `params_finite` (1 when every updated parameter is finite) and, with a step slot, `lost` (how
 * many parameter elements had a nonzero step and did not change).
 */
function appendUpdateChecks(g: Graph, o: OptimizerConfig) {
  const next = new Map(g.state.map((s) => [s.name, s.next]));
  const params = g.leaves("param");
  const metric = { format: "fp32", role: "metric" } as const;
  g.outputs.params_finite = g.add("all_finite", params.map((p) => next.get(p.name!)!), {}, metric);
  const slot = stepSlot(o);
  if (!slot) return;
  const triples = params.flatMap((p) => [p.id, next.get(p.name!)!, next.get(`${p.name}/${slot}`)!]);
  g.outputs.lost = g.add("count_lost", triples, {}, metric);
}

/** The evaluation graph for one batch size (outputs loss, correct, logits). */
export function buildEvalGraph(spec: StepSpec, batch: number): Graph {
  return forward(spec, batch, false);
}
