/**
 * The wasm engine's spec: AssemblyScript SIMD kernels on worker threads. The thread count never changes the
 * bits; `fast` (the wasm-fast variant) uses fused multiply-add and is not bit-exact with ref.
 *
 * @module
 */

import type { EngineSpec } from "../spec.ts";

/** The wasm engine and its wasm-fast variant. */
export const WASM: EngineSpec = {
  name: "wasm",
  description: "AssemblyScript wasm SIMD kernels, multi-threaded, bit-identical to ref (the default)",
  variants: { "wasm-fast": { fast: true } },
  options: ["threads", "fast"],
  bitOptions: ["fast"],
  denoFlags: [],
  // Started with `new Worker(...)`, which deno compile does not follow.
  compileIncludes: [new URL("./worker.ts", import.meta.url)],
  guarantee: (o) =>
    o.fast
      ? {
        bitExactWithRef: false,
        deterministic: true,
        text: "deterministic on one machine; NOT bit-exact with ref (fused multiply-add in the gemm)",
      }
      : { bitExactWithRef: true, deterministic: true, text: "bit-identical to ref, any thread count" },
  load: async (o) => await (await import("./mod.ts")).createEngine(o),
};
