/**
 * Optimizer configuration and the update subgraph it appends to a step graph.
 *
 * @module
 */

import type { FormatName } from "../formats/format.ts";
import type { Graph } from "../graph/graph.ts";
import type { Policy } from "../policy/policy.ts";
import type { OptimizerConfig } from "../record/schema.ts";

/** The paper's optimizer: SGD, lr 0.01, momentum 0.9, no decay (Adam fields at the Keras defaults). */
export const PAPER_SGD: OptimizerConfig = {
  kind: "sgd",
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-7,
};

/** The parameters weight decay applies to unless a model says otherwise: every conv and dense kernel. */
export const decaysKernel = (param: string): boolean => param.endsWith("/kernel");

/**
 * Appends the optimizer update for every parameter of `g` (gradients in
 * `grads`), registers the next values as state bindings, and returns the ids
 * of the optimizer slot leaves. Weight decay applies to the parameters `decays`
 * names (the model's choice: the authors decay only some layers).
 */
export function appendUpdates(
  g: Graph,
  grads: Map<number, number>,
  finite: number,
  o: OptimizerConfig,
  p: Policy,
  decays: (param: string) => boolean = decaysKernel,
): number[] {
  const scalar = (name: string) => g.byName(name) ?? g.leaf("input", name, [], { format: "fp32" });
  const inv = scalar("inv_loss_scale"), seed = scalar("step_seed");
  const alpha = o.kind === "adam" ? scalar("adam_alpha") : -1;
  const gated = p.lossScale.kind === "dynamic", stochastic = p.rounding === "stochastic";
  const slots: number[] = [];
  g.leaves("param").forEach((param, salt) => {
    const name = param.name!, fmt = param.format!, gp = grads.get(param.id)!;
    const stateFmt: FormatName = p.state === "params" ? fmt : p.state;
    const wd = decays(name) ? o.weightDecay : 0;
    const slot = (what: string) => {
      const id = g.leaf("state", `${name}/${what}`, param.shape, {
        format: stateFmt,
        meta: { kind: "zeros", slot: true },
      });
      slots.push(id);
      return id;
    };
    const update = (
      op: string,
      inputs: number[],
      attrs: Record<string, number | boolean>,
      format: FormatName,
    ) => g.add(op, inputs, { ...attrs, gated }, { format, role: "update" });
    const bind = (current: number, next: number) =>
      g.state.push({ name: g.node(current).name!, current, next });
    const applyAttrs = { lr: o.lr, momentum: o.momentum, wd, stochastic, salt };
    if (o.kind === "sgd" && o.momentum > 0) {
      const v = slot("momentum");
      const v2 = update("sgd_velocity", [v, gp, param.id, inv, finite], {
        lr: o.lr,
        momentum: o.momentum,
        wd,
      }, stateFmt);
      bind(v, v2);
      bind(param.id, update("sgd_apply", [param.id, v2, inv, finite, seed], applyAttrs, fmt));
    } else if (o.kind === "sgd") {
      bind(param.id, update("sgd_apply", [param.id, gp, inv, finite, seed], applyAttrs, fmt));
    } else {
      const m = slot("m"), v = slot("v");
      const m2 = update(
        "adam_moment",
        [m, gp, param.id, inv, finite],
        { beta: o.beta1, power: 1, wd },
        stateFmt,
      );
      const v2 = update(
        "adam_moment",
        [v, gp, param.id, inv, finite],
        { beta: o.beta2, power: 2, wd },
        stateFmt,
      );
      bind(m, m2);
      bind(v, v2);
      bind(
        param.id,
        update(
          "adam_apply",
          [param.id, m2, v2, alpha, finite, seed],
          { eps: o.epsilon, stochastic, salt },
          fmt,
        ),
      );
    }
  });
  return slots;
}

/** Adam's bias-corrected rate lr * sqrt(1 - beta2^t) / (1 - beta1^t), exact powers by squaring. */
export function adamAlpha(o: OptimizerConfig, t: number): number {
  return (o.lr * Math.sqrt(1 - powInt(o.beta2, t))) / (1 - powInt(o.beta1, t));
}

function powInt(b: number, e: number): number {
  let r = 1, x = b;
  for (let k = e; k > 0; k >>= 1) {
    if (k & 1) r *= x;
    x *= x;
  }
  return r;
}
