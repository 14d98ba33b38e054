/**
 * The webgpu engine: the step graph as WGSL compute shaders (kernels/webgpu/ops_*.ts, assembled in ops.ts)
 * on the adapter Deno's navigator.gpu gives, compiled by compile.ts.
 *
 * @module
 */

import type { Engine, EngineOptions } from "../engine.ts";
import { compileGraph } from "./compile.ts";
import { acquireGpu, fp16Problem, gpuEnvironment } from "./device.ts";
import { KERNELS } from "./ops.ts";
import { settle } from "./result.ts";
import { GPU_FORMATS } from "./prelude.ts";
import { WEBGPU } from "./spec.ts";

/**
 * Creates the webgpu engine on the default adapter; `shaderF16: false` runs it as if the adapter lacked
 * `shader-f16` (fp16 refused). Call `close()` to release the device.
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const gpu = await acquireGpu({ shaderF16: options.shaderF16 });
  const guarantee = WEBGPU.guarantee({});
  const noFp16 = fp16Problem(gpu);
  const engine: Engine = {
    name: WEBGPU.name,
    description: WEBGPU.description,
    capabilities: {
      formats: noFp16 ? GPU_FORMATS.filter((f) => f !== "fp16") : GPU_FORMATS,
      ops: Object.keys(KERNELS),
      bitExactWithRef: guarantee.bitExactWithRef,
      deterministic: guarantee.deterministic,
      // fp16 computes in WGSL f16 where an op is one IEEE operation (docs/engines.md); bf16 has no WGSL type.
      native16: noFp16 ? [] : ["fp16"],
      ...(noFp16 ? { unavailable: { fp16: noFp16 } } : {}),
    },
    compile: (graph) => compileGraph(graph, { engine, gpu }),
    environment: () => gpuEnvironment(gpu),
    settle,
    close: () => gpu.device.destroy(),
  };
  return engine;
}
