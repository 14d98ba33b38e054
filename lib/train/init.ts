/**
 * Initial values of persistent tensors from their initializer metadata, drawn
 * from the named "init" stream in leaf creation order, rounded to each
 * tensor's format.
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { rounder } from "../formats/format.ts";
import { type Graph, sizeOf } from "../graph/graph.ts";
import { Rng } from "../random.ts";

/** Initial value of every param and state leaf of `g`, by name. */
export function initialState(g: Graph, seed: number): Record<string, HostTensor> {
  const rng = new Rng(seed, "init");
  const out: Record<string, HostTensor> = {};
  for (const n of g.nodes) {
    if (n.op !== "param" && n.op !== "state") continue;
    const m = n.meta ?? {}, r = rounder(n.format!), data = new Float64Array(sizeOf(n.shape));
    if (m.kind === "glorot_uniform" || m.kind === "uniform") {
      const limit = m.kind === "uniform"
        ? (m.limit as number)
        : Math.sqrt(6 / ((m.fanIn as number) + (m.fanOut as number)));
      for (let i = 0; i < data.length; i++) data[i] = r((2 * rng.uniform() - 1) * limit);
    } else if (m.kind === "ones") {
      data.fill(1);
    } else if (m.kind !== "zeros") {
      throw new Error(`Leaf ${n.name} has no initializer`);
    }
    out[n.name!] = { shape: n.shape, format: n.format!, data };
  }
  return out;
}
