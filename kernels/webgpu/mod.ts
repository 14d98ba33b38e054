/**
 * The webgpu engine: the step graph as WGSL compute shaders (kernels/webgpu/ops_*.ts, assembled in ops.ts)
 * on the adapter Deno's navigator.gpu gives, compiled by compile.ts.
 *
 * @module
 */

import type { Engine } from "../engine.ts";
import { compileGraph } from "./compile.ts";
import { acquireGpu, gpuEnvironment } from "./device.ts";
import { KERNELS } from "./ops.ts";
import { settle } from "./result.ts";
import { GPU_FORMATS } from "./prelude.ts";
import { WEBGPU } from "./spec.ts";

/** Creates the webgpu engine on the default adapter. Call `close()` to release the device. */
export async function createEngine(): Promise<Engine> {
  const gpu = await acquireGpu();
  const guarantee = WEBGPU.guarantee({});
  const engine: Engine = {
    name: WEBGPU.name,
    description: WEBGPU.description,
    capabilities: {
      formats: GPU_FORMATS,
      ops: Object.keys(KERNELS),
      bitExactWithRef: guarantee.bitExactWithRef,
      deterministic: guarantee.deterministic,
    },
    compile: (graph) => compileGraph(graph, { engine, gpu }),
    environment: () => gpuEnvironment(gpu),
    settle,
    close: () => gpu.device.destroy(),
  };
  return engine;
}
