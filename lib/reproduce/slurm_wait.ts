/**
 * Waiting for Slurm array tasks: polls the scheduler every few seconds (a sleep between polls, never a
 * busy loop), logs each task's changes of state, and hands every task that ends to the caller.
 *
 * Ctrl-C while waiting leaves the jobs running (they finish on their own and a later `reproduce`
 * picks them up) and prints the `scancel` command that would stop them, unless the caller asked to
 * cancel them on exit.
 *
 * @module
 */

import {
  arrayStates,
  cancel,
  exitCodes,
  isTerminal,
  SlurmError,
  type TaskState,
  taskState,
} from "./slurm.ts";

/** One array task being waited for. */
export interface WatchedTask {
  readonly job: string;
  readonly task: number;
  readonly label: string;
}

/** How a task ended. */
export interface Ending extends TaskState {
  /** Its exit code as `scontrol` gives it, or "" when Slurm no longer says. */
  readonly exitCode: string;
}

/** A watched task and how it ended. */
export type EndedTask<T extends WatchedTask = WatchedTask> = T & Ending;

/** Options of {@linkcode waitForTasks}. */
export interface WaitOptions<T extends WatchedTask> {
  /** Seconds between polls. */
  readonly poll: number;
  /** Cancel the jobs when the user interrupts the wait (Ctrl-C). */
  readonly cancelOnExit: boolean;
  readonly log: (line: string) => void;
  /** Called once for each task that ends, as it is seen to end. */
  readonly onEnd: (t: EndedTask<T>) => Promise<void>;
  /** How the queue is read (default {@linkcode arrayStates}; tests stand in a controller that fails). */
  readonly look?: typeof arrayStates;
}

/** Failed looks at the queue in a row after which waiting gives up. */
const MAX_QUEUE_FAILURES = 10;

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** Where a task runs, for log lines. */
const where = (s: TaskState) => (s.node ? ` on ${s.node}` : "");

/** Waits until every task in `tasks` has ended. */
export async function waitForTasks<T extends WatchedTask>(
  tasks: readonly T[],
  o: WaitOptions<T>,
): Promise<void> {
  const jobs = [...new Set(tasks.map((t) => t.job))];
  const onInterrupt = async () => {
    if (o.cancelOnExit) {
      await cancel(jobs).then(
        () => console.error(`f16repro: interrupted; cancelled Slurm job ${jobs.join(" ")}`),
        (e) => console.error(`f16repro: interrupted; ${(e as Error).message}`),
      );
    } else {
      console.error(
        `f16repro: interrupted; Slurm job ${jobs.join(" ")} keeps running (a later reproduce picks up ` +
          `what finished). To stop it: scancel ${jobs.join(" ")}`,
      );
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    const seen = new Map<T, string>();
    let waiting = [...tasks];
    let summary = "";
    let failures = 0;
    while (waiting.length) {
      const states = new Map<string, Map<number, TaskState> | null>();
      try {
        for (const j of new Set(waiting.map((t) => t.job))) states.set(j, await (o.look ?? arrayStates)(j));
        failures = 0;
      } catch (e) {
        // A controller that is briefly unreachable (restart, fail-over) must not end an hours-long wait.
        if (!(e instanceof SlurmError) || ++failures >= MAX_QUEUE_FAILURES) throw e;
        o.log(
          `slurm: ${e.message}; looking again in ${o.poll} s (${failures} of ${MAX_QUEUE_FAILURES} tries)`,
        );
        await sleep(o.poll);
        continue;
      }
      const codes = new Map<string, Map<number, string>>();
      const ended: T[] = [];
      for (const t of waiting) {
        const s = taskState(states.get(t.job) ?? null, t.task);
        const tag = `${t.label} (job ${t.job}_${t.task})`;
        if (seen.get(t) !== s.state && !isTerminal(s.state)) {
          o.log(
            `${tag}: ${s.state}${where(s)}${
              s.state === "PENDING" && s.reason !== "None" ? ` (${s.reason})` : ""
            }`,
          );
        }
        seen.set(t, s.state);
        if (!isTerminal(s.state)) continue;
        ended.push(t);
        // Exit codes come from scontrol, asked once per job and poll, only when a task failed.
        if (s.state !== "COMPLETED" && !codes.has(t.job)) codes.set(t.job, await exitCodes(t.job));
        await o.onEnd({
          ...t,
          ...s,
          exitCode: codes.get(t.job)?.get(t.task) ?? (s.state === "COMPLETED" ? "0" : ""),
        });
      }
      waiting = waiting.filter((t) => !ended.includes(t));
      const running = waiting.filter((t) => seen.get(t) === "RUNNING").length;
      const now = `${tasks.length - waiting.length} of ${tasks.length} ended, ${running} running, ` +
        `${waiting.length - running} waiting`;
      if (now !== summary && waiting.length) o.log(`slurm: ${now}`);
      summary = now;
      if (waiting.length) await sleep(o.poll);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}
