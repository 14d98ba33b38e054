/**
 * A reproduction as a function: the cells of a profile, the determinism check, the tolerance analyses and
 * the report, with the estimate of the time left over every phase. `f16repro reproduce` parses its flags,
 * claims the out folder and calls {@linkcode reproduce}; the report writer is passed in (the report sits
 * above this layer's schemas and is chosen by the caller, which also decides where a report that cannot be
 * written is kept).
 *
 * @module
 */

import { readRunRecords, type SkippedFile } from "../record/read.ts";
import type { DeterminismCheck } from "../record/schema.ts";
import { writeMatrix } from "./matrix.ts";
import type { Cell, Cuts, Profile } from "./profiles.ts";
import { Estimate, formatDuration, plural, type Work } from "./progress.ts";
import { cellInvocation, cellWork, type Rerun, runCells } from "./runner.ts";
import { runCellsOnSlurm, type SlurmFailure, type SlurmOptions } from "./slurm_run.ts";
import { checkDeterminismOnSlurm } from "./slurm_verify.ts";
import { TOLERANCE_PER_EXPERIMENT, TOLERANCE_WORK, toleranceStep } from "./tolerance_step.ts";
import {
  checkDeterminism,
  type CheckOptions,
  previousChecks,
  selectForCheck,
  writeDeterminism,
} from "./verify.ts";

/** The estimate's view of writing the report. */
const REPORT_WORK: Work = { kind: "report", guess: 5 };

/** What a reproduction needs. */
export interface ReproduceOptions {
  readonly profile: Profile;
  /** How the profile was cut down (--models, --epochs, --train-limit); kept in matrix.json and the summary. */
  readonly cuts?: Cuts;
  /** The cells to run (those the engine can run) and all of the profile's (for the summary). */
  readonly cells: readonly Cell[];
  readonly all: readonly Cell[];
  readonly out: string;
  readonly reportDir: string;
  readonly engine: string;
  /** Cells run at once (locally). */
  readonly jobs: number;
  /** Extra `train` flags for every cell and re-run (data cache, offline, threads). */
  readonly extra: readonly string[];
  readonly force: boolean;
  readonly verify: boolean;
  readonly verifyAll: boolean;
  readonly tolerance: boolean;
  readonly cacheDir?: string;
  readonly offline: boolean;
  /** Run the cells and re-runs as Slurm jobs. */
  readonly slurm?: SlurmOptions & { readonly partition?: string };
  /** The command line as typed, which each record keeps. */
  readonly command: string;
  /** When the reproduction started (performance.now()), for the total time. */
  readonly t0: number;
  readonly log: (line: string) => void;
  /** Writes the report; returns the record ids it covers and the files it skipped. */
  readonly writeReport: (
    runsDir: string,
    reportDir: string,
  ) => Promise<{ readonly ids: readonly string[]; readonly skipped: readonly SkippedFile[] }>;
}

/** What a reproduction did. */
export interface ReproduceResult {
  readonly exitCode: number;
  /** A Slurm dry run: the batch script and the cells, nothing submitted. */
  readonly dryRun?: { readonly script: string; readonly cells: readonly string[] };
  /** Submitted to Slurm without waiting. */
  readonly submitted?: { readonly jobs: readonly string[]; readonly failed: readonly SlurmFailure[] };
  /** The summary of a finished reproduction. */
  readonly summary?: {
    readonly profile: string;
    readonly cuts: Cuts;
    readonly out: string;
    readonly report: string;
    readonly cells: number;
    readonly inReport: number;
    readonly ran: number;
    readonly skipped: number;
    readonly reran: readonly Rerun[];
    readonly failed: readonly { readonly id: string; readonly label: string; readonly code: number }[];
    readonly determinism: { readonly checked: number; readonly identical: number };
    readonly seconds: number;
  };
}

/**
 * The phases of a reproduction once its out folder is claimed: the cells (locally or on Slurm), the
 * determinism check, the tolerance analyses and the report. Returns what happened; the caller prints it.
 */
