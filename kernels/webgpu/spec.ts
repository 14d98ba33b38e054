/**
 * The webgpu engine's spec: the step graph as WGSL compute shaders on a WebGPU adapter (Deno's built-in
 * navigator.gpu: Vulkan, Metal or Direct3D 12). Results are deterministic on one GPU and driver; each op is
 * within the ort tolerance rule of the exact result, not ref's bits (f32 arithmetic for elementwise work and
 * for the ported math functions, where ref computes in float64). fp16 runs in WGSL f16 (`shader-f16`, which
 * the engine requests whenever the adapter offers it): ops that are one IEEE operation (add, relu, the
 * optimizer's rounded steps) compute in f16, the others in f32 rounded once, matmul and convolutions
 * accumulate in f32 (docs/engines.md has the table). Without `shader-f16` (or with the option `shaderF16:
 * false`) the engine refuses fp16 with the reason and runs fp32 and bf16. bf16 has no WGSL type: it is
 * packed in u32 words, computed in f32 and rounded in integers. On lavapipe (Mesa's software Vulkan) the
 * conformance suite's MLP step graphs give ref's bits in every op but softmax_xent_grad (docs/engines.md).
 * Deno needs no permission for WebGPU.
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
  options: ["shaderF16"],
  bitOptions: [],
  // Half batches in the conformance suite: on lavapipe (2 CPU cores) the full ones take minutes. The engine
  // places a graph in one buffer, which lavapipe binds up to 128 MiB: MobileNet's isolated ops (237 MiB at
  // batch 2, mostly weights, so a smaller batch does not help) are compared in graphs of at most 96 MiB.
  // Its training check runs 2 epochs (three took 2 min of the suite's 20 on lavapipe); the loss gap and the
  // repeated bits are checked the same.
  conformance: { batchScale: 0.5, graphBytes: 96 * 2 ** 20, epochs: 2 },
  // Deno's WebGPU needs no permission.
  denoFlags: [],
  guarantee: () => ({
    bitExactWithRef: false,
    deterministic: true,
    text: "deterministic on one GPU and driver; NOT bit-exact: each op within 1e-6 (fp32) or one ulp " +
      "(fp16/bf16) of the exact result, or within twice ref's own error; fp16 in WGSL f16 (shader-f16), " +
      "bf16 emulated in f32 (on lavapipe, matmul, sums and the optimizer updates gave ref's bits)",
  }),
  load: async (options) => await (await import("./mod.ts")).createEngine(options),
};
