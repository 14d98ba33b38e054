/**
 * Memory of one training step by category and format, computed from the step
 * graph (exact bytes at the run's batch size, independent of the engine's own
 * storage). Activations count every forward value of the step.
 *
 * @module
 */

import { FORMATS } from "../formats/format.ts";
import { sizeOf } from "../graph/graph.ts";
import type { TrainGraph } from "./step.ts";
import type { BytesByFormat, MemoryFigures } from "../record/schema.ts";

/** Computes the memory figures of a training step. */
export function memoryFigures(t: TrainGraph): MemoryFigures {
  const add = (into: BytesByFormat, id: number) => {
    const n = t.graph.node(id), f = n.format!;
    into[f] = (into[f] ?? 0) + sizeOf(n.shape) * FORMATS[f].bytes;
  };
  const m = { parameters: {}, gradients: {}, optimizer: {}, activations: {} } as MemoryFigures;
  const slots = new Set(t.slots);
  for (const n of t.graph.nodes) {
    if (n.op === "param" || (n.op === "state" && !slots.has(n.id))) add(m.parameters, n.id);
    else if (n.role === "activation") add(m.activations, n.id);
  }
  for (const id of t.grads) add(m.gradients, id);
  for (const id of t.slots) add(m.optimizer, id);
  return m;
}