export async function reproduce(c: ReproduceOptions): Promise<ReproduceResult> {
  const { profile, cells, all, jobs, extra, log, out, reportDir, slurm } = c;
  const v = {
    force: c.force,
    "verify-all": c.verifyAll,
    "no-verify": !c.verify,
    "no-tolerance": !c.tolerance,
    engine: c.engine,
  };
  const estimate = new Estimate();
  const force = v.force === true, verifyAll = v["verify-all"] === true;
  const reuse = force ? [] : await previousChecks(out);
  const isMainCell = (cell: Cell) => profile.experiments[cell.experiment].kind === "main";
  // The cells the determinism check will re-run (lowest seed per main setting, or all), for the estimate.
  const lowest = new Map<string, number>();
  for (const cell of cells.filter(isMainCell)) {
    const key = `${cell.experiment} ${cell.variant} ${cell.precision}`;
    lowest.set(key, Math.min(lowest.get(key) ?? Infinity, cell.seed));
  }
  const toCheck = cells.filter((cell) =>
    verifyAll ||
    (isMainCell(cell) && lowest.get(`${cell.experiment} ${cell.variant} ${cell.precision}`) === cell.seed)
  );
  let checkedIds: ReadonlySet<string> = new Set(reuse.map((r) => r.id));
  let ids: readonly string[] = [];
  // The cells that run now (all, until the runner says which have verified records): a cell that runs is
  // checked again, and its experiment's tolerance analyses are redone; the others keep their results.
  let toRun: ReadonlySet<Cell> = new Set(cells);
  let ranAny = true;
  const verifyLeft = () =>
    v["no-verify"] ? 0 : estimate.left(
      toCheck.filter((cell) => toRun.has(cell) || !checkedIds.has(ids[cells.indexOf(cell)] ?? "")).map(
        cellWork,
      ),
      jobs,
    );
  const toleranceLeft = () => {
    if (v["no-tolerance"] || !ranAny) return 0;
    const redone = new Set([...toRun].filter(isMainCell).map((cell) => cell.experiment));
    return estimate.left([], 1, Array(TOLERANCE_PER_EXPERIMENT * redone.size).fill(TOLERANCE_WORK));
  };
  const reportLeft = () => estimate.cost(REPORT_WORK);
  const o = {
    command: c.command,
    out,
    engine: String(v.engine),
    jobs,
    force,
    extra,
    log,
    estimate,
    later: () => verifyLeft() + toleranceLeft() + reportLeft(),
    planned: (planned: readonly string[], run: readonly number[]) => {
      ids = planned;
      toRun = new Set(run.map((k) => cells[k]));
    },
  };
  // The matrix is written before any cell runs, so the folder says which profile it holds from the start
  // (a second profile is refused even while the first one's cells are still running or were killed).
  if (!slurm?.dryRun) {
    const planned = await Promise.all(cells.map(async (cell) => (await cellInvocation(cell, o)).id));
    await writeMatrix(out, profile, cells, planned, c.cuts);
  }
  const onSlurm = slurm && await runCellsOnSlurm(cells, o, slurm);
  const run = onSlurm || await runCells(cells, o);
  if (onSlurm && onSlurm.dryRun) return { exitCode: 0, dryRun: onSlurm.dryRun };
  ids = run.ids;
  ranAny = run.ran.length > 0;
  if (onSlurm && !onSlurm.waited) {
    return { exitCode: 0, submitted: { jobs: onSlurm.jobs, failed: onSlurm.failed } };
  }
  let checks: DeterminismCheck[] = [];
  if (!v["no-verify"]) {
    // By default one seed per model and precision of the main experiments; --verify-all re-runs every cell.
    const mine = verifyAll ? run.ids : run.ids.filter((_, k) => isMainCell(cells[k]));
    // A cell that ran now gets a new check; an earlier identical check of an unchanged record is kept.
    const fresh = new Set(run.ran);
    checkedIds = new Set(reuse.filter((r) => !fresh.has(r.id)).map((r) => r.id));
    const onSlurm: typeof checkDeterminism | undefined = slurm &&
      ((recs, c) => checkDeterminismOnSlurm(recs, { out, partition: slurm.partition, ...c }, slurm));
    checks = await verifyAndWrite(out, verifyAll, jobs, extra, log, new Set(mine), {
      reuse: reuse.filter((r) => !fresh.has(r.id)),
      estimate,
      later: () => toleranceLeft() + reportLeft(),
    }, onSlurm);
    log(`determinism: ${determinismSummary(checks)}`);
  }
  if (!v["no-tolerance"]) {
    const { records } = await readRunRecords(out, ["determinism.json", "matrix.json"]);
    const mine = new Map(
      records.filter((r) => run.ids.includes(r.record.id)).map((r) => [r.record.id, r.record]),
    );
    const lines = await toleranceStep(out, profile, cells, run.ids, mine, {
      cacheDir: c.cacheDir,
      offline: c.offline,
      log,
      fresh: new Set(force ? run.ids : run.ran),
      estimate,
    });
    for (const l of lines) log(`tolerance: ${l}`);
  }
  const tr = performance.now();
  const rep = await c.writeReport(out, reportDir);
  estimate.measured(REPORT_WORK, (performance.now() - tr) / 1000);
  for (const s of rep.skipped) log(`report: skipped ${s.file}: ${s.reason}`);
  const inReport = new Set(rep.ids), failedIds = new Set(run.failed.map((f) => f.id));
  const missing = cells.filter((_, k) => !inReport.has(run.ids[k]));
  // Failed cells are said above; any other cell missing from the report is said here.
  const absent = cells.filter((_, k) => !inReport.has(run.ids[k]) && !failedIds.has(run.ids[k]));
  const mismatches = checks.filter((c) => !c.identical).length;
  log(
    `report: ${reportDir}/report.html with ${run.ids.length - missing.length} of ${run.ids.length} cells ` +
      `(${formatDuration((performance.now() - c.t0) / 1000)} in all)`,
  );
  if (cells.length < all.length) {
    log(`${all.length - cells.length} cells skipped: engine ${v.engine} cannot run their policy (see above)`);
  }
  if (run.reran.length) log(`${plural(run.reran.length, "cell")} rerun because their record did not verify`);
  if (run.failed.length) {
    log(`${plural(run.failed.length, "cell")} failed: ${run.failed.map((f) => f.label).join("; ")}`);
  }
  if (absent.length) log(`missing from the report: ${absent.map((m) => m.label).join("; ")}`);
  const summary = {
    profile: profile.name,
    cuts: c.cuts ?? {},
    out,
    report: `${reportDir}/report.html`,
    cells: run.ids.length,
    inReport: run.ids.length - missing.length,
    ran: run.ran.length,
    skipped: run.skipped.length,
    reran: run.reran,
    failed: run.failed,
    determinism: { checked: checks.length, identical: checks.length - mismatches },
    seconds: Math.round((performance.now() - c.t0) / 1000),
  };
  return { exitCode: run.failed.length || mismatches || missing.length ? 1 : 0, summary };
}

/**
 * Re-checks the records of `dir` (all, or per config the lowest seed; only those in `only` when given) and
 * writes determinism.json; `check` runs the re-runs (locally by default, or as Slurm jobs).
 */
export async function verifyAndWrite(
  dir: string,
  all: boolean,
  jobs: number,
  extra: readonly string[],
  log: (s: string) => void,
  only?: ReadonlySet<string>,
  more: Pick<CheckOptions, "reuse" | "estimate" | "later"> = {},
  check: typeof checkDeterminism = checkDeterminism,
) {
  const { records, skipped } = await readRunRecords(dir, ["determinism.json", "matrix.json"]);
  for (const s of skipped) log(`skipping ${dir}/${s.file}: ${s.reason}`);
  const chosen = selectForCheck(records.map((r) => r.record).filter((r) => !only || only.has(r.id)), all);
  const checks = await check(chosen, { jobs, extra, log, dir, ...more });
  await writeDeterminism(dir, checks);
  return checks;
}

/** "N of M re-runs bit-identical". */
export function determinismSummary(checks: readonly DeterminismCheck[]): string {
  const same = checks.filter((c) => c.identical).length;
  return `${same} of ${plural(checks.length, "re-run")} bit-identical`;
}
