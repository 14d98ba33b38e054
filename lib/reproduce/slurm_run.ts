/**
 * `reproduce --scheduler slurm`: the cells of a matrix as one Slurm job array, each task running its
 * cell's `train` into the out folder, which every node must see. The submitting side keeps
 * `<out>/slurm/jobs.json` (which job and array task ran which cell), so a later `reproduce` waits for tasks
 * still queued, records the ones that ended without a record, and resubmits only what is missing.
 *
 * A task that ends without a record is written up in `<id>.failed.txt`, like a failed local cell, with
 * Slurm's state (FAILED, CANCELLED, TIMEOUT, PREEMPTED...), reason, exit code and node.
 *
 * @module
 */

import { resolve } from "node:path";
import { readJson } from "../record/read.ts";
import { writeAtomic } from "../record/atomic.ts";
import type { Cell } from "./profiles.ts";
import { cellInvocation, type Rerun, type RunnerOptions, type RunnerResult } from "./runner.ts";
import { verifiedRecord } from "./verified.ts";
import { arrayStates, exitCodes, isTerminal, submit, taskState } from "./slurm.ts";
import { type ArrayTask, batchScript, EXIT_NO_OUT_FOLDER, EXIT_NO_PROGRAM, taskLog } from "./slurm_script.ts";
import { type EndedTask, type Ending, waitForTasks, type WatchedTask } from "./slurm_wait.ts";
import type { RunRecord } from "../record/schema.ts";

/** Schema of slurm/jobs.json. */
export const SLURM_STATE_SCHEMA = "f16repro.slurm/1";

/** The Slurm flags of `reproduce`, already checked. */
export interface SlurmOptions {
  /** sbatch options for every job (partition, time, CPUs, GPUs and the pass-through ones). */
  readonly sbatch: readonly string[];
  /** At most this many tasks of an array run at once. */
  readonly throttle?: number;
  /** Seconds between polls while waiting. */
  readonly poll: number;
  readonly noWait: boolean;
  readonly cancelOnExit: boolean;
  readonly dryRun: boolean;
}

/** One submission in slurm/jobs.json: array task `k` ran cell `cells[k]`. */
interface Submission {
  readonly job: string;
  readonly script: string;
  readonly submittedAt: string;
  readonly cells: readonly string[];
}

/** A failed cell, with Slurm's view of how it ended. */
export interface SlurmFailure {
  readonly id: string;
  readonly label: string;
  readonly code: number;
  readonly state: string;
  readonly reason: string;
}

/** What happened to the cells; `dryRun` holds the script and cell list when nothing was submitted. */
export interface SlurmRunResult extends RunnerResult {
  readonly failed: SlurmFailure[];
  /** The jobs this run submitted or waited for. */
  readonly jobs: string[];
  /** True when the run returned without waiting (--no-wait, --dry-run). */
  readonly waited: boolean;
  readonly dryRun?: { readonly script: string; readonly cells: readonly string[] };
}

/** The record of cell `id` in `out` when it is finished ({@linkcode verifiedRecord}); null otherwise. */
export async function finishedRecord(out: string, id: string): Promise<RunRecord | null> {
  const v = await verifiedRecord(out, id);
  return v.ok ? v.record : null;
}

async function readState(out: string): Promise<Submission[]> {
  const read = await readJson(`${out}/slurm/jobs.json`);
  if ("error" in read) return [];
  const v = read.value as { schema?: unknown; submissions?: unknown };
  return v.schema === SLURM_STATE_SCHEMA && Array.isArray(v.submissions) ? v.submissions : [];
}

async function addSubmission(out: string, s: Submission): Promise<void> {
  const submissions = [...await readState(out), s];
  await writeAtomic(
    `${out}/slurm/jobs.json`,
    JSON.stringify({ schema: SLURM_STATE_SCHEMA, submissions }, null, 2) + "\n",
  );
}

/** Why a task ended without a record, in words: Slurm's reason, or what the task's exit code means. */
export function endReason(t: Ending, out: string): string {
  const node = t.node || "a node";
  if (t.exitCode === String(EXIT_NO_OUT_FOLDER)) {
    return `${node} cannot see the out folder ${out} (it must be on a filesystem every node mounts at that path)`;
  }
  if (t.exitCode === String(EXIT_NO_PROGRAM)) {
    return `${node} has no deno (or f16repro binary) at the submitting machine's path`;
  }
  if (t.state === "COMPLETED") return "the task ended without writing a verified record";
  return t.reason || t.state;
}

