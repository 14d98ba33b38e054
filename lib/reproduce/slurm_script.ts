/**
 * The Slurm batch script of a job array: task `k` runs the `k`-th `f16repro train` command. The script
 * is plain bash with every argument quoted, so a user can read it, and resubmit it by hand with the
 * command its header names.
 *
 * A task first checks that it sees the out folder (the file the script was written to): a node that
 * mounts no shared folder at that path exits with {@linkcode EXIT_NO_OUT_FOLDER}, which the waiting
 * side turns into its reason. Only then does it send its output to a log beside the records.
 *
 * @module
 */

import { childCommand } from "./child.ts";

/** A task's exit code when its node does not see the out folder (sysexits' EX_NOINPUT). */
export const EXIT_NO_OUT_FOLDER = 66;
/** A task's exit code when its node has no f16repro program at the submitting machine's path (EX_UNAVAILABLE). */
export const EXIT_NO_PROGRAM = 69;

/** One array task: the `f16repro` arguments it runs and a label for humans. */
export interface ArrayTask {
  readonly label: string;
  readonly args: readonly string[];
  /** The engine the task runs (its Deno flags go on the command line). */
  readonly engine?: string;
}

/** What a batch script needs. Paths are absolute: a node's working folder is not the submitter's. */
export interface ScriptSpec {
  /** The out folder every node must see. */
  readonly out: string;
  /** The script's own path, inside `out`: the file a task looks for to know it sees the out folder. */
  readonly path: string;
  readonly tasks: readonly ArrayTask[];
  /** The sbatch options it is submitted with (named in the header). */
  readonly sbatch: readonly string[];
}

/** `s` quoted for bash: single quotes, each embedded quote closed, escaped and reopened. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The log of array task `task` of job `job` (the same name the script writes to). */
export function taskLog(out: string, job: string, task: number): string {
  return `${out}/slurm/${job}_${task}.log`;
}

/** The text of the batch script. */
export function batchScript(s: ScriptSpec): string {
  const q = shellQuote;
  const cases = s.tasks.map((t, k) => {
    const c = childCommand(t.args, t.engine);
    return `  ${k}) # ${t.label.replaceAll("\n", " ")}\n     set -- ${
      [c.cmd, ...c.args].map(q).join(" ")
    } ;;`;
  });
  return [
    "#!/bin/bash",
    `# f16repro: ${s.tasks.length} task${s.tasks.length === 1 ? "" : "s"} as one Slurm job array.`,
    `# Submitted with: sbatch ${[...s.sbatch, s.path].map(q).join(" ")}`,
    "# Every node must see the out folder at the same path (a shared filesystem).",
    `OUT=${q(s.out)}`,
    `if [ ! -f ${q(s.path)} ]; then`,
    `  echo "f16repro: node $(hostname) cannot see the out folder $OUT" >&2`,
    `  exit ${EXIT_NO_OUT_FOLDER}`,
    "fi",
    `exec >>"$OUT/slurm/\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}.log" 2>&1`,
    `echo "f16repro: job \${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID} on node $(hostname), $(date -u +%FT%TZ)"`,
    `case "\${SLURM_ARRAY_TASK_ID:-}" in`,
    ...cases,
    `  *) echo "f16repro: no task \${SLURM_ARRAY_TASK_ID:-(unset)} in this array" >&2; exit 64 ;;`,
    "esac",
    `if [ ! -x "$1" ]; then`,
    `  echo "f16repro: node $(hostname) has no program $1" >&2`,
    `  exit ${EXIT_NO_PROGRAM}`,
    "fi",
    'exec "$@"',
    "",
  ].join("\n");
}
