/**
 * What the ort engine can do: its spec's limits (known without loading onnxruntime, so `reproduce`, which has
 * no --allow-ffi, can tell which cells it would refuse before starting any) with its op table.
 *
 * @module
 */

import type { EngineCapabilities } from "../engine.ts";
import { LOWERINGS } from "./model.ts";
import { ORT } from "./spec.ts";

/** The ort engine's capabilities (kernels/ort/mod.ts explains each limit). */
export const ORT_CAPABILITIES: EngineCapabilities = {
  ...ORT.limits!,
  ops: Object.keys(LOWERINGS),
  bitExactWithRef: ORT.guarantee({}).bitExactWithRef,
  deterministic: ORT.guarantee({}).deterministic,
};
