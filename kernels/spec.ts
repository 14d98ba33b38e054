/**
 * The one shape of an engine plug-in: each engine folder kernels/<name>/
 * holds a `spec.ts` exporting a {@linkcode EngineSpec} beside its `mod.ts`.
 * Everything the rest of the program needs to know about an engine without
 * loading it (names, variants, what it can run, the permissions a process
 * needs to run it, which options change its bits, the guarantee a report
 * prints) lives in the spec, so nothing outside kernels/ branches on an
 * engine's name, and a new engine is one folder plus one line in
 * kernels/registry.ts.
 *
 * @module
 */

import type { Engine, EngineCapabilities, EngineOptions } from "./engine.ts";

/** What an engine can run, known without loading it. */
export type EngineLimits = Pick<EngineCapabilities, "formats" | "accumulate" | "stochasticRounding">;

/** The guarantee of an engine's results, as run records store it and reports print it. */
export interface Guarantee {
  /** True when every op gives the same bits as the ref engine. */
  readonly bitExactWithRef: boolean;
  /** True when a run repeats its bits on the same machine (with the same bit-changing options). */
  readonly deterministic: boolean;
  /** One sentence for the report, e.g. "bit-identical to ref on any machine". */
  readonly text: string;
}

/** An engine option a user can set (each engine accepts some). */
export type OptionName = keyof EngineOptions;

/** The static description of an engine. */
export interface EngineSpec {
  /** The engine's name on the command line and in run records. */
  readonly name: string;
  /** One line for `--help`. */
  readonly description: string;
  /** Other command-line names for this engine with options preset (wasm-fast is wasm with `fast`). */
  readonly variants?: Readonly<Record<string, EngineOptions>>;
  /** What it can run, known without loading it; undefined when it runs every policy. */
  readonly limits?: EngineLimits;
  /** The options it accepts; any other is refused with a reason. */
  readonly options: readonly OptionName[];
  /** Options that change its bits: a run config records them, so the run's id and its re-runs include them. */
  readonly bitOptions: readonly OptionName[];
  /** The value a bit-changing option takes when the user gives none (recorded in the config). */
  readonly defaults?: EngineOptions;
  /**
   * Deno flags a process needs beyond `train`'s own to run it: permissions (--allow-ffi) and the lockfile
   * that pins its packages (ort's). Child processes and the tasks in deno.json use exactly these.
   */
  readonly denoFlags: readonly string[];
  /** Modules `deno compile` must be told to include because nothing imports them statically (workers). */
  readonly compileIncludes?: readonly URL[];
  /**
   * How the conformance suite (tests/support/conformance.ts) sizes this engine's cases: `batchScale`
   * multiplies every case's batch (rounded up, at least 1), for an engine whose usual adapter is too slow or
   * too small for the full batches (webgpu on lavapipe); `graphBytes` splits a graph of isolated ops
   * (tolerance mode) into graphs whose tensors stay under that many bytes, for an engine that places a
   * graph in one buffer of bounded size; `epochs` is the length of the tolerance mode's training check
   * (default 3), for an engine whose usual adapter trains slowly. The graphs, the ops compared and the rule
   * stay the same.
   */
  readonly conformance?: {
    readonly batchScale?: number;
    readonly graphBytes?: number;
    readonly epochs?: number;
  };
  /** The guarantee of its results with `options`. */
  guarantee(options: EngineOptions): Guarantee;
  /** Loads and starts the engine. */
  load(options: EngineOptions): Promise<Engine>;
}
