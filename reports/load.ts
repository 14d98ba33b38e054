/**
 * Reads a runs folder for the report: every `*.json` run record, the
 * optional `determinism.json`, `matrix.json` and `tolerance/*.json`. A report over a long reproduction must not be
 * lost to one half-written or foreign file, so every file that cannot be used
 * is listed with its reason instead of failing the whole report. Files are
 * read in name order so that the result does not depend on the order the
 * file system lists them in.
 *
 * @module
 */

import { type LoadedRecord, readJson, readRunRecords, type SkippedFile } from "../lib/record/read.ts";
import { type LoadedTolerance, loadMatrix, loadTolerance, type Matrix, MATRIX_FILE } from "./inputs.ts";
import { DETERMINISM_SCHEMA, type DeterminismCheck } from "../lib/record/schema.ts";

export type { DeterminismCheck, LoadedRecord, LoadedTolerance, Matrix, SkippedFile };

/** Everything the report reads from a runs folder. */
export interface LoadedRuns {
  /** Valid records in file-name order. */
  readonly records: readonly LoadedRecord[];
  /** The determinism checks, or null when the folder has no usable determinism.json. */
  readonly determinism: readonly DeterminismCheck[] | null;
  /** The experiment matrix, or null when absent or unusable (then every record counts as main). */
  readonly matrix: Matrix | null;
  /** Usable tolerance results in file-name order. */
  readonly tolerance: readonly LoadedTolerance[];
  readonly skipped: readonly SkippedFile[];
}

/** The file name of the determinism summary inside a runs folder. */
export const DETERMINISM_FILE = "determinism.json";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isNumOrNull = (v: unknown) => v === null || isNum(v);

/** Returns the first problem with a parsed determinism summary, or null when it is usable. */
export function determinismProblem(v: unknown): string | null {
  if (!isObject(v)) return "Not a JSON object";
  if (v.schema !== DETERMINISM_SCHEMA) {
    return `Schema is ${JSON.stringify(v.schema ?? null)}, not "${DETERMINISM_SCHEMA}"`;
  }
  if (!Array.isArray(v.checks)) return "Missing or invalid field checks";
  for (let i = 0; i < v.checks.length; i++) {
    const c = v.checks[i];
    if (!isObject(c)) return `Invalid checks[${i}]`;
    for (const f of ["id", "model", "precision", "engine", "weightHash"] as const) {
      if (!isStr(c[f])) return `Missing or invalid field checks[${i}].${f}`;
    }
    // A re-run that produced no record has null re-run hashes (and an error).
    if (!(isStr(c.rerunWeightHash) || c.rerunWeightHash === null)) {
      return `Missing or invalid field checks[${i}].rerunWeightHash`;
    }
    if (!isNum(c.seed)) return `Missing or invalid field checks[${i}].seed`;
    if (typeof c.identical !== "boolean") return `Missing or invalid field checks[${i}].identical`;
    if (!isNumOrNull(c.firstDifferingEpoch ?? null)) {
      return `Missing or invalid field checks[${i}].firstDifferingEpoch`;
    }
  }
  return null;
}

/**
 * Reads the run records, the determinism summary, the experiment matrix and
 * the tolerance results of `runsDir`; unusable files go to `skipped`.
 */
export async function loadRuns(runsDir: string): Promise<LoadedRuns> {
  const { records, skipped } = await readRunRecords(runsDir, [DETERMINISM_FILE, MATRIX_FILE]);
  let determinism: DeterminismCheck[] | null = null;
  const exists = await Deno.stat(`${runsDir}/${DETERMINISM_FILE}`).then(() => true, () => false);
  if (exists) {
    const read = await readJson(`${runsDir}/${DETERMINISM_FILE}`);
    const problem = "error" in read ? read.error : determinismProblem(read.value);
    if (problem) skipped.push({ file: DETERMINISM_FILE, reason: problem });
    else determinism = (read as { value: { checks: DeterminismCheck[] } }).value.checks;
  }
  const matrix = await loadMatrix(runsDir, skipped);
  const tolerance = await loadTolerance(runsDir, skipped);
  skipped.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { records, determinism, matrix, tolerance, skipped };
}
