/**
 * `reproduce --dry-run`: the cells a reproduction would run, each with its record id, whether a verified
 * record already exists in the out folder, and an estimated time from a short calibration
 * (calibrate.ts). Trains nothing and writes nothing.
 *
 * @module
 */

import { loadEngine } from "../../kernels/registry.ts";
import type { Engine } from "../../kernels/engine.ts";
import { configId } from "../record/run_record.ts";
import { resolveRun } from "../train/config.ts";
import { calibrate, type Calibration, CALIBRATION_METHOD, cellSeconds, settingKey } from "./calibrate.ts";
import type { Cell } from "./profiles.ts";
import { formatDuration, plural } from "./progress.ts";
import { verifiedRecord } from "./verified.ts";

/** One cell as the dry run lists it (`--json` prints an array of these). */
export interface DryRunCell {
  readonly label: string;
  readonly model: string;
  readonly dataset: string;
  readonly precision: string;
  readonly seed: number;
  readonly epochs: number;
  readonly batch: number;
  readonly engine: string;
  readonly trainLimit: number | null;
  readonly testLimit: number | null;
  readonly optimizer: { readonly kind: string; readonly lr: number; readonly momentum: number };
  readonly weightDecay: number;
  /** The id its record has (and the name of its files in the out folder). */
  readonly id: string;
  /** Whether `<out>/<id>.json` exists and verifies (the cell would be skipped). */
  readonly verified: boolean;
  /** Estimated seconds of the whole cell, or null when the calibration did not reach its setting. */
  readonly estimatedSeconds: number | null;
}

/** What a dry run found. */
export interface DryRun {
  readonly cells: readonly DryRunCell[];
  /** How the estimates were made, how many settings were timed of how many, and what that took. */
  readonly calibration: {
    readonly method: string;
    readonly settings: number;
    readonly calibrated: number;
    readonly seconds: number;
    /** Why settings went without an estimate, when some did. */
    readonly note?: string;
  };
}

/** Options of {@linkcode dryRun}. */
export interface DryRunOptions {
  readonly out: string;
  readonly engine: string;
  readonly threads?: number;
  /** The calibration's total cap in seconds (0: no calibration, no estimates). */
  readonly budgetSeconds: number;
  readonly log: (line: string) => void;
  /** Recorded cells run again (`--force`), so their settings are as much to run as the others. */
  readonly force?: boolean;
}

/** Lists `cells` with their ids, record state and estimates (see the module doc). */
export async function dryRun(cells: readonly Cell[], o: DryRunOptions): Promise<DryRun> {
  const runs = cells.map((c) => resolveRun({ ...c.request, engine: o.engine }));
  const settings = new Map(runs.map((r) => [settingKey(r.config), r]));
  const ids = await Promise.all(runs.map((r) => configId(r.config)));
  const verified = await Promise.all(ids.map(async (id) => (await verifiedRecord(o.out, id)).ok));
  const toRun = new Set(runs.filter((_, k) => o.force || !verified[k]).map((r) => settingKey(r.config)));
  const measured = new Map<string, Calibration>();
  const t0 = performance.now();
  const notes: string[] = [];
  if (o.budgetSeconds > 0 && settings.size) {
    for (const [key, run] of calibrationOrder(settings, toRun)) {
      if ((performance.now() - t0) / 1000 >= o.budgetSeconds) {
        notes.push(`the calibration stopped at its cap of ${o.budgetSeconds} s (--calibrate SECONDS)`);
        break;
      }
      o.log(`calibrating ${run.config.model} ${run.config.precision} on ${o.engine}`);
      // A fresh engine per setting, as each cell has its own process: an engine keeps what it compiled.
      let engine: Engine;
      try {
        engine = await loadEngine(o.engine, { threads: o.threads });
      } catch (e) {
        notes.push(`engine ${o.engine} could not be loaded for the calibration: ${(e as Error).message}`);
        break;
      }
      try {
        measured.set(key, await calibrate(run, engine));
      } catch (e) {
        // An estimate is never worth stopping for: the setting goes without one, and the note says why.
        notes.push(`timing ${run.config.model} ${run.config.precision} failed: ${(e as Error).message}`);
      } finally {
        engine.close?.();
      }
    }
  } else if (settings.size) notes.push("no calibration (--calibrate 0)");
  const listed = runs.map(({ config: c }, k): DryRunCell => {
    const id = ids[k];
    const cal = measured.get(settingKey(c));
    return {
      label: cells[k].label,
      model: c.model,
      dataset: c.dataset,
      precision: c.precision,
      seed: c.seed,
      epochs: c.epochs,
      batch: c.batch,
      engine: c.engine,
      trainLimit: c.trainLimit,
      testLimit: c.testLimit,
      optimizer: { kind: c.optimizer.kind, lr: c.optimizer.lr, momentum: c.optimizer.momentum },
      weightDecay: c.optimizer.weightDecay,
      id,
      verified: verified[k],
      estimatedSeconds: cal ? Math.round(cellSeconds(c, cal)) : null,
    };
  });
  return {
    cells: listed,
    calibration: {
      method: CALIBRATION_METHOD,
      settings: settings.size,
      calibrated: measured.size,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      ...(notes.length ? { note: notes.join("; ") } : {}),
    },
  };
}

