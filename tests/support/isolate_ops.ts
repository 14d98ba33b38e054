/**
 * Every op of a step graph on its own: a graph in which each live node of `graph` reads leaves holding
 * the values the ref engine computed for its inputs, so one run of an engine compares every op in
 * isolation (an engine's small differences do not flow from one op into the next).
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { runGraph } from "../../kernels/ref/mod.ts";
import { Graph, type Node, sizeOf } from "../../lib/graph/graph.ts";

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

/**
 * `iso` in parts whose tensors (every op's inputs and output, 4 bytes per value) stay under `maxBytes`
 * each, for an engine that places a graph in one buffer of bounded size. The ops are independent, so the
 * parts give the values `iso` gives; an op larger than `maxBytes` is a part of its own.
 */
export function splitIsolated(iso: Isolated, maxBytes: number): Isolated[] {
  const parts: Isolated[] = [];
  let part: Isolated | null = null, bytes = 0;
  for (const [key, id] of Object.entries(iso.graph.outputs)) {
    const n = iso.graph.nodes[id];
    const need = 4 * [n, ...n.inputs.map((i) => iso.graph.nodes[i])].reduce((s, m) => s + sizeOf(m.shape), 0);
    if (!part || bytes + need > maxBytes) {
      const g = new Graph();
      g.accumulate = iso.graph.accumulate;
      parts.push(part = { graph: g, feeds: {}, expected: {}, nodes: {} });
      bytes = 0;
    }
    bytes += need;
    const ids = n.inputs.map((i) => {
      const leaf = iso.graph.nodes[i];
      part!.feeds[leaf.name!] = iso.feeds[leaf.name!];
      return part!.graph.leaf("input", leaf.name!, leaf.shape, { format: leaf.format });
    });
    part.graph.outputs[key] = part.graph.add(n.op, ids, { ...n.attrs }, { format: n.format });
    part.expected[key] = iso.expected[key];
    part.nodes[key] = iso.nodes[key];
  }
  return parts;
}
