/**
 * The ort engine's spec: the whole step as one ONNX model on onnxruntime. Its intra-op thread count changes
 * the bits (the order of its float32 sums), so it belongs to the run config; the native library needs
 * --allow-ffi.
 *
 * @module
 */

import type { EngineSpec } from "../spec.ts";

/** The ort engine. */
export const ORT: EngineSpec = {
  name: "ort",
  description: "onnxruntime (CPU): the whole step as one ONNX model; not bit-exact with ref",
  limits: { formats: ["fp32", "fp16", "bf16"], accumulate: ["fp32"], stochasticRounding: false },
  options: ["threads"],
  bitOptions: ["threads"],
  permissions: ["--allow-ffi"],
  guarantee: () => ({
    bitExactWithRef: false,
    deterministic: true,
    text: "deterministic on one machine with one thread count; NOT bit-exact: each op within 1e-6 (fp32) " +
      "or one ulp (fp16/bf16) of the exact result, or within twice ref's own error",
  }),
  load: async (o) => await (await import("./mod.ts")).createEngine(o),
};
