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
import { Format, KERNEL_PARAMS, type KernelArgs, type KernelExports } from "./kernels_wasm.ts";
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
  readonly k: KernelExports;
  readonly arena: Arena;
  /** Threads of the pool (the calling thread included). */
  readonly threads: number;
  /** Runs `kernel` once per thread, with one row of named arguments per thread. */
  parallel<K extends ParallelKernel>(kernel: K, rows: readonly KernelArgs[K][]): void;
}

/** A kernel's named arguments in call order, as numbers (a bool parameter takes 0 or 1). */
export function positional<K extends keyof KernelArgs>(kernel: K, args: KernelArgs[K]): number[] {
  return KERNEL_PARAMS[kernel].map((p) => Number(args[p]));
}

/** Calls `kernel` on this thread with named arguments. */
export function call<K extends keyof KernelArgs>(rt: Runtime, kernel: K, args: KernelArgs[K]): number {
  // The generated signature of each export is checked where its arguments are named (KernelArgs).
  return (rt.k[kernel] as (...a: number[]) => number)(...positional(kernel, args));
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

/** The f32 format code, the one the kernels' f32 scratch uses. */
export const FP32: number = Format.FP32;
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
 * The tensors of a split kernel: each address parameter to offset, with the parameter of its format code
 * (or "f32" for f32 scratch).
 */
export type Tensors<K extends keyof KernelArgs> = Partial<
  Record<keyof KernelArgs[K], keyof KernelArgs[K] | "f32">
>;

/**
 * Runs an elementwise kernel over one contiguous range of elements per thread (starts at multiples of 4,
 * for SIMD): `tensors` names the address parameters to offset and their formats, `count` the parameter of
 * the element count.
 * Element i depends only on element i of each tensor, so the split never changes a bit.
 */
export function split<K extends ParallelKernel>(
  rt: Runtime,
  kernel: K,
  args: KernelArgs[K],
  tensors: Tensors<K>,
  count: keyof KernelArgs[K],
) {
  const rows = splitRows(rt, args, tensors, count);
  if (rows.length === 1) call(rt, kernel, rows[0]);
  else rt.parallel(kernel, rows);
}

/** Kernels that store a count for their range at `out`. */
type Counting = "nonFiniteInto" | "countLostInto";

/**
 * `split` for a kernel that counts: it stores its range's count (an i32) at `out`, one slot per thread from
 * `slots`; returns the sum. Integer sums, so the split changes no result.
 */
export function splitSum<K extends Counting>(
  rt: Runtime,
  kernel: K,
  args: Omit<KernelArgs[K], "out">,
  tensors: Tensors<K>,
  count: keyof KernelArgs[K],
  slots: number,
): number {
  const whole = { ...args, out: slots } as KernelArgs[K];
  const rows = splitRows(rt, whole, tensors, count).map((row, p) => ({ ...row, out: slots + 4 * p }));
  if (rows.length === 1) call(rt, kernel, rows[0]);
  else rt.parallel(kernel, rows);
  const first = elementIndex(slots, 4);
  return rt.arena.views.i32.subarray(first, first + rows.length).reduce((a, b) => a + b, 0);
}

/** The argument rows of `split`: one per thread, or one alone for small or single-threaded work. */
function splitRows<K extends keyof KernelArgs>(
  rt: Runtime,
  args: KernelArgs[K],
  tensors: Tensors<K>,
  count: keyof KernelArgs[K],
): KernelArgs[K][] {
  const n = Number(args[count]), t = rt.threads;
  if (t === 1 || n < SPLIT_MIN) return [args];
  const named = args as Record<keyof KernelArgs[K], number>;
  return Array.from({ length: t }, (_, p) => {
    const from = Math.floor((n * p) / t / 4) * 4,
      to = p === t - 1 ? n : Math.floor((n * (p + 1)) / t / 4) * 4;
    const row = { ...named };
    for (
      const [ptr, fmt] of Object.entries(tensors) as [keyof KernelArgs[K], keyof KernelArgs[K] | "f32"][]
    ) {
      row[ptr] += from * (fmt === "f32" || named[fmt] === FP32 ? 4 : 2);
    }
    row[count] = to - from;
    return row as KernelArgs[K];
  });
}
