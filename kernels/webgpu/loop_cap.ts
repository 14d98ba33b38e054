/**
 * The loop limit of Mesa's llvmpipe (lavapipe, the software Vulkan driver CI runs on): it ends a thread's
 * loops after 65535 iterations in all (LP_MAX_TGSI_LOOP_ITERATIONS, a guard against endless shaders) and
 * the thread goes on with whatever it had, so a long sequential reduction silently gives wrong numbers.
 * Measured here: a sum of 70,000 terms in one WGSL loop stops after 65,535; two calls of a 40,000-term loop
 * in one thread get 65,535 iterations between them. Kernels state their worst case (`loops` on a pass) and
 * the compiler refuses a pass over the limit on llvmpipe, with the node and a way out, rather than run it.
 *
 * @module
 */

import { UserError } from "../../lib/errors.ts";
import type { Node } from "../../lib/graph/graph.ts";
import type { GpuOperand, GpuPass } from "./kernel.ts";

/** Loop iterations llvmpipe runs in one thread before it stops its loops. */
export const LLVMPIPE_LOOPS = 65535;

/** What a kernel may plan for one thread, with room under {@linkcode LLVMPIPE_LOOPS}. */
export const THREAD_LOOPS = 60000;

/** Throws a one-line error when a pass of `node` may run more loop iterations in a thread than `adapter` allows. */
export function assertLoops(
  adapter: GPUAdapter,
  node: Node,
  y: GpuOperand,
  passes: readonly GpuPass[],
): void {
  if (!adapter.info.description.includes("llvmpipe")) return;
  for (const p of passes) {
    // A map with a 16-bit output computes the two elements of a word in one thread.
    const loops = (p.loops ?? 0) * (p.kind === "map" && y.format !== "fp32" ? 2 : 1);
    if (loops > LLVMPIPE_LOOPS) {
      throw new UserError(
        `Node ${node.id} (${node.op} [${node.shape}]) needs ${loops} loop iterations in one GPU thread; ` +
          `lavapipe stops a thread after ${LLVMPIPE_LOOPS} (use a smaller batch, or a real GPU)`,
      );
    }
  }
}
