/**
 * Reads run records back from a folder, tolerating damage: a report or a
 * determinism check over a long reproduction must not be lost to one
 * half-written or foreign file, so every file that cannot be used is listed
 * with its reason instead of failing. Files are read in name order so the
 * result does not depend on the order the file system lists them in.
 *
 * @module
 */
import { RUN_SCHEMA, type RunRecord } from "./schema.ts";

/** A file of a runs folder that could not be used. */
export interface SkippedFile {
  /** The file name inside the runs folder. */
  readonly file: string;
  /** Why it was skipped (a sentence). */
  readonly reason: string;
}

/** A run record together with the name of the file it came from. */
export interface LoadedRecord {
  readonly file: string;
  readonly record: RunRecord;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isNumOrNull = (v: unknown) => v === null || isNum(v);
const isStr = (v: unknown): v is string => typeof v === "string";

/** Follows a dotted path; undefined when any step is missing. */
function at(v: unknown, path: string): unknown {
  let cur = v;
  for (const k of path.split(".")) {
    if (!isObject(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

const EPOCH_FIELDS = [
  "epoch",
  "trainLoss",
  "trainAccuracy",
  "testLoss",
  "testAccuracy",
  "skippedSteps",
  "lossScale",
  "trainSeconds",
  "evalSeconds",
  "samplesPerSecond",
] as const;

/**
 * Returns the first problem with a parsed run record, or null when it has
 * every field the report uses with the right type. Losses may be NaN or
 * infinite in a diverged run, which JSON writes as null, so those are allowed
 * to be null.
 */
export function recordProblem(v: unknown): string | null {
  if (!isObject(v)) return "Not a JSON object";
  if (v.schema !== RUN_SCHEMA) return `Schema is ${JSON.stringify(v.schema ?? null)}, not "${RUN_SCHEMA}"`;
  const checks: [string, (x: unknown) => boolean][] = [
    ["id", isStr],
    ["config", isObject],
    ["config.model", isStr],
    ["config.hidden", (x) => Array.isArray(x) && x.every(isNum)],
    ["config.dataset", isStr],
    ["config.precision", isStr],
    ["config.policy", isStr],
    ["config.optimizer", isObject],
    ["config.optimizer.kind", isStr],
    ["config.batch", isNum],
    ["config.epochs", isNum],
    ["config.seed", isNum],
    ["config.engine", isStr],
    ["status", (x) => x === "completed" || x === "diverged"],
    ["divergence", (x) => x === null || (isObject(x) && isNum(x.epoch) && isNum(x.step) && isStr(x.reason))],
    ["epochs", Array.isArray],
    ["final", isObject],
    ["final.testAccuracy", isNumOrNull],
    ["weightHash", isStr],
    ["metricsHash", isStr],
    ["memory", isObject],
    ["memory.parameters", isObject],
    ["memory.gradients", isObject],
    ["memory.optimizer", isObject],
    ["memory.activations", isObject],
    ["timings", isObject],
    ["timings.totalSeconds", isNum],
    ["timings.trainSeconds", isNum],
    ["environment", isObject],
    ["dataset", isObject],
  ];
  for (const [path, ok] of checks) {
    if (!ok(at(v, path))) return `Missing or invalid field ${path}`;
  }
  for (const cat of ["parameters", "gradients", "optimizer", "activations"]) {
    const bytes = at(v, `memory.${cat}`) as Json;
    if (!Object.values(bytes).every(isNum)) return `Invalid byte count in memory.${cat}`;
  }
  const epochs = v.epochs as unknown[];
  for (let i = 0; i < epochs.length; i++) {
    const e = epochs[i];
    if (!isObject(e)) return `Invalid epochs[${i}]`;
    for (const f of EPOCH_FIELDS) {
      if (!isNumOrNull(e[f])) return `Missing or invalid field epochs[${i}].${f}`;
    }
  }
  return null;
}

/** Reads a JSON file, or says why it cannot be used. */
export async function readJson(path: string): Promise<{ value: unknown } | { error: string }> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    return { error: `Cannot read the file: ${e instanceof Error ? e.message : String(e)}` };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    // The parser's message may quote the file, line breaks and all: its first line is the reason.
    return { error: `Invalid JSON (${(e instanceof Error ? e.message : String(e)).split("\n")[0]})` };
  }
}

/**
 * Reads every `*.json` run record of `dir` except the files named in `except`.
 * A second file holding an already-read record id is skipped, so a copied
 * record cannot count its seed twice.
 */
export async function readRunRecords(
  dir: string,
  except: readonly string[] = [],
): Promise<{ records: LoadedRecord[]; skipped: SkippedFile[] }> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".json") && !except.includes(entry.name)) names.push(entry.name);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const records: LoadedRecord[] = [], skipped: SkippedFile[] = [];
  const seen = new Map<string, string>();
  for (const file of names) {
    const read = await readJson(`${dir}/${file}`);
    const problem = "error" in read ? read.error : recordProblem(read.value);
    if (problem) {
      skipped.push({ file, reason: problem });
      continue;
    }
    const record = (read as { value: RunRecord }).value;
    const first = seen.get(record.id);
    if (first !== undefined) {
      skipped.push({ file, reason: `Duplicate of record ${record.id} already read from ${first}` });
      continue;
    }
    seen.set(record.id, file);
    records.push({ file, record });
  }
  return { records, skipped };
}
