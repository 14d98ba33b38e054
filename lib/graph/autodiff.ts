/**
 * Reverse-mode automatic differentiation over the step graph.
 *
 * Walks the forward nodes that lie between the parameters and the loss in
 * reverse order and asks each op's table entry for its input gradients. A
 * gradient takes the format of the value it is the gradient of, so casts
 * placed by the precision policy in the forward graph give the backward graph
 * its formats too (as in TensorFlow, where a gradient has its tensor's dtype).
 *
 * @module
 */

import type { Graph } from "./graph.ts";
import { type GradAdd, opDef } from "./ops.ts";

/**
 * Appends the backward graph of `loss` to `graph` and returns, for every id in
 * `wrt`, the id of its gradient node. `seed` is the node holding dLoss/dLoss
 * (the loss scale when loss scaling is on, else 1).
 */
export function backward(
  graph: Graph,
  loss: number,
  seed: number,
  wrt: readonly number[],
): Map<number, number> {
  const nodes = graph.nodes;
  // Which nodes depend on a wrt node (only those need gradients).
  const needs = new Uint8Array(nodes.length);
  for (const id of wrt) needs[id] = 1;
  for (let i = 0; i <= loss; i++) {
    if (!needs[i] && nodes[i].inputs.some((j) => needs[j])) needs[i] = 1;
  }
  if (!needs[loss]) throw new Error("The loss does not depend on any parameter");

  const add: GradAdd = (op, inputs, attrs, like) =>
    graph.add(op, inputs, attrs, { role: "grad", format: graph.node(like).format });

  const grads = new Map<number, number>([[loss, seed]]);
  for (let id = loss; id >= 0; id--) {
    const g = grads.get(id);
    if (g === undefined || !needs[id] || nodes[id].inputs.length === 0) continue;
    const node = nodes[id];
    const def = opDef(node.op);
    if (!def.backward) {
      throw new Error(`Op ${node.op} has no gradient, but the loss depends on it through node ${id}`);
    }
    const inGrads = def.backward(add, node, g, graph);
    node.inputs.forEach((input, k) => {
      const gi = inGrads[k];
      if (gi === null || !needs[input]) return;
      const prev = grads.get(input);
      grads.set(input, prev === undefined ? gi : add("add", [prev, gi], {}, input));
    });
  }
  const out = new Map<number, number>();
  for (const id of wrt) {
    const g = grads.get(id);
    if (g === undefined) throw new Error(`Parameter ${nodes[id].name} does not affect the loss`);
    out.set(id, g);
  }
  return out;
}