/** The next free number for a script in `<out>/slurm/` (`cells-N.sh`, `verify-N.sh`). */
async function nextNumber(out: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(`${out}/slurm`)) {
    const m = /^\w+-(\d+)\.sh$/.exec(e.name);
    if (m) n = Math.max(n, Number(m[1]));
  }
  return n + 1;
}

/** The sbatch options of an array of `n` tasks. */
function arrayOptions(n: number, o: SlurmOptions, name: string): string[] {
  // The script sends its own output to a log in the out folder once it knows it sees that folder; Slurm
  // itself writes nothing there, so a node that cannot see it still runs the script and says so.
  return [
    `--array=0-${n - 1}${o.throttle ? `%${o.throttle}` : ""}`,
    `--job-name=${name}`,
    "--output=/dev/null",
    ...o.sbatch,
  ];
}

/** Writes the batch script of `tasks` and submits it; nothing is left behind when Slurm refuses it. */
export async function submitArray(
  out: string,
  kind: string,
  tasks: readonly ArrayTask[],
  o: SlurmOptions,
  extra: readonly string[] = [],
) {
  const path = `${out}/slurm/${kind}-${await nextNumber(out)}.sh`;
  const options = [...arrayOptions(tasks.length, o, `f16repro-${kind}`), ...extra];
  await writeAtomic(path, batchScript({ out, path, tasks, sbatch: options }));
  try {
    return { job: await submit(path, options), path };
  } catch (e) {
    await Deno.remove(path).catch(() => {});
    throw e;
  }
}

/** The note `<id>.failed.txt` for a task that ended without a record. */
async function writeFailure(out: string, t: EndedTask, id: string, args: readonly string[]): Promise<void> {
  let tail = "";
  try {
    tail = (await Deno.readTextFile(taskLog(out, t.job, t.task))).split("\n").slice(-21).join("\n");
  } catch {
    tail = "(no task log: the task did not start, or its node could not write to the out folder)";
  }
  await writeAtomic(
    `${out}/${id}.failed.txt`,
    [
      `cell: ${t.label}`,
      `command: f16repro ${args.join(" ")}`,
      `slurm job: ${t.job}_${t.task}`,
      `slurm state: ${t.state}`,
      `slurm reason: ${t.reason || "none"}`,
      `exit code: ${t.exitCode || "unknown"}`,
      `node: ${t.node || "none"}`,
      `why: ${endReason(t, out)}`,
      `log: ${taskLog(out, t.job, t.task)}`,
      "",
      tail,
      "",
    ].join("\n"),
  );
}

/** An array task running a cell. */
interface CellTask extends WatchedTask {
  readonly id: string;
}

