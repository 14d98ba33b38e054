/**
 * The precision policy pass: copies a format-free forward graph into a new
 * graph in which every node has a format, inserting a cast where a parameter
 * stored in one format is read by an op that computes in another.
 *
 * Rules (README, "Precision policies"):
 * - data inputs hold compute-format values; labels and scalar inputs are fp32;
 * - parameters use `params`, batch-norm parameters and statistics use `bn`;
 * - every op outputs the compute format, except `moments`/`ema` and ops the model
 *   marks `group: "bn"` (the batch-norm statistics format) and `count_correct`
 *   (fp32 counts);
 * - a parameter read in another format than compute goes through one shared
 *   `cast` node, except by ops that read stored parameters directly (batch and
 *   layer norm compute internally in the accumulate format, as Keras does);
 * - gradients are not assigned here: autodiff gives each gradient its value's
 *   format, so a cast's gradient casts back (fp16 gradients become fp32 master
 *   gradients under mixed precision).
 *
 * @module
 */

import type { FormatName } from "../formats/format.ts";
import { Graph } from "../graph/graph.ts";
import { opDef } from "../graph/ops.ts";
import { bnFormat, type Policy } from "./policy.ts";

/** Format of a leaf under `p`, from its role and metadata. */
function leafFormat(
  p: Policy,
  kind: string,
  meta: Readonly<Record<string, unknown>> | undefined,
): FormatName {
  if (kind === "input") return meta?.data ? p.compute : "fp32";
  if (meta?.group === "bn") return bnFormat(p);
  return p.params;
}

/** Returns the formatted copy of `src` and the map from `src` ids to new ids. */
export function applyPolicy(src: Graph, p: Policy): { graph: Graph; map: Int32Array } {
  const g = new Graph();
  g.accumulate = p.accumulate;
  const map = new Int32Array(src.nodes.length).fill(-1);
  const casts = new Map<number, number>();
  const castOf = (id: number): number => {
    let c = casts.get(id);
    if (c === undefined) {
      c = g.add("cast", [id], {}, { format: p.compute, role: "activation" });
      casts.set(id, c);
    }
    return c;
  };
  for (const n of src.nodes) {
    if (n.inputs.length === 0) {
      const kind = n.op as "input" | "param" | "state";
      map[n.id] = g.leaf(kind, n.name!, n.shape, {
        format: leafFormat(p, kind, n.meta),
        meta: n.meta ? { ...n.meta } : undefined,
      });
      continue;
    }
    const direct = opDef(n.op).readsStoredParams || n.op === "moments" || n.op === "ema";
    const inputs = n.inputs.map((i) => {
      const m = map[i], leaf = g.node(m);
      const persistent = leaf.op === "param" || leaf.op === "state";
      return persistent && !direct && leaf.format !== p.compute ? castOf(m) : m;
    });
    let format: FormatName = p.compute;
    if (n.op === "moments" || n.op === "ema" || n.meta?.group === "bn") format = bnFormat(p);
    if (n.op === "count_correct") format = "fp32";
    map[n.id] = g.add(n.op, inputs, { ...n.attrs }, {
      format,
      role: n.role,
      name: n.name,
      meta: n.meta ? { ...n.meta } : undefined,
    });
  }
  for (const [name, id] of Object.entries(src.outputs)) g.outputs[name] = map[id];
  for (const s of src.state) g.state.push({ name: s.name, current: map[s.current], next: map[s.next] });
  return { graph: g, map };
}
