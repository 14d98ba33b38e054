/**
 * The determinism check: re-runs recorded cells in fresh processes and
 * compares the SHA-256 of the final weights and of the per-epoch metrics.
 * A mismatch names the first epoch whose metrics differ. The result is
 * written to `determinism.json` beside the records, where the report reads it.
 *
 * @module
 */

import { tryLockFile } from "../record/lock.ts";
import { readJson } from "../record/read.ts";
import { bareEpochs, canonicalJson } from "../record/run_record.ts";
import { writeAtomic } from "../record/atomic.ts";
import { checkWeights, WeightsError } from "../record/weights.ts";
import { runChild } from "./child.ts";
import { LOCK_FILE, removeStaleScratch, VERIFY_SCRATCH } from "./out_folder.ts";
import { type Estimate, formatDuration, plural } from "./progress.ts";
import { DETERMINISM_SCHEMA, type DeterminismCheck, type RunRecord } from "../record/schema.ts";
import { configArgs } from "../train/config.ts";

/** The records to re-check: all, or per config (seed aside) the one with the lowest seed. */
export function selectForCheck(records: readonly RunRecord[], all: boolean): RunRecord[] {
  if (all) return [...records];
  const best = new Map<string, RunRecord>();
  for (const r of records) {
    const { seed: _seed, ...rest } = r.config;
    const c = r.config, key = canonicalJson(rest);
    const b = best.get(key);
    if (!b || c.seed < b.config.seed || (c.seed === b.config.seed && r.id < b.id)) best.set(key, r);
  }
  return [...best.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** The `train` arguments that reproduce a record's config (bit-changing engine options included). */
export function argsOf(r: RunRecord, out: string): string[] {
  return ["train", ...configArgs(r.config), "--out", out, "--json", "--quiet"];
}

const bare = (r: RunRecord) => bareEpochs(r.epochs).map(canonicalJson);

/** Options of {@linkcode checkDeterminism}. */
export interface CheckOptions {
  readonly jobs: number;
  /** Added to every train call. */
  readonly extra: readonly string[];
  readonly log: (line: string) => void;
  /** The runs folder, where each record's weights file is checked before its re-run. */
  readonly dir: string;
  /** Earlier bit-identical checks of the same records (same id and hashes) that need no new re-run. */
  readonly reuse?: readonly DeterminismCheck[];
  /** Learns what re-runs cost (kind `rerun <id>`), for the estimate of the time left. */
  readonly estimate?: Estimate;
  /** Seconds the phases after the check are expected to take. */
  readonly later?: () => number;
}

/** The earlier bit-identical re-run checks in `<dir>/determinism.json` (none when absent or unusable). */
export async function previousChecks(dir: string): Promise<DeterminismCheck[]> {
  const read = await readJson(`${dir}/determinism.json`);
  const v = "value" in read ? read.value as { schema?: unknown; checks?: unknown } : null;
  if (v?.schema !== DETERMINISM_SCHEMA || !Array.isArray(v.checks)) return [];
  return (v.checks as DeterminismCheck[]).filter((c) =>
    c && c.kind === "rerun" && c.identical === true && typeof c.id === "string" &&
    c.rerunWeightHash === c.weightHash && c.rerunMetricsHash === c.metricsHash
  );
}

/**
 * Re-runs `records` (`o.jobs` at a time) in fresh processes and compares. A record whose weights file does not
 * match it fails its check without a re-run; one with an earlier identical check in `o.reuse` keeps it.
 */
export async function checkDeterminism(
  records: readonly RunRecord[],
  o: CheckOptions,
): Promise<DeterminismCheck[]> {
  await removeStaleScratch();
  const tmp = await Deno.makeTempDir({ prefix: `${VERIFY_SCRATCH}${Deno.pid}-` });
  // Held while the check runs, so the next run can tell a killed check's folder from a live one's.
  const lock = await tryLockFile(`${tmp}/${LOCK_FILE}`, `pid ${Deno.pid}\n`);
  const checks: DeterminismCheck[] = new Array(records.length);
  const pending: number[] = [];
  for (const [k, r] of records.entries()) {
    const base = baseCheck(r);
    const old = o.reuse?.find((c) =>
      c.id === r.id && c.weightHash === r.weightHash && c.metricsHash === r.metricsHash
    );
    const damaged = await weightsProblem(o.dir, r);
    if (damaged) checks[k] = { ...base, ...failed(damaged) };
    else if (old) checks[k] = { ...old, ...base };
    else pending.push(k);
  }
  const reused = checks.filter((c) => c && c.identical).length, bad = checks.filter((c) => c && !c.identical);
  if (reused) o.log(`determinism: ${plural(reused, "earlier identical re-run")} reused (--force re-checks)`);
  for (const c of bad) o.log(`determinism: ${c.id}: ${c.error}`);
  if (pending.length) {
    o.log(`determinism check: re-running ${plural(pending.length, "cell")} in fresh processes`);
  }
  const costOf = (k: number) => ({
    kind: `rerun ${records[k].id}`,
    guess: records[k].timings.totalSeconds,
    timed: true,
  });
  let next = 0;
  const running = new Set<number>();
  const eta = () => {
    if (!o.estimate) return "";
    const left = [...running, ...pending.slice(next)].map(costOf);
    return `, about ${formatDuration(o.estimate.left(left, o.jobs) + (o.later?.() ?? 0))} left`;
  };
  const worker = async () => {
    while (next < pending.length) {
      const n = next++, k = pending[n], r = records[k], c = r.config, t0 = performance.now();
      running.add(k);
      const tag = `[verify ${n + 1}/${pending.length}] ${c.model} ${c.dataset} ${c.precision} seed ${c.seed}`;
      o.log(`${tag}: re-running${eta()}`);
      const res = await runChild([...argsOf(r, `${tmp}/${k}`), ...o.extra], { engine: r.config.engine });
      running.delete(k);
      o.estimate?.measured(costOf(k), (performance.now() - t0) / 1000);
      checks[k] = await compare(r, `${tmp}/${k}/${r.id}.json`, res);
      o.log(`${tag}: ${checkOutcome(checks[k])}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, pending.length)) }, worker));
  } finally {
    lock?.release();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return checks;
}

function baseCheck(r: RunRecord) {
  const c = r.config;
  return {
    id: r.id,
    model: c.model,
    dataset: c.dataset,
    precision: c.precision,
    seed: c.seed,
    engine: c.engine,
    kind: "rerun" as const,
    weightHash: r.weightHash,
    metricsHash: r.metricsHash,
  };
}

const failed = (error: string) => ({
  rerunWeightHash: null,
  rerunMetricsHash: null,
  identical: false,
  firstDifferingEpoch: null,
  error,
});

/** Why `<dir>/<id>.weights` does not belong to record `r`, or null when it does. */
async function weightsProblem(dir: string, r: RunRecord): Promise<string | null> {
  const file = `${dir}/${r.id}.weights`;
  try {
    await checkWeights(await Deno.readFile(file), file, r.weightHash);
    return null;
  } catch (e) {
    if (e instanceof WeightsError) return e.message;
    if (e instanceof Deno.errors.NotFound) return `${file}: no weight file`;
    return `${file}: cannot be read (${(e as Error).message})`;
  }
}

/** Compares record `r` with the record its re-run wrote at `path` (if it wrote one). */
async function compare(
  r: RunRecord,
  path: string,
  res: { code: number; stderrTail: string },
): Promise<DeterminismCheck> {
  let again: RunRecord | null = null;
  try {
    again = JSON.parse(await Deno.readTextFile(path));
  } catch {
    again = null;
  }
  const why = res.code === 0
    ? `the re-run wrote no record with id ${r.id}`
    : `exit code ${res.code}: ${res.stderrTail.split("\n").at(-1)}`;
  return compareRerun(r, again, why);
}

/**
 * The check of record `r` against its re-run `again` (null when the re-run wrote no record; `error` then
 * says why). The stored metrics are compared too, not only their hash, so an edited record cannot pass.
 */
export function compareRerun(r: RunRecord, again: RunRecord | null, error: string): DeterminismCheck {
  const base = baseCheck(r);
  if (!again) return { ...base, ...failed(error) };
  const a = bare(r), b = bare(again);
  const differ = a.findIndex((m, i) => m !== b[i]);
  const firstDifferingEpoch = differ >= 0
    ? differ + 1
    : a.length !== b.length
    ? Math.min(a.length, b.length) + 1
    : null;
  const identical = again.weightHash === r.weightHash && again.metricsHash === r.metricsHash &&
    firstDifferingEpoch === null;
  return {
    ...base,
    rerunWeightHash: again.weightHash,
    rerunMetricsHash: again.metricsHash,
    identical,
    firstDifferingEpoch,
  };
}

/** The log line of a finished check. */
export function checkOutcome(c: DeterminismCheck): string {
  return c.identical
    ? "bit-identical"
    : c.error ?? `MISMATCH (first differing epoch ${c.firstDifferingEpoch ?? "none: weights only"})`;
}

/** Writes determinism.json into `dir` (checks sorted by id, stable bytes). */
export async function writeDeterminism(dir: string, checks: readonly DeterminismCheck[]): Promise<string> {
  const path = `${dir}/determinism.json`;
  const sorted = [...checks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.kind < b.kind ? -1 : 1));
  await writeAtomic(path, JSON.stringify({ schema: DETERMINISM_SCHEMA, checks: sorted }, null, 2) + "\n");
  return path;
}