/** Runs every cell without a finished record in `o.out` as tasks of a Slurm job array. */
export async function runCellsOnSlurm(
  cells: readonly Cell[],
  o: Omit<RunnerOptions, "jobs">,
  s: SlurmOptions,
): Promise<SlurmRunResult> {
  const out = resolve(o.out);
  if (!s.dryRun) await Deno.mkdir(`${out}/slurm`, { recursive: true });
  const inv = await Promise.all(cells.map((c) => cellInvocation(c, { ...o, out })));
  const ids = inv.map((i) => i.id);
  const byId = new Map(ids.map((id, k) => [id, { cell: cells[k], args: inv[k].args }]));
  const result = {
    ids,
    ran: [] as string[],
    skipped: [] as string[],
    reran: [] as Rerun[],
    failed: [] as SlurmFailure[],
  };
  const missing: string[] = [];
  for (const id of ids) {
    const v = o.force ? null : await verifiedRecord(out, id);
    if (v?.ok) {
      result.skipped.push(id);
      continue;
    }
    if (v && !v.missing) {
      result.reran.push({ id, label: byId.get(id)!.cell.label, reason: v.reason });
      o.log(`${byId.get(id)!.cell.label}: rerunning: ${v.reason}`);
    }
    missing.push(id);
  }
  if (result.skipped.length) {
    o.log(`${result.skipped.length} of ${cells.length} cells already have records; skipping them`);
  }
  const onEnd = async (t: EndedTask<CellTask>) => {
    const rec = await finishedRecord(out, t.id);
    if (rec) {
      result.ran.push(t.id);
      await Deno.remove(`${out}/${t.id}.failed.txt`).catch(() => {});
      o.log(`${t.label}: done on ${t.node || "a node"} (job ${t.job}_${t.task})`);
      return;
    }
    const code = Number(/^\d+$/.test(t.exitCode) ? t.exitCode : 1) || 1;
    result.failed.push({ id: t.id, label: t.label, code, state: t.state, reason: endReason(t, out) });
    if (!s.dryRun) await writeFailure(out, t, t.id, byId.get(t.id)!.args);
    o.log(
      `${t.label}: ${t.state} (${endReason(t, out)}, exit code ${t.exitCode || "unknown"})` +
        (s.dryRun ? "" : `; see ${out}/${t.id}.failed.txt`),
    );
  };

  // Tasks of earlier submissions: still queued ones are waited for, ended ones without a record are
  // written up and submitted again.
  const latest = new Map<string, CellTask>();
  for (const sub of await readState(out)) {
    sub.cells.forEach((id, task) => {
      if (byId.has(id)) latest.set(id, { job: sub.job, task, id, label: byId.get(id)!.cell.label });
    });
  }
  const adopted: CellTask[] = [];
  const toSubmit: string[] = [];
  const states = new Map<string, Awaited<ReturnType<typeof arrayStates>>>();
  for (const id of missing) {
    const prev = latest.get(id);
    if (!prev || o.force) {
      toSubmit.push(id);
      continue;
    }
    if (!states.has(prev.job)) states.set(prev.job, await arrayStates(prev.job));
    const st = taskState(states.get(prev.job) ?? null, prev.task);
    if (!isTerminal(st.state)) {
      adopted.push(prev);
      continue;
    }
    const code = st.state === "COMPLETED" ? "0" : (await exitCodes(prev.job)).get(prev.task) ?? "";
    await onEnd({ ...prev, ...st, exitCode: code });
    toSubmit.push(id);
  }
  if (adopted.length) {
    o.log(
      `${adopted.length} cells are still queued in job ${[...new Set(adopted.map((a) => a.job))].join(", ")}`,
    );
  }

  const tasks = toSubmit.map((id) => ({
    label: byId.get(id)!.cell.label,
    args: byId.get(id)!.args,
    engine: o.engine,
  }));
  if (s.dryRun) {
    const path = `${out}/slurm/cells-N.sh`;
    const script = tasks.length
      ? batchScript({ out, path, tasks, sbatch: arrayOptions(tasks.length, s, "f16repro-cells") })
      : "";
    const status = (id: string) =>
      result.skipped.includes(id)
        ? "recorded"
        : toSubmit.includes(id)
        ? `array task ${toSubmit.indexOf(id)}`
        : "queued";
    const list = ids.map((id) => `${id}  ${status(id).padEnd(13)}  ${byId.get(id)!.cell.label}`);
    return { ...result, failed: [], jobs: [], waited: false, dryRun: { script, cells: list } };
  }
  const watched = [...adopted];
  const jobs = [...new Set(adopted.map((a) => a.job))];
  if (tasks.length) {
    const sub = await submitArray(out, "cells", tasks, s);
    await addSubmission(out, {
      job: sub.job,
      script: sub.path,
      submittedAt: new Date().toISOString(),
      cells: toSubmit,
    });
    o.log(`submitted ${tasks.length} cells as Slurm job ${sub.job} (batch script ${sub.path})`);
    toSubmit.forEach((id, task) => watched.push({ job: sub.job, task, id, label: byId.get(id)!.cell.label }));
    jobs.push(sub.job);
  }
  if (s.noWait) {
    o.log(
      jobs.length
        ? `not waiting: watch with squeue -j ${jobs.join(",")}; cancel with scancel ${jobs.join(" ")}; ` +
          `run the same reproduce again, or f16repro report, to pick up what finished`
        : "every cell has a record: run without --no-wait to check determinism and write the report",
    );
    return { ...result, jobs, waited: false };
  }
  // A failure recorded above for an earlier submission is resubmitted now; only this run's ending counts.
  result.failed.length = 0;
  await waitForTasks(watched, {
    poll: s.poll,
    cancelOnExit: s.cancelOnExit,
    log: o.log,
    onEnd,
  });
  return { ...result, jobs, waited: true };
}
