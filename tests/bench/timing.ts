/**
 * What the benchmarks share: medians, repeated timings, Markdown tables, and the wasm gemm they measure
 * the engines' matmul speed with.
 *
 * @module
 */

import type { Engine } from "../../kernels/engine.ts";
import { type FormatName, rounder } from "../../lib/formats/format.ts";
import { Graph } from "../../lib/graph/graph.ts";
import { Rng } from "../../lib/random.ts";

/** The median of `xs` (the mean of the two middle values of an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b), h = s.length >> 1;
  // An even count has two middle values: their mean, so two rounds do not report the slower one.
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Seconds per call of `f`, calling it for at least `minMs` (and at least once). */
export async function timeOnce(f: () => Promise<unknown>, minMs: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs || n === 0) (await f(), n++);
  return (performance.now() - t0) / 1000 / n;
}

/** Median seconds per call of `f` over `repeats` timings of at least `minMs` each, after one warm-up call. */
export async function timeMedian(f: () => Promise<unknown>, minMs: number, repeats: number): Promise<number> {
  await f();
  const per: number[] = [];
  for (let r = 0; r < repeats; r++) per.push(await timeOnce(f, minMs));
  return median(per);
}

/** A Markdown table: a header row, its rule, one line per row. */
export function markdownTable(
  head: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  return [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** GFLOP/s of an m x k x n matmul taking `seconds`. */
export const gemmGflops = (dims: readonly number[], seconds: number): number =>
  (2 * dims[0] * dims[1] * dims[2]) / seconds / 1e9;

/** A function that runs one [m, k] x [k, n] matmul in `format` on engine `e` (seeded random operands). */
export function matmulRunner(
  e: Engine,
  [m, k, n]: readonly number[],
  format: FormatName,
): () => Promise<unknown> {
  const g = new Graph();
  const a = g.leaf("input", "a", [m, k], { format }), b = g.leaf("input", "b", [k, n], { format });
  g.outputs.c = g.add("matmul", [a, b], {}, { format });
  const rng = new Rng(1, "bench"), r = rounder(format);
  const data = (len: number) => Float64Array.from({ length: len }, () => r(rng.uniform() - 0.5));
  const feeds = {
    a: { shape: [m, k], format, data: data(m * k) },
    b: { shape: [k, n], format, data: data(k * n) },
  };
  const exe = e.compile(g);
  return () => exe.run(feeds);
}
