/**
 * The engine registry: the list of engine specs (kernels/<name>/spec.ts).
 * Adding an engine is one folder and one line here. Engines load lazily, so,
 * for example, the native onnxruntime binding is only opened when the ort
 * engine is asked for.
 *
 * @module
 */

import type { Engine, EngineOptions } from "./engine.ts";
import type { EngineLimits, EngineSpec, Guarantee } from "./spec.ts";
import { REF } from "./ref/spec.ts";
import { WASM } from "./wasm/spec.ts";
import { ORT } from "./ort/spec.ts";
import { WEBGPU } from "./webgpu/spec.ts";

/** Every engine, in the order help texts list them. */
export const ENGINES: readonly EngineSpec[] = [REF, WASM, ORT, WEBGPU];

/** The engine `train` and `reproduce` use unless told otherwise: bit-identical to ref, and fast. */
export const DEFAULT_ENGINE = "wasm";

/** Every name an engine answers to on the command line (engines and their variants). */
export const ENGINE_NAMES: readonly string[] = ENGINES.flatMap((
  s,
) => [s.name, ...Object.keys(s.variants ?? {})]);

/** An engine name resolved: its spec and the options the name presets. */
export interface ResolvedEngine {
  readonly spec: EngineSpec;
  /** The options the name presets (a variant's), merged under the caller's. */
  readonly preset: EngineOptions;
}

/** The spec behind an engine name (an engine or a variant), or an error listing the known names. */
export function engineSpec(name: string): ResolvedEngine {
  for (const spec of ENGINES) {
    if (spec.name === name) return { spec, preset: {} };
    const v = spec.variants?.[name];
    if (v) return { spec, preset: v };
  }
  throw new RangeError(`Unknown engine "${name}": expected one of ${ENGINE_NAMES.join(", ")}`);
}

/** Loads the engine with this name, or throws an error listing the known engines. */
export async function loadEngine(name: string, options: EngineOptions = {}): Promise<Engine> {
  const { spec, preset } = engineSpec(name);
  return await spec.load({ ...options, ...preset });
}

/** The limits of an engine that refuses some policies, known without loading it; undefined when it has none. */
export function engineLimits(name: string): Promise<EngineLimits | undefined> {
  return Promise.resolve(engineSpec(name).spec.limits);
}

/** The guarantee of engine `name`'s results (with `options`). */
export function engineGuarantee(name: string, options: EngineOptions = {}): Guarantee {
  const { spec, preset } = engineSpec(name);
  return spec.guarantee({ ...options, ...preset });
}
