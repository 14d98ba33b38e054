/**
 * Every op of a step graph on its own: a graph in which each live node of `graph` reads leaves holding
 * the values the ref engine computed for its inputs, so one run of an engine compares every op in
 * isolation (an engine's small differences do not flow from one op into the next).
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { runGraph } from "../../kernels/ref/mod.ts";
import { Graph, type Node } from "../../lib/graph/graph.ts";

/** The isolated graph, its feeds, ref's output of each op by key, and the original node by key. */
export interface Isolated {
  readonly graph: Graph;
  readonly feeds: Record<string, HostTensor>;
  readonly expected: Record<string, HostTensor>;
  readonly nodes: Record<string, Node>;
}

/** Isolates every live op of `graph` given the step's `feeds` (adds every live value to `graph.outputs`). */
export function isolateOps(graph: Graph, feeds: Readonly<Record<string, HostTensor>>): Isolated {
  const live = graph.live();
  for (const n of graph.nodes) if (live[n.id]) graph.outputs[`#${n.id}`] = n.id;
  const values = runGraph(graph, feeds);
  const g = new Graph();
  g.accumulate = graph.accumulate;
  const out: Isolated = { graph: g, feeds: {}, expected: {}, nodes: {} };
  for (const n of graph.nodes) {
    if (!live[n.id] || n.inputs.length === 0) continue;
    const ids = n.inputs.map((i, k) => {
      const name = `n${n.id}_in${k}`, v = values[`#${i}`];
      out.feeds[name] = v;
      return g.leaf("input", name, v.shape, { format: v.format });
    });
    const key = `#${n.id}`;
    g.outputs[key] = g.add(n.op, ids, { ...n.attrs }, { format: n.format });
    out.expected[key] = values[key];
    out.nodes[key] = n;
  }
  return out;
}
