/**
 * What the ort engine can do, known without loading onnxruntime (so `reproduce`, which has no --allow-ffi,
 * can tell which cells it would refuse before starting any).
 *
 * @module
 */

import type { EngineCapabilities } from "../engine.ts";
import { LOWERINGS } from "./model.ts";

/** The ort engine's capabilities (kernels/ort/mod.ts explains each limit). */
export const ORT_CAPABILITIES: EngineCapabilities = {
  formats: ["fp32", "fp16", "bf16"],
  ops: Object.keys(LOWERINGS),
  bitExactWithRef: false,
  deterministic: true,
  accumulate: ["fp32"],
  stochasticRounding: false,
};
