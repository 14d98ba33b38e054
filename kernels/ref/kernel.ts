/**
 * What a ref kernel receives, and small shared helpers.
 *
 * The numerical contract every kernel follows (README, "Numerical contract"):
 * inputs are already rounded to their formats; elementwise work is done in
 * float64 and rounded once to the output format; dot products and reductions
 * accumulate sequentially over the reduced index, rounding every product and
 * every partial sum to the accumulate format (no fused multiply-add).
 *
 * @module
 */

import type { FormatName, Rounder } from "../../lib/formats/format.ts";
import type { Attr, Node } from "../../lib/graph/graph.ts";

/** Arguments of one kernel call. */
export interface KernelArgs {
  readonly node: Node;
  /** Input data, in the order of `node.inputs`. */
  readonly x: readonly Float64Array[];
  /** Input shapes. */
  readonly shapes: readonly (readonly number[])[];
  /** Rounds to the output format. */
  readonly out: Rounder;
  /** Rounds to the accumulate format. */
  readonly acc: Rounder;
  readonly outFormat: FormatName;
}

/** A ref kernel: returns the output data (a fresh array, rounded to the output format). */
export type Kernel = (a: KernelArgs) => Float64Array;

/** Number attribute. */
export function num(node: Node, key: string): number {
  return node.attrs[key] as number;
}

/** Number-list attribute. */
export function list(node: Node, key: string): readonly number[] {
  return node.attrs[key] as readonly number[];
}

/** Product of a shape's dimensions from `from` up to (not including) `to`. */
export function prod(shape: readonly number[], from = 0, to = shape.length): number {
  let p = 1;
  for (let i = from; i < to; i++) p *= shape[i];
  return p;
}

/** Boolean attribute. */
export function flag(attrs: Readonly<Record<string, Attr>>, key: string): boolean {
  return !!attrs[key];
}
