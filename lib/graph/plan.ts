/**
 * Buffer placement for one step graph in an engine's own memory (the wasm engine's arena; any engine that
 * places its buffers itself can use it). Leaves (all written before the step runs) and
 * the next values of state get their own buffers for the whole step; every other value reuses the space of
 * values whose last reader has run (first fit), so the memory of a step stays near its live set. Because a
 * state's leaf and its next value both own their buffers for the whole step, the two may trade places
 * (`swapState`): the engine alternates two such plans so that a run's next state is where the following
 * run reads it.
 *
 * @module
 */

import type { Graph } from "./graph.ts";

/**
 * Offsets (bytes, from the start of the graph's region; -1 for a node that is not placed) of every live node,
 * and the region's size. Float64Array: a region may pass 2 GiB, where an Int32Array would wrap.
 */
export interface Placement {
  readonly offset: Float64Array;
  readonly bytes: number;
}

const ALIGN = 64;

/** Places the live nodes of `graph`; `size(id)` gives a node's storage bytes. */
export function place(graph: Graph, size: (id: number) => number): Placement {
  const nodes = graph.nodes, live = graph.live();
  const keep = graph.results(), lastUse = graph.lastUse(live);
  const offset = new Float64Array(nodes.length).fill(-1);
  const free: [number, number][] = []; // [offset, bytes], sorted by offset
  let end = 0;
  const take = (bytes: number): number => {
    const k = free.findIndex(([, b]) => b >= bytes);
    if (k < 0) return (end += bytes) - bytes;
    const [o, b] = free[k];
    if (b === bytes) free.splice(k, 1);
    else free[k] = [o + bytes, b - bytes];
    return o;
  };
  const give = (o: number, bytes: number) => {
    let k = free.findIndex(([fo]) => fo > o);
    if (k < 0) k = free.length;
    free.splice(k, 0, [o, bytes]);
    // Merge with the next, then with the previous block.
    if (k + 1 < free.length && free[k][0] + free[k][1] === free[k + 1][0]) {
      free[k][1] += free[k + 1][1];
      free.splice(k + 1, 1);
    }
    if (k > 0 && free[k - 1][0] + free[k - 1][1] === free[k][0]) {
      free[k - 1][1] += free[k][1];
      free.splice(k, 1);
    }
  };
  const bytesOf = (id: number) => Math.ceil(size(id) / ALIGN) * ALIGN;
  // Leaves first: they are all written before the step runs, so no value may share their space. Then
  // the next values of state, so that they can trade places with their leaves.
  for (const n of nodes) if (live[n.id] && !n.inputs.length) offset[n.id] = take(bytesOf(n.id));
  for (const { next } of graph.state) if (offset[next] < 0) offset[next] = take(bytesOf(next));
  for (const n of nodes) {
    if (!live[n.id] || !n.inputs.length || offset[n.id] >= 0) continue;
    offset[n.id] = take(bytesOf(n.id));
    for (const i of new Set(n.inputs)) {
      if (lastUse[i] === n.id && !keep.has(i) && nodes[i].inputs.length) give(offset[i], bytesOf(i));
    }
  }
  return { offset, bytes: end };
}

/**
 * The same placement with each state leaf and its next value in each other's buffers (where the two are
 * different nodes of the same size).
 */
export function swapState(graph: Graph, placement: Placement, size: (id: number) => number): Placement {
  const offset = placement.offset.slice();
  const leafOf = new Map(graph.nodes.filter((n) => !n.inputs.length && n.name).map((n) => [n.name!, n.id]));
  for (const { name, next } of graph.state) {
    const leaf = leafOf.get(name);
    if (leaf === undefined || leaf === next || size(leaf) !== size(next)) continue;
    [offset[leaf], offset[next]] = [placement.offset[next], placement.offset[leaf]];
  }
  return { offset, bytes: placement.bytes };
}
