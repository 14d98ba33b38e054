/**
 * Lowerings of the optimizer updates, op by op as kernels/ref/optim.ts (Keras) writes them: every
 * intermediate is rounded to the state's format (`ctx.round`), hyperparameters are rounded to it on the
 * host, and a gated update keeps the state when the step's `ok` input is 0.
 *
 * Stochastic rounding is not lowered: ONNX has no bit cast, so the engine declares it unsupported
 * (kernels/ort/mod.ts) and a policy asking for it is refused before training starts.
 *
 * @module
 */

import { rounder } from "../../lib/formats/format.ts";
import { type Ctx, type Lowering, num } from "./lowering.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/** A hyperparameter rounded to the node's format, as a float32 constant. */
function hyper(ctx: Ctx, value: number): string {
  return ctx.g.f32(rounder(ctx.node.format!)(value));
}

/** The gated result: the old state where ok == 0, else `next`. */
function gate(ctx: Ctx, state: string, next: string, okInput: number): string {
  if (!ctx.node.attrs.gated) return next;
  const g = ctx.g, skip = g.node("Equal", [ctx.x(okInput), g.f32(0)]);
  // The flag expanded to the state's shape first: onnxruntime's Where broadcasting a scalar condition ran
  // at about a third of the speed (MobileNet mixed: 230 ms of Where per step, 80 ms after; benchmarks.md).
  const shape = ctx.node.shape;
  return g.node("Where", [shape.length ? g.node("Expand", [skip, g.i64(shape)]) : skip, state, next]);
}

/** r(op(a, b)). */
function r(ctx: Ctx, op: string, a: string, b: string): string {
  return ctx.round(ctx.g.node(op, [a, b]));
}

/** The effective gradient r(g * invScale) + r(wd * w), wd being coupled L2 decay. */
function gradAt(ctx: Ctx, g: number, w: number, inv: number): string {
  const v = r(ctx, "Mul", ctx.x(g), ctx.x(inv)), wd = num(ctx.node, "wd");
  return wd === 0 ? v : r(ctx, "Add", v, r(ctx, "Mul", hyper(ctx, wd), ctx.x(w)));
}

const sgdVelocity: Lowering = (ctx) => {
  const step = r(ctx, "Mul", hyper(ctx, num(ctx.node, "lr")), gradAt(ctx, 1, 2, 3));
  return gate(
    ctx,
    ctx.x(0),
    r(ctx, "Sub", r(ctx, "Mul", hyper(ctx, num(ctx.node, "momentum")), ctx.x(0)), step),
    4,
  );
};

const sgdApply: Lowering = (ctx) => {
  if (num(ctx.node, "momentum") > 0) return gate(ctx, ctx.x(0), ctx.g.node("Add", [ctx.x(0), ctx.x(1)]), 3);
  const step = r(ctx, "Mul", hyper(ctx, num(ctx.node, "lr")), gradAt(ctx, 1, 0, 2));
  return gate(ctx, ctx.x(0), ctx.g.node("Sub", [ctx.x(0), step]), 3);
};

const adamMoment: Lowering = (ctx) => {
  const gi = gradAt(ctx, 1, 2, 3), m = ctx.x(0);
  const p = num(ctx.node, "power") === 2 ? r(ctx, "Mul", gi, gi) : gi;
  const omb = hyper(ctx, 1 - rounder(ctx.node.format!)(num(ctx.node, "beta"))); // r(1 - r(beta))
  return gate(ctx, m, ctx.g.node("Add", [m, r(ctx, "Mul", r(ctx, "Sub", p, m), omb)]), 4);
};

const adamApply: Lowering = (ctx) => {
  const g = ctx.g, w = ctx.x(0);
  const alpha = ctx.round(ctx.x(3)), eps = hyper(ctx, num(ctx.node, "eps"));
  const denom = r(ctx, "Add", ctx.round(g.node("Sqrt", [ctx.x(2)])), eps);
  return gate(ctx, w, g.node("Sub", [w, r(ctx, "Div", r(ctx, "Mul", alpha, ctx.x(1)), denom)]), 4);
};

/** Lowerings of this file by op name. */
export const OPTIM = {
  sgd_velocity: sgdVelocity,
  sgd_apply: sgdApply,
  adam_moment: adamMoment,
  adam_apply: adamApply,
} satisfies Partial<Record<OpName, Lowering>>;
