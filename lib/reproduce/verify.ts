/**
 * The determinism check: re-runs recorded cells in fresh processes and
 * compares the SHA-256 of the final weights and of the per-epoch metrics.
 * A mismatch names the first epoch whose metrics differ. The result is
 * written to `determinism.json` beside the records, where the report reads it.
 *
 * @module
 */

import { bareEpochs, canonicalJson, type RunRecord, writeAtomic } from "../record/run_record.ts";
import { runChild } from "./child.ts";

/** Schema of determinism.json. */
export const DETERMINISM_SCHEMA = "f16repro.determinism/1";

/** One re-run compared with its record. */
export interface DeterminismCheck {
  readonly id: string;
  readonly model: string;
  readonly dataset: string;
  readonly precision: string;
  readonly seed: number;
  readonly engine: string;
  readonly kind: "rerun" | "cross-engine";
  readonly weightHash: string;
  readonly rerunWeightHash: string | null;
  readonly metricsHash: string;
  readonly rerunMetricsHash: string | null;
  readonly identical: boolean;
  /** First epoch whose metrics (timings excluded) differ; null when all agree or the re-run failed. */
  readonly firstDifferingEpoch: number | null;
  /** Why the re-run produced no record, when it did not. */
  readonly error?: string;
}

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

/** ort's intra-op thread count as its record states it ("2 intra-op, ..."): it changes ort's bits. */
function ortThreads(r: RunRecord): string[] {
  const m = /^(\d+) intra-op/.exec(String((r.environment.engine as Record<string, unknown>)?.threads ?? ""));
  return r.config.engine === "ort" && m ? ["--threads", m[1]] : [];
}

/** The `train` arguments that reproduce a record's config. */
export function argsOf(r: RunRecord, out: string): string[] {
  const c = r.config, o = c.optimizer;
  return [
    "train",
    ...ortThreads(r),
    ...["--model", c.model, "--dataset", c.dataset, "--precision", c.precision, "--engine", c.engine],
    ...(c.hidden.length ? ["--hidden", c.hidden.join(",")] : []),
    ...(c.trainLimit !== null ? ["--train-limit", String(c.trainLimit)] : []),
    ...(c.testLimit !== null ? ["--test-limit", String(c.testLimit)] : []),
    ...["--optimizer", o.kind, "--lr", String(o.lr), "--weight-decay", String(o.weightDecay)],
    ...["--momentum", String(o.momentum), "--epsilon", String(o.epsilon)],
    ...["--batch", String(c.batch), "--epochs", String(c.epochs), "--seed", String(c.seed)],
    ...["--out", out, "--json", "--quiet"],
  ];
}

const bare = (r: RunRecord) => bareEpochs(r.epochs).map(canonicalJson);

/**
 * The check of record `r` against its re-run `again` (null when the re-run wrote no record; `error`
 * then says why).
 */
export function compareRerun(r: RunRecord, again: RunRecord | null, error: string): DeterminismCheck {
  const c = r.config;
  const base = {
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
  if (!again) {
    return {
      ...base,
      rerunWeightHash: null,
      rerunMetricsHash: null,
      identical: false,
      firstDifferingEpoch: null,
      error,
    };
  }
  const a = bare(r), b = bare(again);
  const differ = a.findIndex((m, i) => m !== b[i]);
  const firstDifferingEpoch = differ >= 0
    ? differ + 1
    : a.length !== b.length
    ? Math.min(a.length, b.length) + 1
    : null;
  // The stored metrics are compared too, not only their hash, so an edited record cannot pass.
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

/** Re-runs `records` (`jobs` at a time) in fresh processes and compares. `extra` is added to every train call. */
export async function checkDeterminism(
  records: readonly RunRecord[],
  o: { jobs: number; extra: readonly string[]; log: (line: string) => void },
): Promise<DeterminismCheck[]> {
  const tmp = await Deno.makeTempDir({ prefix: "f16repro-verify-" });
  const checks: DeterminismCheck[] = new Array(records.length);
  let next = 0;
  const worker = async () => {
    while (next < records.length) {
      const k = next++, r = records[k], c = r.config;
      o.log(
        `[verify ${
          k + 1
        }/${records.length}] ${c.model} ${c.dataset} ${c.precision} seed ${c.seed}: re-running`,
      );
      const res = await runChild([...argsOf(r, `${tmp}/${k}`), ...o.extra]);
      let again: RunRecord | null = null;
      try {
        again = JSON.parse(await Deno.readTextFile(`${tmp}/${k}/${r.id}.json`));
      } catch {
        again = null;
      }
      checks[k] = compareRerun(
        r,
        again,
        res.code === 0
          ? `the re-run wrote no record with id ${r.id}`
          : `exit code ${res.code}: ${res.stderrTail.split("\n").at(-1)}`,
      );
      if (again) o.log(`[verify ${k + 1}/${records.length}] ${checkOutcome(checks[k])}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, records.length)) }, worker));
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return checks;
}

/** Writes determinism.json into `dir` (checks sorted by id, stable bytes). */
export async function writeDeterminism(dir: string, checks: readonly DeterminismCheck[]): Promise<string> {
  const path = `${dir}/determinism.json`;
  const sorted = [...checks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.kind < b.kind ? -1 : 1));
  await writeAtomic(path, JSON.stringify({ schema: DETERMINISM_SCHEMA, checks: sorted }, null, 2) + "\n");
  return path;
}
