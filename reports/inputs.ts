/**
 * The report's optional inputs beside the run records: `matrix.json`, which
 * says which record belongs to which experiment (so the pitfall experiments
 * stay out of the main comparison), and the tolerance results under
 * `tolerance/`. Like the run records they are validated field by field and a
 * file that cannot be used is listed with its reason, never fatal: a damaged
 * matrix only means that every record counts as main, and a damaged
 * tolerance file only loses its own panel.
 *
 * @module
 */

import { readJson, type SkippedFile } from "../lib/record/read.ts";
import { MATRIX_SCHEMA, TOLERANCE_SCHEMA, type ToleranceResult } from "../lib/record/schema.ts";

export type { ToleranceResult };

/** The file name of the experiment matrix inside a runs folder. */
export const MATRIX_FILE = "matrix.json";
/** The folder of tolerance results inside a runs folder. */
export const TOLERANCE_DIR = "tolerance";

/** What an experiment is for; each kind has its own figures. */
export type ExperimentKind = "main" | "epsilon" | "accumulation";
const KINDS: readonly string[] = ["main", "epsilon", "accumulation"];

/** One cell of an experiment: the record id and how the profile labelled it. */
export interface MatrixCell {
  readonly id: string;
  /** The variant label, e.g. "epsilon 1e-7"; "" for the main experiments. */
  readonly variant: string;
  readonly precision: string;
  readonly seed: number;
}

/** One experiment of the profile. */
export interface MatrixExperiment {
  readonly name: string;
  readonly kind: ExperimentKind;
  readonly description: string;
  readonly cells: readonly MatrixCell[];
}

/** The parsed `matrix.json`. */
export interface Matrix {
  readonly schema: typeof MATRIX_SCHEMA;
  readonly profile: string;
  readonly experiments: readonly MatrixExperiment[];
}

/** A tolerance result with the name of its file (relative to the runs folder, e.g. "tolerance/x.json"). */
export interface LoadedTolerance {
  readonly file: string;
  readonly result: ToleranceResult;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === "string";
const schemaProblem = (v: Json, schema: string) =>
  v.schema === schema ? null : `Schema is ${JSON.stringify(v.schema ?? null)}, not "${schema}"`;

/** Returns the first problem with a parsed `matrix.json`, or null when it is usable. */
export function matrixProblem(v: unknown): string | null {
  if (!isObject(v)) return "Not a JSON object";
  const schema = schemaProblem(v, MATRIX_SCHEMA);
  if (schema) return schema;
  if (!isStr(v.profile)) return "Missing or invalid field profile";
  if (!Array.isArray(v.experiments)) return "Missing or invalid field experiments";
  for (let i = 0; i < v.experiments.length; i++) {
    const e = v.experiments[i], at = `experiments[${i}]`;
    if (!isObject(e)) return `Invalid ${at}`;
    if (!isStr(e.name)) return `Missing or invalid field ${at}.name`;
    if (!KINDS.includes(e.kind as string)) return `Missing or invalid field ${at}.kind`;
    if (!isStr(e.description)) return `Missing or invalid field ${at}.description`;
    if (!Array.isArray(e.cells)) return `Missing or invalid field ${at}.cells`;
    for (let j = 0; j < e.cells.length; j++) {
      const c = e.cells[j];
      if (!isObject(c)) return `Invalid ${at}.cells[${j}]`;
      for (const f of ["id", "variant", "precision"] as const) {
        if (!isStr(c[f])) return `Missing or invalid field ${at}.cells[${j}].${f}`;
      }
      if (!isNum(c.seed)) return `Missing or invalid field ${at}.cells[${j}].seed`;
    }
  }
  return null;
}

const SPACE_COUNTS = ["count", "satisfied", "disagreements", "violations"] as const;
const SPACE_SHARES = ["satisfiedShare", "accuracy32", "accuracy16", "bound"] as const;

/** The first problem with one output space of a tolerance result. */
function spaceProblem(v: unknown, space: string): string | null {
  if (!isObject(v)) return `Missing or invalid field ${space}`;
  if (v.space !== space) return `Missing or invalid field ${space}.space`;
  for (const f of SPACE_COUNTS) if (!isInt(v[f])) return `Missing or invalid field ${space}.${f}`;
  for (const f of SPACE_SHARES) if (!isNum(v[f])) return `Missing or invalid field ${space}.${f}`;
  const points = v.points;
  if (!Array.isArray(points)) return `Missing or invalid field ${space}.points`;
  // A short list means a truncated or hand-edited file; its counts would not match what is drawn.
  if (points.length !== v.count) return `${space}.points has ${points.length} entries, count is ${v.count}`;
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (!isObject(p)) return `Invalid ${space}.points[${i}]`;
    for (const f of ["i", "label", "pred32", "pred16"] as const) {
      if (!Number.isInteger(p[f])) return `Missing or invalid field ${space}.points[${i}].${f}`;
    }
    // A non-finite error or tolerance (an fp16 overflow) is written by JSON as null.
    for (const f of ["delta", "gamma"] as const) {
      if (!(p[f] === null || (isNum(p[f]) && p[f] >= 0))) {
        return `Missing or invalid field ${space}.points[${i}].${f}`;
      }
    }
  }
  return null;
}

/** Returns the first problem with a parsed tolerance result, or null when it is usable. */
export function toleranceProblem(v: unknown): string | null {
  if (!isObject(v)) return "Not a JSON object";
  const schema = schemaProblem(v, TOLERANCE_SCHEMA);
  if (schema) return schema;
  for (const f of ["model", "dataset"] as const) if (!isStr(v[f])) return `Missing or invalid field ${f}`;
  const ref = v.reference;
  if (!isObject(ref) || !isStr(ref.id) || !isStr(ref.precision)) return "Missing or invalid field reference";
  const c = v.counterpart;
  const counterpartOk = isObject(c) &&
    ((c.mode === "rounded" && (c.format === "fp16" || c.format === "bf16")) ||
      (c.mode === "independent" && isStr(c.id) && isStr(c.precision)));
  if (!counterpartOk) return "Missing or invalid field counterpart";
  return spaceProblem(v.logits, "logits") ?? spaceProblem(v.probabilities, "probabilities");
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** Reads `matrix.json` of `runsDir`: null when absent or unusable (then with a skipped entry). */
export async function loadMatrix(runsDir: string, skipped: SkippedFile[]): Promise<Matrix | null> {
  const path = `${runsDir}/${MATRIX_FILE}`;
  if (!(await exists(path))) return null;
  const read = await readJson(path);
  const problem = "error" in read ? read.error : matrixProblem(read.value);
  if (problem) {
    skipped.push({ file: MATRIX_FILE, reason: `${problem}; every record counts as main` });
    return null;
  }
  return (read as { value: Matrix }).value;
}

/** Reads every `tolerance/*.json` of `runsDir` in name order; unusable files go to `skipped`. */
export async function loadTolerance(runsDir: string, skipped: SkippedFile[]): Promise<LoadedTolerance[]> {
  const dir = `${runsDir}/${TOLERANCE_DIR}`;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(".json")) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: LoadedTolerance[] = [];
  for (const name of names) {
    const file = `${TOLERANCE_DIR}/${name}`;
    const read = await readJson(`${dir}/${name}`);
    const problem = "error" in read ? read.error : toleranceProblem(read.value);
    if (problem) skipped.push({ file, reason: problem });
    else out.push({ file, result: (read as { value: ToleranceResult }).value });
  }
  return out;
}
