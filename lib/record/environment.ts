/**
 * The environment manifest of a run record: the scope in which its
 * determinism guarantee holds (runtime versions, OS, CPU, engine).
 *
 * Every probe is best-effort: a value the permissions do not allow reading is
 * recorded as "unknown" instead of failing the run.
 *
 * @module
 */

import type { Engine } from "../../kernels/engine.ts";
import { RNG_NAME } from "../random.ts";

function tryOr<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

function cpuModel(): string {
  const text = tryOr(() => Deno.readTextFileSync("/proc/cpuinfo"), "");
  const m = /^model name\s*:\s*(.+)$/m.exec(text) ?? /^Hardware\s*:\s*(.+)$/m.exec(text);
  return m ? m[1].trim() : "unknown";
}

function gitCommit(): string {
  const git = new URL("../../.git/", import.meta.url);
  const read = (p: string) => tryOr(() => Deno.readTextFileSync(new URL(p, git)).trim(), "");
  const head = read("HEAD");
  if (!head.startsWith("ref: ")) return head || "unknown";
  const ref = head.slice(5);
  const packed = read("packed-refs").split("\n").find((l) => l.endsWith(` ${ref}`))?.split(" ")[0];
  return read(ref) || packed || "unknown";
}

/**
 * Where a run ran when a Slurm job ran it (node, job id, array job and task ids), from the SLURM_*
 * variables of the task's environment; undefined outside Slurm. Best-effort like every probe here.
 */
export function slurmPlacement(): Record<string, string> | undefined {
  const get = (k: string) => tryOr(() => Deno.env.get(k), undefined);
  const jobId = get("SLURM_JOB_ID");
  if (!jobId) return undefined;
  const fields: Record<string, string | undefined> = {
    node: get("SLURMD_NODENAME"),
    jobId,
    arrayJobId: get("SLURM_ARRAY_JOB_ID"),
    arrayTaskId: get("SLURM_ARRAY_TASK_ID"),
    cluster: get("SLURM_CLUSTER_NAME"),
  };
  return Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined));
}

/** The manifest for a run on `engine`. */
export function environmentManifest(engine: Engine): Record<string, unknown> {
  const slurm = slurmPlacement();
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    os: Deno.build.os,
    osRelease: tryOr(() => Deno.osRelease(), "unknown"),
    arch: Deno.build.arch,
    cpu: cpuModel(),
    cpus: navigator.hardwareConcurrency,
    gitCommit: gitCommit(),
    rng: RNG_NAME,
    ...(slurm ? { slurm } : {}),
    engine: {
      name: engine.name,
      description: engine.description,
      capabilities: { ...engine.capabilities, ops: engine.capabilities.ops.length },
      ...engine.environment(),
    },
  };
}
