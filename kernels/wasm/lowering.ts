/**
 * What the wasm engine's lowerings share: the shapes of an operand, the runtime a lowering calls, and
 * helpers for attributes, addresses and splitting work over the threads.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { Node } from "../../lib/graph/graph.ts";
import { list, num, prod } from "../ref/kernel.ts";
import { type Arena, elementIndex } from "./memory.ts";
import type { ParallelKernel } from "./pool.ts";

// The attribute and shape helpers are the ref kernels' own.
export { list, num, prod };

/** A node's input or output buffer. */
export interface Operand {
  readonly ptr: number;
  readonly fmt: number;
  readonly format: FormatName;
  readonly shape: readonly number[];
  readonly size: number;
  /**
   * The format code the values are rounded to when read: set where a cast is fused into its consumer (only
   * a matmul's B, which rounds while packing); the buffer holds the cast's input.
   */
  readonly roundTo?: number;
}

/** What a lowering can call. */
export interface Runtime {
  /** The kernel module's exports. */
  readonly k: Readonly<Record<string, (...a: number[]) => number>>;
  readonly arena: Arena;
  /** Threads of the pool (the calling thread included). */
  readonly threads: number;
  /** Runs `kernel` once per thread, with one argument row per thread. */
  parallel(kernel: ParallelKernel, rows: readonly (readonly number[])[]): void;
}

/** Arguments of a lowering. */
export interface LowerArgs {
  readonly node: Node;
  readonly x: readonly Operand[];
  readonly y: Operand;
  /** Accumulate format code. */
  readonly acc: number;
  readonly rt: Runtime;
}

/** A lowered node: the scratch bytes it needs, and the call that runs it with that scratch at `s`. */
export interface Lowered {
  readonly scratch: number;
  run(s: number): void;
}

/** A lowering: binds one node to kernel calls. */
export type Lowering = (a: LowerArgs) => Lowered;

export const FP32 = 0;
/** map1's op code for a cast (CAST in as/pointwise.ts). */
export const CAST = 4;
/** Address of element `i` of an operand. */
export const at = (o: Operand, i: number) => o.ptr + i * (o.fmt === FP32 ? 4 : 2);
export const plain = (run: (s: number) => void, scratch = 0): Lowered => ({ scratch, run });
export const scalar = (rt: Runtime, o: Operand) => rt.arena.scalar(o.ptr, o.format);

/** Splits `count` blocks into one contiguous range per thread. */
export function shares(count: number, threads: number): [number, number][] {
  return Array.from({ length: threads }, (_, p) => [
    Math.floor((count * p) / threads),
    Math.floor((count * (p + 1)) / threads),
  ]);
}

/** Below this many elements an elementwise kernel runs on the calling thread alone. */
export const SPLIT_MIN = 1 << 15;

/**
 * Runs an elementwise kernel over one contiguous range of elements per thread (starts at multiples of 4,
 * for SIMD): `tensors` lists the [address, format] argument positions to offset (format position -1: f32),
 * `nAt` the count's.
 * Element i depends only on element i of each tensor, so the split never changes a bit.
 */
export function split(
  rt: Runtime,
  kernel: ParallelKernel,
  args: readonly number[],
  tensors: readonly number[][],
  nAt: number,
) {
  const rows = splitRows(rt, args, tensors, nAt);
  if (rows.length === 1) rt.k[kernel](...rows[0]);
  else rt.parallel(kernel, rows);
}

/**
 * `split` for a kernel that counts: its last argument is where it stores its range's count (an i32), one
 * slot per thread from `slots`; returns the sum. Integer sums, so the split changes no result.
 */
export function splitSum(
  rt: Runtime,
  kernel: ParallelKernel,
  args: readonly number[],
  tensors: readonly number[][],
  nAt: number,
  slots: number,
): number {
  const rows = splitRows(rt, args, tensors, nAt).map((row, p) => [...row, slots + 4 * p]);
  if (rows.length === 1) rt.k[kernel](...rows[0]);
  else rt.parallel(kernel, rows);
  const first = elementIndex(slots, 4);
  return rt.arena.views.i32.subarray(first, first + rows.length).reduce((a, b) => a + b, 0);
}

/** The argument rows of `split`: one per thread, or one alone for small or single-threaded work. */
function splitRows(
  rt: Runtime,
  args: readonly number[],
  tensors: readonly number[][],
  nAt: number,
): number[][] {
  const n = args[nAt], t = rt.threads;
  if (t === 1 || n < SPLIT_MIN) return [[...args]];
  return Array.from({ length: t }, (_, p) => {
    const from = Math.floor((n * p) / t / 4) * 4,
      to = p === t - 1 ? n : Math.floor((n * (p + 1)) / t / 4) * 4;
    const row = [...args];
    for (const [pi, fi] of tensors) row[pi] += from * (fi < 0 || row[fi] === FP32 ? 4 : 2);
    row[nAt] = to - from;
    return row;
  });
}
