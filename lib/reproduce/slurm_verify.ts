/**
 * The determinism check as Slurm jobs: each re-run is an array task writing into a folder of the shared
 * out folder, compared with its record as the local check does. Where the partition has more than one
 * node, the re-runs of each node's records go to an array that excludes that node, which turns the
 * re-run into a cross-machine check.
 *
 * @module
 */

import { resolve } from "node:path";
import { partitionNodes } from "./slurm.ts";
import { endReason, finishedRecord, type SlurmOptions, submitArray } from "./slurm_run.ts";
import { type EndedTask, waitForTasks, type WatchedTask } from "./slurm_wait.ts";
import { argsOf, checkOutcome, compareRerun } from "./verify.ts";
import type { DeterminismCheck, RunRecord } from "../record/schema.ts";

/** The node a record was made on, when a Slurm task made it. */
export function recordNode(r: RunRecord): string | undefined {
  const slurm = (r.environment as { slurm?: { node?: unknown } }).slurm;
  return typeof slurm?.node === "string" ? slurm.node : undefined;
}

/**
 * The records grouped by the node to keep their re-runs off: by their own node when the cluster has
 * `nodes` > 1 and the record names one, else one group with no node to avoid.
 */
export function groupByNode(records: readonly RunRecord[], nodes: number): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  records.forEach((r, k) => {
    const node = nodes > 1 ? recordNode(r) ?? "" : "";
    groups.set(node, [...(groups.get(node) ?? []), k]);
  });
  return groups;
}

interface VerifyTask extends WatchedTask {
  readonly k: number;
}

/** Re-runs `records` as Slurm array tasks and compares each re-run with its record. */
export async function checkDeterminismOnSlurm(
  records: readonly RunRecord[],
  o: { out: string; partition?: string; extra: readonly string[]; log: (line: string) => void },
  s: SlurmOptions,
): Promise<DeterminismCheck[]> {
  if (!records.length) return [];
  const out = resolve(o.out);
  const dir = await Deno.makeTempDir({ dir: `${out}/slurm`, prefix: "verify-" });
  const label = (r: RunRecord) =>
    `[verify] ${r.config.model} ${r.config.dataset} ${r.config.precision} seed ${r.config.seed}`;
  const checks: DeterminismCheck[] = new Array(records.length);
  try {
    const watched: VerifyTask[] = [];
    for (const [node, ks] of groupByNode(records, await partitionNodes(o.partition))) {
      const tasks = ks.map((k) => ({
        label: label(records[k]),
        args: [...argsOf(records[k], `${dir}/${k}`), ...o.extra],
        engine: records[k].config.engine,
      }));
      const sub = await submitArray(out, "verify", tasks, s, node ? [`--exclude=${node}`] : []);
      o.log(`submitted ${ks.length} re-runs as Slurm job ${sub.job}${node ? ` (off node ${node})` : ""}`);
      ks.forEach((k, task) => watched.push({ job: sub.job, task, k, label: label(records[k]) }));
    }
    await waitForTasks(watched, {
      poll: s.poll,
      cancelOnExit: s.cancelOnExit,
      log: o.log,
      onEnd: async (t: EndedTask<VerifyTask>) => {
        const r = records[t.k];
        const again = await finishedRecord(`${dir}/${t.k}`, r.id);
        const why = `Slurm ${t.state} on ${t.node || "no node"}: ${endReason(t, out)}, exit code ${
          t.exitCode || "unknown"
        }`;
        checks[t.k] = compareRerun(r, again, why);
        const from = recordNode(r);
        o.log(
          `${t.label}: ${checkOutcome(checks[t.k])}${
            again && t.node ? ` (re-run on ${t.node}${from ? `, record from ${from}` : ""})` : ""
          }`,
        );
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return checks;
}
