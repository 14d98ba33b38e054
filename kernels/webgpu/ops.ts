/**
 * The webgpu op table: every kernel by op name, one spread line per ops_*.ts file.
 *
 * @module
 */

import type { OpName } from "../../lib/graph/ops.ts";
import type { GpuKernel } from "./kernel.ts";
import { CHECKS } from "./ops_check.ts";
import { LINEAR } from "./ops_linear.ts";
import { OPTIM } from "./ops_optim.ts";
import { POINTWISE } from "./ops_pointwise.ts";
import { SHAPE } from "./ops_shape.ts";
import { SOFTMAX } from "./ops_softmax.ts";
import { WINDOW } from "./ops_window.ts";
import { POOL } from "./ops_pool.ts";
import { NORM } from "./ops_norm.ts";

/** Every webgpu kernel by op name (the engine's capabilities list exactly these). */
export const KERNELS: Readonly<Partial<Record<OpName, GpuKernel>>> = {
  ...LINEAR,
  ...POINTWISE,
  ...SOFTMAX,
  ...SHAPE,
  ...OPTIM,
  ...CHECKS,
  ...WINDOW,
  ...POOL,
  ...NORM,
};
