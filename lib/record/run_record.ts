/**
 * Run records: one schema-versioned JSON file per trained configuration.
 *
 * The record id is derived from the config alone, so a finished cell can be
 * found (and not run again) by its config. `metricsHash` covers every
 * per-epoch metric except timings; together with `weightHash` it is what the
 * determinism check compares.
 *
 * @module
 */

import type { Policy } from "../policy/policy.ts";
import { sha256Hex } from "./hash.ts";
import { writeAtomic } from "./atomic.ts";
import {
  type Divergence,
  type EpochMetrics,
  type MemoryFigures,
  RUN_SCHEMA,
  type RunConfig,
  type RunLaunch,
  type RunRecord,
} from "./schema.ts";

/**
 * The environment variable through which a driver (reproduce) tells the `train` it starts how it was
 * launched ({@linkcode RunLaunch} as JSON); it is not part of the config, so it changes no id or hash.
 */
export const LAUNCH_ENV = "F16REPRO_LAUNCH";

/** The launch facts a driver passed in {@linkcode LAUNCH_ENV}, or undefined when none (or malformed). */
export function launchFromEnv(): RunLaunch | undefined {
  let text: string | undefined;
  try {
    text = Deno.env.get(LAUNCH_ENV);
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text ?? "null");
    return typeof v?.command === "string" && Number.isSafeInteger(v?.cellsAtOnce) && v.cellsAtOnce > 0
      ? { command: v.command, cellsAtOnce: v.cellsAtOnce }
      : undefined;
  } catch {
    return undefined;
  }
}

/** JSON with object keys sorted at every level (stable bytes for hashing). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, val) =>
      val && typeof val === "object" && !Array.isArray(val)
        ? Object.fromEntries(Object.keys(val).sort().map((k) => [k, (val as Record<string, unknown>)[k]]))
        : val,
  );
}

/** The id of a config: the first 16 hex digits of the SHA-256 of its canonical JSON. */
export async function configId(c: RunConfig): Promise<string> {
  return (await sha256Hex(canonicalJson(c))).slice(0, 16);
}

/** Per-epoch metrics without their timings: what determinism covers (timings vary run to run). */
export function bareEpochs(
  epochs: readonly EpochMetrics[],
): Omit<EpochMetrics, "trainSeconds" | "evalSeconds" | "samplesPerSecond">[] {
  return epochs.map(({ trainSeconds: _t, evalSeconds: _e, samplesPerSecond: _s, ...m }) => m);
}

/** SHA-256 of the per-epoch metrics without timings (exact float64 values via JSON). */
export async function metricsHash(
  epochs: readonly EpochMetrics[],
  divergence: Divergence | null,
): Promise<string> {
  return await sha256Hex(canonicalJson({ epochs: bareEpochs(epochs), divergence }));
}

/** What a finished (or diverged) training produced that its record keeps. */
export interface RunOutcome {
  readonly epochs: readonly EpochMetrics[];
  readonly divergence: Divergence | null;
  readonly weightHash: string;
  readonly parameterCount: number;
  readonly memory: MemoryFigures;
  readonly totalSeconds: number;
}

/** Assembles the record of a finished (or diverged) run. */
export async function makeRunRecord(
  config: RunConfig,
  policy: Policy,
  result: RunOutcome,
  dataset: Readonly<Record<string, unknown>>,
  environment: Readonly<Record<string, unknown>>,
): Promise<RunRecord> {
  const last = result.epochs.at(-1);
  return {
    schema: RUN_SCHEMA,
    id: await configId(config),
    config,
    policy,
    status: result.divergence ? "diverged" : "completed",
    divergence: result.divergence,
    epochs: result.epochs,
    final: { testAccuracy: last?.testAccuracy ?? null, trainLoss: last?.trainLoss ?? null },
    weightHash: result.weightHash,
    metricsHash: await metricsHash(result.epochs, result.divergence),
    parameterCount: result.parameterCount,
    memory: result.memory,
    timings: {
      totalSeconds: result.totalSeconds,
      trainSeconds: result.epochs.reduce((s, e) => s + e.trainSeconds, 0),
    },
    dataset,
    environment,
    createdAt: new Date().toISOString(),
  };
}

/** Writes a record as `<dir>/<id>.json` (creating `dir`) and returns the path. */
export async function writeRunRecord(dir: string, r: RunRecord): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir.replace(/\/+$/, "")}/${r.id}.json`;
  await writeAtomic(path, JSON.stringify(r, null, 2) + "\n");
  return path;
}
