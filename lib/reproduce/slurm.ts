/**
 * Talking to Slurm: submitting a batch script as a job array, reading its tasks' states, waiting for
 * them by polling, and cancelling. Only the four client commands in {@linkcode SLURM_PROGRAMS} are run,
 * so a `--allow-run` that names them is enough. Finished jobs are read from `squeue -t all` and
 * `scontrol show job`, which list them for the cluster's MinJobAge (300 s by default) without needing
 * Slurm's accounting database.
 *
 * @module
 */

import { UserError } from "../errors.ts";

/** A situation on the cluster (no Slurm, a rejected job): the CLI prints the message on one line. */
export class SlurmError extends UserError {}

/** The Slurm client commands f16repro runs. */
export const SLURM_PROGRAMS = ["sbatch", "squeue", "scontrol", "scancel"] as const;

/** Slurm's job states after which a task runs no more (a requeued task goes back to PENDING instead). */
const TERMINAL = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "PREEMPTED",
  "NODE_FAIL",
  "BOOT_FAIL",
  "DEADLINE",
  "OUT_OF_MEMORY",
  "REVOKED",
  "SPECIAL_EXIT",
]);

/** Whether a task in `state` has ended (successfully or not). */
export function isTerminal(state: string): boolean {
  return TERMINAL.has(state) || state === UNKNOWN;
}

/** The state of a task that Slurm no longer lists (its job aged out of the controller's memory). */
export const UNKNOWN = "UNKNOWN";

async function slurm(cmd: (typeof SLURM_PROGRAMS)[number], args: readonly string[]) {
  let out;
  try {
    out = await new Deno.Command(cmd, { args: [...args], stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SlurmError(
        `${cmd} is not on PATH: run on a machine with Slurm's client commands (Debian and Ubuntu: ` +
          `apt-get install slurm-client, with the cluster's slurm.conf), such as the cluster's login node`,
      );
    }
    throw e;
  }
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr).trim() };
}

/** Slurm's own message: the last non-empty line of its stderr, without the `sbatch: error: ` prefix. */
function message(stderr: string, code: number): string {
  const line = stderr.split("\n").map((l) => l.trim()).filter((l) => l).at(-1);
  return line ? line.replace(/^\w+: error: /, "") : `exit code ${code}`;
}

/** Fails with a one-line {@linkcode SlurmError} when `sbatch` cannot be run. */
export async function requireSlurm(): Promise<void> {
  const r = await slurm("sbatch", ["--version"]);
  if (r.code !== 0) throw new SlurmError(`sbatch --version failed: ${message(r.stderr, r.code)}`);
}

/** Submits `script` with `options`; returns the job id, or throws Slurm's own message when it refuses. */
export async function submit(script: string, options: readonly string[]): Promise<string> {
  const r = await slurm("sbatch", ["--parsable", ...options, script]);
  const id = /^(\d+)/.exec(r.stdout.trim())?.[1];
  if (r.code !== 0 || !id) throw new SlurmError(`Slurm rejected the job: ${message(r.stderr, r.code)}`);
  return id;
}

/** What Slurm says about one array task. */
export interface TaskState {
  readonly state: string;
  readonly reason: string;
  readonly node: string;
}

/** Parses `squeue -h -r -o '%K|%T|%r|%N'` lines into task index -> state. */
export function parseSqueue(text: string): Map<number, TaskState> {
  const m = new Map<number, TaskState>();
  for (const line of text.split("\n")) {
    const [task, state, reason, node] = line.trim().split("|");
    if (!/^\d+$/.test(task ?? "") || !state) continue;
    m.set(Number(task), { state: state.replace(/\+$/, ""), reason: reason ?? "", node: node ?? "" });
  }
  return m;
}

/** The states of the tasks of array job `job`; null when Slurm no longer knows the job. */
export async function arrayStates(job: string): Promise<Map<number, TaskState> | null> {
  const r = await slurm("squeue", ["-h", "-r", "-t", "all", "-j", job, "-o", "%K|%T|%r|%N"]);
  if (r.code !== 0) {
    if (/invalid job id/i.test(r.stderr)) return null;
    throw new SlurmError(`squeue failed: ${message(r.stderr, r.code)}`);
  }
  return parseSqueue(r.stdout);
}

/**
 * Task `task`'s state in `states` (what {@linkcode arrayStates} gave). A task Slurm does not list has
 * state {@linkcode UNKNOWN}: Slurm drops a task cancelled before it started from its array, and forgets
 * ended tasks after MinJobAge.
 */
export function taskState(states: Map<number, TaskState> | null, task: number): TaskState {
  return states?.get(task) ?? {
    state: UNKNOWN,
    reason: states
      ? "Slurm no longer lists the task (cancelled before it started, or ended longer ago than MinJobAge)"
      : "Slurm no longer lists the job (it ended longer ago than MinJobAge)",
    node: "",
  };
}

/** Parses `scontrol show job -o` lines into array task index -> exit code ("1", or "0 (signal 9)"). */
export function parseExitCodes(text: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of text.split("\n")) {
    const task = /\bArrayTaskId=(\d+)(?=\s|$)/.exec(line)?.[1];
    const code = /\bExitCode=(\d+):(\d+)/.exec(line);
    if (task === undefined || !code) continue;
    m.set(Number(task), code[2] === "0" ? code[1] : `${code[1]} (signal ${code[2]})`);
  }
  return m;
}

/** The exit codes of the finished tasks of array job `job` (empty when Slurm no longer knows it). */
export async function exitCodes(job: string): Promise<Map<number, string>> {
  const r = await slurm("scontrol", ["show", "job", "-o", job]);
  return r.code === 0 ? parseExitCodes(r.stdout) : new Map();
}

/** Cancels the jobs `jobs`; Slurm's message when it refuses. */
export async function cancel(jobs: readonly string[]): Promise<void> {
  const r = await slurm("scancel", [...jobs]);
  if (r.code !== 0) throw new SlurmError(`scancel ${jobs.join(" ")} failed: ${message(r.stderr, r.code)}`);
}

/** How many nodes `partition` (or the default partition) has; 1 when Slurm does not say. */
export async function partitionNodes(partition?: string): Promise<number> {
  const r = await slurm("scontrol", ["show", "partition", "-o", ...(partition ? [partition] : [])]);
  const lines = r.stdout.split("\n").filter((l) => l.trim());
  const line = partition ? lines[0] : lines.find((l) => /\bDefault=YES\b/.test(l));
  return Number(/\bTotalNodes=(\d+)/.exec(line ?? "")?.[1] ?? 1);
}
