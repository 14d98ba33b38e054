/**
 * The step graph: a list of single-output nodes in topological order.
 *
 * A node is a primitive op applied to earlier nodes. Leaves are `input`
 * (fed every step), `param` (trainable state) and `state` (other persistent
 * tensors: optimizer slots, batch-norm moving statistics). Every node carries
 * its shape, its number format (decided by the precision policy pass) and a
 * role that the memory accounting and the engines read.
 *
 * @module
 */

import type { FormatName } from "../formats/format.ts";
import { opDef } from "./ops.ts";

/** What a node is for; used by the policy pass, the memory figures and the engines. */
export type Role =
  | "input" // data fed per step (images, labels, scalars such as the loss scale)
  | "param" // trainable parameter (persistent)
  | "state" // non-trainable persistent tensor (optimizer slot, moving statistic)
  | "activation" // forward value
  | "grad" // backward value
  | "update" // next value of a persistent tensor, or a per-step output
  | "metric"; // scalar reported to the host (loss, correct count, finite flag)

/** Attribute values are plain JSON so graphs can be hashed, printed and lowered. */
export type Attr = number | boolean | string | readonly number[];

/** One node of the graph. */
export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: Readonly<Record<string, Attr>>;
  readonly shape: readonly number[];
  /** Number format of the node's output; `undefined` only before the policy pass. */
  format: FormatName | undefined;
  role: Role;
  /** Stable name for leaves and outputs (parameter names, input names). */
  readonly name?: string;
  /** Leaf metadata: initializer for params/state, group ("bn" for batch-norm parameters). */
  readonly meta?: Readonly<Record<string, Attr>>;
}

/** Options for adding a node. */
export interface AddOptions {
  format?: FormatName;
  role?: Role;
  name?: string;
  meta?: Record<string, Attr>;
}

/** A persistent tensor: its value before the step (`current`) and after it (`next`). */
export interface StateBinding {
  readonly name: string;
  readonly current: number;
  readonly next: number;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A step graph under construction or finished. */
export class Graph {
  /** Nodes in topological order; `nodes[i].id === i`. */
  readonly nodes: Node[] = [];
  /** Named outputs the engine returns to the host. */
  readonly outputs: Record<string, number> = {};
  /** Persistent tensors updated by one execution. */
  readonly state: StateBinding[] = [];
  /** Accumulation format of dot products and reductions (set by the policy pass). */
  accumulate: FormatName = "fp32";

  /** Adds a leaf node (`input`, `param` or `state`). */
  leaf(
    kind: "input" | "param" | "state",
    name: string,
    shape: readonly number[],
    opts: AddOptions = {},
  ): number {
    for (const d of shape) {
      if (!Number.isInteger(d) || d <= 0) throw new RangeError(`Leaf "${name}" has a bad shape [${shape}]`);
    }
    if (this.byName(name) !== undefined) throw new Error(`Duplicate leaf name "${name}"`);
    return this.#push({
      op: kind,
      inputs: [],
      attrs: {},
      shape: [...shape],
      format: opts.format,
      role: kind,
      name,
      meta: opts.meta,
    });
  }

  /** Applies op `op` to `inputs`; the shape comes from the op table, which also validates the inputs. */
  add(
    op: string,
    inputs: readonly number[],
    attrs: Record<string, Attr> = {},
    opts: AddOptions = {},
  ): number {
    const def = opDef(op);
    for (const i of inputs) {
      if (!(i >= 0 && i < this.nodes.length)) throw new Error(`Op ${op}: input ${i} does not exist`);
    }
    if (def.arity !== "variadic" && inputs.length !== def.arity) {
      throw new Error(`Op ${op} takes ${def.arity} inputs, got ${inputs.length}`);
    }
    const shape = def.shape(inputs.map((i) => this.nodes[i].shape), attrs);
    return this.#push({
      op,
      inputs: [...inputs],
      attrs,
      shape,
      format: opts.format,
      role: opts.role ?? "activation",
      name: opts.name,
      meta: opts.meta,
    });
  }

  /** The node with this id. */
  node(id: number): Node {
    const n = this.nodes[id];
    if (!n) throw new Error(`Node ${id} does not exist`);
    return n;
  }

  /** Id of the leaf with this name, if any. */
  byName(name: string): number | undefined {
    for (const n of this.nodes) if (n.name === name && n.inputs.length === 0) return n.id;
    return undefined;
  }

  /** Leaves of one kind, in creation order. */
  leaves(kind: "input" | "param" | "state"): Node[] {
    return this.nodes.filter((n) => n.op === kind);
  }

  /**
   * Which nodes contribute to an output or a state's next value (1) and which
   * are dead (0). Autodiff builds every input gradient an op's rule gives, also
   * for inputs that need none (the data input of the first layer); engines
   * skip the dead ones.
   */
  live(): Uint8Array {
    const live = new Uint8Array(this.nodes.length);
    for (const id of this.results()) live[id] = 1;
    for (let id = this.nodes.length - 1; id >= 0; id--) {
      if (live[id]) { for (const i of this.nodes[id].inputs) live[i] = 1; }
    }
    return live;
  }

  /** The ids whose values a run returns: every named output and every state's next value. */
  results(): Set<number> {
    return new Set([...Object.values(this.outputs), ...this.state.map((s) => s.next)]);
  }

  /**
   * For each node, the id of the last live node that reads it (-1 when none reads it): where an engine can
   * free or reuse its value, unless it is one of {@linkcode Graph.results}.
   */
  lastUse(live: Uint8Array = this.live()): Int32Array {
    const last = new Int32Array(this.nodes.length).fill(-1);
    for (const n of this.nodes) if (live[n.id]) { for (const i of n.inputs) last[i] = n.id; }
    return last;
  }

  #push(n: Omit<Node, "id">): number {
    const id = this.nodes.length;
    this.nodes.push({ id, ...n });
    return id;
  }
}
