/**
 * The model builder: a forward graph under construction plus what layers need
 * around it (parameter creation with initializers, unique layer names, the
 * training/inference switch, the dropout seed, batch-norm moving averages).
 *
 * @module
 */

import { type Attr, Graph } from "../graph/graph.ts";

/** How a parameter or state tensor is initialised (Keras defaults). */
export type Init =
  | { kind: "glorot_uniform"; fanIn: number; fanOut: number }
  | { kind: "uniform"; limit: number }
  | { kind: "zeros" }
  | { kind: "ones" };

/** Builds one forward graph for one mode. */
export class ModelBuilder {
  readonly graph = new Graph();
  readonly #counters = new Map<string, number>();
  #seed: number | undefined;

  /** `training` selects batch statistics and active dropout. */
  constructor(readonly training: boolean) {}

  /** A fresh layer name: `dense`, `dense_1`, `dense_2`, ... (Keras style), stable across modes. */
  layerName(kind: string): string {
    const n = this.#counters.get(kind) ?? 0;
    this.#counters.set(kind, n + 1);
    return n === 0 ? kind : `${kind}_${n}`;
  }

  /** A trainable parameter. `group: "bn"` marks batch-norm parameters for the policy. */
  param(name: string, shape: number[], init: Init, group?: "bn"): number {
    return this.graph.leaf("param", name, shape, { meta: initMeta(init, group) });
  }

  /** A non-trainable persistent tensor (batch-norm moving statistics). */
  state(name: string, shape: number[], init: Init, group?: "bn"): number {
    return this.graph.leaf("state", name, shape, { meta: initMeta(init, group) });
  }

  /** The data input of a batch (values in the compute format). */
  input(name: string, shape: number[]): number {
    return this.graph.leaf("input", name, shape, { meta: { data: true } });
  }

  /** The scalar per-step seed of dropout masks (created on first use). */
  dropoutSeed(): number {
    this.#seed ??= this.graph.leaf("input", "step_seed", []);
    return this.#seed;
  }

  /** Adds an op node. */
  op(op: string, inputs: number[], attrs: Record<string, Attr> = {}): number {
    return this.graph.add(op, inputs, attrs);
  }

  /**
   * Adds an op on batch-norm statistics: the policy pass gives it the batch-norm format (as it does
   * `moments` and `ema`), so a correction of the moving statistics is not rounded to the compute format.
   */
  bnOp(op: string, inputs: number[], attrs: Record<string, Attr> = {}): number {
    return this.graph.add(op, inputs, attrs, { meta: { group: "bn" } });
  }

  /** Shape of a node. */
  shape(id: number): readonly number[] {
    return this.graph.node(id).shape;
  }

  /** Registers `next` as the next value of persistent tensor `current`. */
  updates(current: number, next: number): void {
    this.graph.state.push({ name: this.graph.node(current).name!, current, next });
  }
}

function initMeta(init: Init, group?: string): Record<string, Attr> {
  const meta: Record<string, Attr> = { ...init };
  if (group) meta.group = group;
  return meta;
}
