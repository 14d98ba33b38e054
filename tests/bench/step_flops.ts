/**
 * The floating-point work of a step graph, for the GFLOP/s columns of the benchmarks: the multiply-adds of
 * its matmuls and convolutions (forward, input gradient and weight gradient), two flops each. Everything
 * else (norms, activations, pooling, the update) is left out, as GFLOP/s figures usually leave it out, so the
 * figure compares directly with a gemm's.
 *
 * @module
 */

import { type Graph, type Node, sizeOf } from "../../lib/graph/graph.ts";

/** Flops of one node: 2 x the multiply-adds of a matmul or convolution node, 0 for any other op. */
export function nodeFlops(graph: Graph, node: Node): number {
  const shape = (i: number) => graph.node(node.inputs[i]).shape;
  switch (node.op) {
    case "matmul": {
      // Each output element is a dot product over the inner size.
      const a = shape(0), r = a.length;
      const inner = node.attrs.transA ? a[r - 2] : a[r - 1];
      return 2 * sizeOf(node.shape) * inner;
    }
    case "conv2d": // inputs [x, w]: every output element is a dot product over one filter's C/groups x KH x KW.
      return 2 * sizeOf(node.shape) * sizeOf(shape(1)) / shape(1)[0];
    case "conv2d_grad_input": // inputs [g, w]: each output-gradient element meets one filter, as forward.
      return 2 * sizeOf(shape(0)) * sizeOf(shape(1)) / shape(1)[0];
    case "conv2d_grad_weight": // inputs [x, g], output the kernel's shape: the same products once more.
      return 2 * sizeOf(shape(1)) * sizeOf(node.shape) / node.shape[0];
    default:
      return 0;
  }
}

/** The flops of a step: all of them, and those of its forward pass. */
export interface StepFlops {
  readonly total: number;
  /** The forward pass's share (nodes of role "activation"; backward nodes have role "grad"). */
  readonly forward: number;
}

/**
 * Flops of one run of `graph`: the sum of {@linkcode nodeFlops} over the nodes that contribute to an output
 * (engines skip dead ones, such as the gradient of the data input). Padding taps count as a direct
 * convolution computes them.
 */
export function stepFlops(graph: Graph): StepFlops {
  const live = graph.live();
  let total = 0, forward = 0;
  for (const n of graph.nodes) {
    if (!live[n.id]) continue;
    const f = nodeFlops(graph, n);
    total += f;
    if (n.role === "activation") forward += f;
  }
  return { total, forward };
}
