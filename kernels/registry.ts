/**
 * The engine registry: every engine lives in kernels/<name>/mod.ts and
 * exports `createEngine()`. Engines load lazily so that, for example, the
 * native onnxruntime binding is only opened when the ort engine is asked for.
 *
 * @module
 */

import type { Engine, EngineCapabilities, EngineOptions } from "./engine.ts";

const ENGINES: Record<string, (o: EngineOptions) => Promise<Engine>> = {
  ref: async () => (await import("./ref/mod.ts")).createEngine(),
  wasm: async (o) => await (await import("./wasm/mod.ts")).createEngine(o),
  "wasm-fast": async (o) => await (await import("./wasm/mod.ts")).createEngine({ ...o, fast: true }),
  ort: async (o) => await (await import("./ort/mod.ts")).createEngine(o),
};

/** The engine `train` and `reproduce` use unless told otherwise: bit-identical to ref, and fast. */
export const DEFAULT_ENGINE = "wasm";

/** Names of the registered engines. */
export const ENGINE_NAMES: readonly string[] = Object.keys(ENGINES);

/** Loads the engine with this name, or throws an error listing the known engines. */
export async function loadEngine(name: string, options: EngineOptions = {}): Promise<Engine> {
  const make = ENGINES[name];
  if (!make) throw new RangeError(`Unknown engine "${name}": expected one of ${ENGINE_NAMES.join(", ")}`);
  return await make(options);
}

/**
 * The limits of an engine that refuses some policies, known without creating it (ort's needs no
 * --allow-ffi); engines that run every policy give undefined.
 */
export async function engineLimits(
  name: string,
): Promise<Pick<EngineCapabilities, "formats" | "accumulate" | "stochasticRounding"> | undefined> {
  return name === "ort" ? (await import("./ort/capabilities.ts")).ORT_CAPABILITIES : undefined;
}
