/**
 * The ort engine's spec: the whole step as one ONNX model on onnxruntime. Its intra-op thread count changes
 * the bits (the order of its float32 sums), so it belongs to the run config; the native library needs
 * --allow-ffi.
 *
 * @module
 */

import type { EngineSpec } from "../spec.ts";

/**
 * The lockfile that pins onnxruntime-node (with everything deno.lock pins): only processes that may load the
 * ort engine use it, so other runs never download the 288 MB package.
 */
export const ORT_LOCKFILE: URL = new URL("./deno.lock", import.meta.url);

/** The ort engine. */
export const ORT: EngineSpec = {
  name: "ort",
  description: "onnxruntime (CPU): the whole step as one ONNX model; not bit-exact with ref",
  limits: { formats: ["fp32", "fp16", "bf16"], accumulate: ["fp32"], stochasticRounding: false },
  options: ["threads"],
  bitOptions: ["threads"],
  // One thread by default: ort's bits depend on it, so the default is the same on every machine.
  defaults: { threads: 1 },
  denoFlags: ["--allow-ffi", `--lock=${ORT_LOCKFILE.pathname}`],
  guarantee: () => ({
    bitExactWithRef: false,
    deterministic: true,
    text: "deterministic on one machine with one thread count; NOT bit-exact: each op within 1e-6 (fp32) " +
      "or one ulp (fp16/bf16) of the exact result, or within twice ref's own error",
  }),
  load: async (o) => await (await import("./mod.ts")).createEngine(o),
};
