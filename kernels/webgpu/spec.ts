/**
 * The webgpu engine's spec: the step graph as WGSL compute shaders on a WebGPU adapter (Deno's built-in
 * navigator.gpu: Vulkan, Metal or Direct3D 12). Results are deterministic on one GPU and driver; each op is
 * within the ort tolerance rule of the exact result, not ref's bits (f32 arithmetic for elementwise work and
 * for the ported math functions, where ref computes in float64).
 *
 * @module
 */

import type { EngineSpec } from "../spec.ts";

/** The webgpu engine. */
export const WEBGPU: EngineSpec = {
  name: "webgpu",
  description:
    "WGSL compute shaders on a WebGPU adapter (any vendor's GPU, or lavapipe); not bit-exact with ref",
  limits: { formats: ["fp32", "fp16", "bf16"] },
  options: [],
  bitOptions: [],
  // Deno's WebGPU needs no permission.
  denoFlags: [],
  guarantee: () => ({
    bitExactWithRef: false,
    deterministic: true,
    text: "deterministic on one GPU and driver; NOT bit-exact: each op within 1e-6 (fp32) or one ulp " +
      "(fp16/bf16) of the exact result, or within twice ref's own error",
  }),
  load: async () => await (await import("./mod.ts")).createEngine(),
};
