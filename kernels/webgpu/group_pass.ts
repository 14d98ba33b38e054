/**
 * The window and norm kernels' pass builders: custom passes in which one workgroup owns one unit of work (a
 * group of a norm, a tile of a convolution) or one thread owns one, and map passes with helper functions.
 *
 * @module
 */

import type { CustomPass, MapPass } from "./kernel.ts";

/** The WGSL of a pass: helper functions and workgroup memory, the body, and its loop iterations per thread. */
export interface Shader {
  readonly decls?: string;
  readonly body: string;
  /** The most loop iterations one thread (a map: one output element) runs; see {@linkcode MapPass.loops}. */
  readonly loops?: number;
}

/** A map pass whose `fn value(i: u32) -> f32` has `body`, with `decls` beside it. */
export function valuePass({ decls = "", body, loops }: Shader): MapPass {
  return { kind: "map", code: `${decls}\nfn value(i: u32) -> f32 {\n${body}\n}`, loops };
}

/** Threads per workgroup of a group pass. */
export const GROUP_THREADS = 64;
const MAX_GROUPS = 65535;

/**
 * Threads of a workgroup that relay a long sum (conv2d's weight gradient, sum_to): one per 8 threads,
 * because llvmpipe runs 8 threads in lockstep (its subgroup) and counts their loop iterations together.
 */
export const RELAYS = GROUP_THREADS / 8;

/**
 * The body of a relay pass: threads of different subgroups take turns, each calling `step(grp, turn, s)`
 * to add the next part of the sum to the running sum it finds in workgroup memory (`part`, which `decls`
 * must declare), so the order (and the bits) are those of one sequential sum while no thread loops past
 * llvmpipe's limit.
 */
export function relayBody(turns: number, step: string): string {
  return `  if (lid == 0) { part = 0.0; }
  for (var turn = 0; turn < ${turns}; turn++) {
    workgroupBarrier();
    if (lid == (turn % ${RELAYS}) * ${GROUP_THREADS / RELAYS}) { part = ${step}(grp, turn, part); }
  }
  workgroupBarrier();
  if (lid == 0) { st_y(u32(grp), part); }`;
}

/**
 * A pass of `groups` workgroups of {@linkcode GROUP_THREADS} threads. `body` runs with `grp: i32` (the
 * workgroup's unit, the same for all its threads, so barriers inside it are in uniform control flow) and
 * `lid: i32` (the thread in the workgroup); `decls` go before the entry point (functions, workgroup memory).
 */
export function groupPass(groups: number, { decls = "", body, loops }: Shader): CustomPass {
  const x = Math.min(Math.max(groups, 1), MAX_GROUPS);
  return {
    kind: "custom",
    workgroups: [x, Math.ceil(groups / x), 1],
    loops,
    code: `${decls}
@compute @workgroup_size(${GROUP_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let grp = i32(wid.x + wid.y * ${x}u);
  let lid = i32(li);
  if (grp >= ${groups}) { return; }
${body}
}`,
  };
}

/** A pass of one thread per unit `t: i32` in [0, `units`), for work with no sharing between threads. */
export function threadPass(units: number, { body, ...rest }: Shader): CustomPass {
  return groupPass(Math.ceil(units / GROUP_THREADS), {
    ...rest,
    body: `  let t = grp * ${GROUP_THREADS} + lid;
  if (t >= ${units}) { return; }
${body}`,
  });
}
