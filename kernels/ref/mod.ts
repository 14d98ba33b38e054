/**
 * The ref engine: an interpreter over plain TypeScript kernels, the
 * executable definition of the numerical contract. Every tensor is held in a
 * Float64Array whose values are exact in the tensor's format (fp32, fp16 and
 * bf16 values are all exact in float64), so one kernel serves every format:
 * the format only chooses the rounding function. Memory is not this engine's
 * concern; the graph's memory figures give the real storage per format.
 *
 * @module
 */

import { FORMAT_NAMES, rounder } from "../../lib/formats/format.ts";
import type { Graph } from "../../lib/graph/graph.ts";
import { assertSupports, type Engine, type Executable, feedFor, type HostTensor } from "../engine.ts";
import { ELEMENTWISE } from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { LINEAR } from "./linear.ts";
import { NORM } from "./norm.ts";
import { OPTIM } from "./optim.ts";
import { SHAPE } from "./shape.ts";
import { SOFTMAX } from "./softmax.ts";
import { WINDOW } from "./window.ts";
import type { OpName } from "../../lib/graph/ops.ts";

/** Every ref kernel by op name. */
export const KERNELS: Readonly<Record<OpName, Kernel>> = {
  ...LINEAR,
  ...WINDOW,
  ...ELEMENTWISE,
  ...SOFTMAX,
  ...NORM,
  ...SHAPE,
  ...OPTIM,
};

/** Runs `graph` once on the ref kernels. */
export function runGraph(
  graph: Graph,
  feeds: Readonly<Record<string, HostTensor>>,
): Record<string, HostTensor> {
  const nodes = graph.nodes;
  // Free each value after its last use so peak memory stays near the live set.
  const liveMask = graph.live(), lastUse = graph.lastUse(liveMask), keep = graph.results();
  const values: (Float64Array | undefined)[] = new Array(nodes.length);
  const acc = rounder(graph.accumulate);
  for (const n of nodes) {
    if (!liveMask[n.id]) continue;
    if (n.inputs.length === 0) {
      const t = feedFor(n, feeds);
      values[n.id] = t.data instanceof Float64Array ? t.data : Float64Array.from(t.data);
      continue;
    }
    const x = n.inputs.map((i) => values[i]!);
    values[n.id] = KERNELS[n.op as OpName]({ // Graph.add admits only ops of lib/graph/ops.ts
      node: n,
      x,
      shapes: n.inputs.map((i) => nodes[i].shape),
      out: rounder(n.format!),
      acc,
      outFormat: n.format!,
    });
    for (const i of n.inputs) {
      if (lastUse[i] === n.id && !keep.has(i) && nodes[i].inputs.length) values[i] = undefined;
    }
  }
  const result: Record<string, HostTensor> = {};
  const tensor = (id: number): HostTensor => ({
    shape: nodes[id].shape,
    format: nodes[id].format!,
    data: values[id]!,
  });
  for (const [name, id] of Object.entries(graph.outputs)) result[name] = tensor(id);
  for (const s of graph.state) result[s.name] = tensor(s.next);
  return result;
}

/** Creates the ref engine. */
export function createEngine(): Engine {
  return {
    name: "ref",
    description: "plain TypeScript interpreter; the definition of the numerical contract (slow, exact)",
    capabilities: {
      formats: FORMAT_NAMES,
      ops: Object.keys(KERNELS),
      bitExactWithRef: true,
      deterministic: true,
    },
    compile(graph: Graph): Executable {
      assertSupports(this, graph);
      return { run: (feeds) => Promise.resolve(runGraph(graph, feeds)) };
    },
    environment: () => ({ kernels: "TypeScript, single-threaded" }),
  };
}
