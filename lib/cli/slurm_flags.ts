/**
 * The `reproduce` flags that send cells to Slurm (`--scheduler slurm` and its options), their help text
 * and their checking.
 *
 * @module
 */

import type { SlurmOptions } from "../reproduce/slurm_run.ts";
import { decimal, positiveInt } from "./parse.ts";
import { UsageError } from "../errors.ts";

/** parseArgs options of the Slurm flags. */
export const SLURM_FLAGS = {
  scheduler: { type: "string", default: "local" },
  partition: { type: "string" },
  time: { type: "string" },
  "cpus-per-task": { type: "string" },
  gpus: { type: "string" },
  "array-throttle": { type: "string" },
  "sbatch-arg": { type: "string", multiple: true },
  poll: { type: "string" },
  "no-wait": { type: "boolean" },
  "cancel-on-exit": { type: "boolean" },
} as const;

/** Help lines of the Slurm flags. */
export const SLURM_HELP = `Cluster (see docs/cluster.md):
  --scheduler NAME   local | slurm (default local). slurm: the cells without a record run as one Slurm
                     job array into --out, which every node must see; then the determinism re-runs as
                     jobs; the report is written here
  --partition NAME   Slurm partition; --time LIMIT: time limit of each cell (Slurm's format, e.g. 2:00:00)
  --cpus-per-task N  CPUs of each cell (default 1; the wasm engine uses them as threads)
  --gpus SPEC        GPUs of each cell (sbatch --gpus), for a GPU engine
  --array-throttle N at most N cells of the array at once
  --sbatch-arg ARG   passed to sbatch as it is; repeatable (e.g. --sbatch-arg=--account=lab)
  --poll SECONDS     seconds between looks at the queue while waiting (default 10)
  --no-wait          submit and exit; run reproduce again (or report) to pick up what finished
  --cancel-on-exit   Ctrl-C while waiting cancels the jobs (by default they keep running)
  --dry-run          (above) also prints the batch script; submits nothing`;

/** The values parseArgs gives for {@linkcode SLURM_FLAGS}. */
export interface SlurmFlagValues {
  scheduler?: string;
  partition?: string;
  time?: string;
  "cpus-per-task"?: string;
  gpus?: string;
  "array-throttle"?: string;
  "sbatch-arg"?: string[];
  poll?: string;
  "no-wait"?: boolean;
  "cancel-on-exit"?: boolean;
}

/**
 * The checked Slurm options, with the CPUs per cell; undefined for `--scheduler local`. `dryRun` is
 * reproduce's own `--dry-run`, which works for both schedulers.
 */
export function slurmOptions(
  v: SlurmFlagValues,
  dryRun = false,
): (SlurmOptions & { cpus: number; partition?: string }) | undefined {
  const given = (Object.keys(SLURM_FLAGS) as (keyof SlurmFlagValues)[])
    .filter((k) => k !== "scheduler" && v[k] !== undefined);
  if (v.scheduler === "local" || v.scheduler === undefined) {
    if (given.length) throw new UsageError(`--${given[0]} needs --scheduler slurm`);
    return undefined;
  }
  if (v.scheduler !== "slurm") {
    throw new UsageError(`Unknown scheduler "${v.scheduler}": expected local or slurm`);
  }
  // Values end up in the batch script's header comment: a line break there would start a command.
  for (const k of given) {
    for (const x of [v[k]].flat()) {
      if (typeof x === "string" && ([...x].some((ch) => ch < " " || ch === "\x7f") || x === "")) {
        throw new UsageError(`--${k} must be one non-empty line, got ${JSON.stringify(x)}`);
      }
    }
  }
  const cpus = v["cpus-per-task"] ? positiveInt("cpus-per-task", v["cpus-per-task"]) : 1;
  return {
    sbatch: [
      ...(v.partition ? [`--partition=${v.partition}`] : []),
      ...(v.time ? [`--time=${v.time}`] : []),
      `--cpus-per-task=${cpus}`,
      ...(v.gpus ? [`--gpus=${v.gpus}`] : []),
      ...(v["sbatch-arg"] ?? []),
    ],
    throttle: v["array-throttle"] ? positiveInt("array-throttle", v["array-throttle"]) : undefined,
    poll: v.poll ? decimal("poll", v.poll, { min: 0, above: true }) : 10,
    noWait: v["no-wait"] ?? false,
    cancelOnExit: v["cancel-on-exit"] ?? false,
    dryRun,
    cpus,
    partition: v.partition,
  };
}
