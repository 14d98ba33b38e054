/**
 * The webgpu engine's spec: the step graph as WGSL compute shaders on a WebGPU adapter (Deno's built-in
 * navigator.gpu: Vulkan, Metal or Direct3D 12). Results are deterministic on one GPU and driver; each op is
 * within the ort tolerance rule of the exact result, not ref's bits (f32 arithmetic for elementwise work and
 * for the ported math functions, where ref computes in float64). On lavapipe (Mesa's software Vulkan), in the
 * conformance suite's MLP step graphs every op but softmax_xent_grad gave ref's bits; in a hand-built graph
 * on odd shapes, so did the data movement ops, relu and tanh, while gelu, softmax, dropout, scale and
 * tanh_grad did not (docs/engines.md). fp16 and bf16 are packed in u32 words and rounded in integer
 * arithmetic, so the engine needs no `shader-f16` and runs every format on any adapter. Deno needs no
 * permission for WebGPU.
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
  conformance: { batchScale: 0.5, graphBytes: 96 * 2 ** 20 },
  // Deno's WebGPU needs no permission.
  denoFlags: [],
  guarantee: () => ({
    bitExactWithRef: false,
    deterministic: true,
    text: "deterministic on one GPU and driver; NOT bit-exact: each op within 1e-6 (fp32) or one ulp " +
      "(fp16/bf16) of the exact result, or within twice ref's own error (on lavapipe, matmul, sums and the " +
      "optimizer updates gave ref's bits)",
  }),
  load: async (options) => await (await import("./mod.ts")).createEngine(options),
};
