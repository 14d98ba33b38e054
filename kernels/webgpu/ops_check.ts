/**
 * The step's checks: all_finite (every element of every input finite) and count_lost (updates that left a
 * parameter unchanged). Both count in the scratch words with integer atomics, whose result does not depend
 * on the order threads add in, then write the count in a one-element pass.
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import { type GpuKernel, type GpuPass, threadsPass } from "./kernel.ts";

/** Zeroes scratch word 0, then runs `count` (WGSL adding to scr[0]) over `threads` threads, then `value`. */
function counted(threads: number, count: string, value: string): readonly GpuPass[] {
  return [
    threadsPass(1, "  atomicStore(&scr[0], 0u);"),
    threadsPass(threads, count),
    { kind: "map", code: `fn value(i: u32) -> f32 {\n  return ${value};\n}` },
  ];
}

/** 1 when every element of every input is finite, else 0. */
const allFinite: GpuKernel = ({ x }) =>
  counted(
    Math.max(...x.map((o) => o.size)),
    x.map((o, k) => `  if (t < ${o.size}u && !is_finite(x${k}(t))) { atomicAdd(&scr[0], 1u); }`).join("\n"),
    "select(1.0f, 0.0f, atomicLoad(&scr[0]) != 0u)",
  );

/** Elements of each (w, w', step) triple whose step is nonzero (or NaN) and whose w' equals w. */
const countLost: GpuKernel = ({ x }) => {
  const lines: string[] = [];
  for (let k = 0; k < x.length; k += 3) {
    lines.push(`  if (t < ${x[k].size}u) {
    let w0 = x${k}(t); let w1 = x${k + 1}(t); let s = x${k + 2}(t);
    if ((s != 0.0f || is_nan(s)) && w1 == w0 && !is_nan(w0)) { atomicAdd(&scr[0], 1u); }
  }`);
  }
  return counted(Math.max(...x.map((o) => o.size)), lines.join("\n"), "f32(atomicLoad(&scr[0]))");
};

/** Kernels of this file by op name. */
export const CHECKS = { all_finite: allFinite, count_lost: countLost } satisfies Partial<
  Record<OpName, GpuKernel>
>;