/**
 * The settings in the order the calibration takes them: those with cells still to run (keys in `toRun`)
 * first, as a resumed run needs estimates for them only; within each part the first precision of every
 * model, then the second, and so on, so a cap that stops it early leaves every model with some estimate.
 */
export function calibrationOrder<T extends { config: { model: string } }>(
  settings: ReadonlyMap<string, T>,
  toRun: ReadonlySet<string>,
): [string, T][] {
  const part = (pending: boolean) => new Map([...settings].filter(([key]) => toRun.has(key) === pending));
  return [...interleaved(part(true)), ...interleaved(part(false))];
}

function interleaved<T extends { config: { model: string } }>(settings: Map<string, T>): [string, T][] {
  const byModel = new Map<string, [string, T][]>();
  for (const [key, run] of settings) {
    byModel.set(run.config.model, [...(byModel.get(run.config.model) ?? []), [key, run]]);
  }
  const groups = [...byModel.values()], out: [string, T][] = [];
  for (let i = 0; out.length < settings.size; i++) for (const g of groups) if (i < g.length) out.push(g[i]);
  return out;
}

/**
 * The dry run as text: one line per cell, then the total estimate (cells run `jobs` at a time; with
 * `force` recorded cells run again) and how it was made.
 */
export function dryRunText(d: DryRun, jobs: number, force = false): string {
  const secs = (s: number | null) => (s === null ? "no estimate" : `~${formatDuration(s)}`);
  const lines = d.cells.map((c) =>
    `${c.id}  ${c.verified ? "recorded" : "to run  "}  ${secs(c.estimatedSeconds).padEnd(12)} ${c.model} ` +
    `${c.dataset} ${c.precision} seed ${c.seed}, ${plural(c.epochs, "epoch")}, batch ${c.batch}` +
    `${c.trainLimit !== null ? `, ${c.trainLimit} training examples` : ""}, engine ${c.engine}`
  );
  return [
    "# record id, recorded (a verified record exists: skipped) or to run, estimated time, cell",
    ...lines,
    `# ${estimateText(d, jobs, force)}`,
    ...calibrationText(d),
  ].join("\n");
}

/** Two lines on the calibration: what it timed, and how a cell's estimate follows from it. */
export function calibrationText(d: DryRun): string[] {
  const cal = d.calibration;
  return [
    `# calibration: ${cal.calibrated} of ${plural(cal.settings, "setting")} timed in ${cal.seconds} s` +
    (cal.note ? ` (${cal.note})` : ""),
    `# estimated ${cal.method}`,
  ];
}

/**
 * "6 cells, 4 to run; estimated 3m10s at 2 at a time for the 4 of them with an estimate": the cells still to
 * run (all of them with `force`) and their estimated wall time when `jobs` run at once.
 */
export function estimateText(d: DryRun, jobs: number, force = false): string {
  const pending = d.cells.filter((c) => force || !c.verified);
  const known = pending.filter((c) => c.estimatedSeconds !== null);
  const total = known.reduce((s, c) => s + c.estimatedSeconds!, 0);
  return `${plural(d.cells.length, "cell")}, ${pending.length} to run; estimated ${
    formatDuration(total / Math.max(1, Math.min(jobs, known.length)))
  } at ${jobs} at a time for the ${known.length} of them with an estimate`;
}
