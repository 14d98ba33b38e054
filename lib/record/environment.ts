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
import { engineGuarantee } from "../../kernels/registry.ts";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { RNG_NAME } from "../random.ts";
import { sha256Hex } from "./hash.ts";

function tryOr<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

/** The CPU model through node:os, which needs only --allow-sys (Deno denies /proc/cpuinfo without --allow-all). */
export function cpuModel(): string {
  return tryOr(() => cpus()[0]?.model?.trim() || "unknown", "unknown");
}

/** The checkout this code runs from, or null (a compiled binary's modules are not files). */
function checkoutDir(): string | null {
  const root = new URL("../../", import.meta.url);
  return root.protocol === "file:" ? tryOr(() => fileURLToPath(root), null) : null;
}

async function git(dir: string, args: string[]): Promise<Uint8Array | null> {
  try {
    const out = await new Deno.Command("git", { args: ["-C", dir, ...args], stdout: "piped", stderr: "null" })
      .output();
    return out.success ? out.stdout : null;
  } catch {
    return null; // no git, or no permission to run it
  }
}

/**
 * Whether the checkout differs from its commit (tracked changes, staged or not, and untracked files), and a
 * SHA-256 over that difference (the diff against HEAD, then each untracked file's name and content), so two
 * runs from the same dirty tree can be told from runs of different edits. "unknown" without git.
 */
export async function gitState(): Promise<{ dirty: boolean | "unknown"; diffHash: string | null }> {
  const dir = checkoutDir();
  const diff = dir ? await git(dir, ["diff", "HEAD", "--binary", "--no-ext-diff", "--no-color"]) : null;
  const others = dir ? await git(dir, ["ls-files", "--others", "--exclude-standard", "-z"]) : null;
  if (!dir || !diff || !others) return { dirty: "unknown", diffHash: null };
  const names = new TextDecoder().decode(others).split("\0").filter(Boolean).sort();
  if (diff.length === 0 && names.length === 0) return { dirty: false, diffHash: null };
  const parts: Uint8Array[] = [diff];
  for (const n of names) {
    parts.push(new TextEncoder().encode(`\0${n}\0`));
    parts.push(await Deno.readFile(`${dir}/${n}`).catch(() => new Uint8Array()));
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, at), (at += p.length);
  return { dirty: true, diffHash: await sha256Hex(all) };
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
export async function environmentManifest(engine: Engine): Promise<Record<string, unknown>> {
  const tree = await gitState();
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
    cpuCores: tryOr(() => cpus().length, null),
    gitCommit: gitCommit(),
    gitDirty: tree.dirty,
    gitDiffHash: tree.diffHash,
    rng: RNG_NAME,
    ...(slurm ? { slurm } : {}),
    engine: {
      name: engine.name,
      description: engine.description,
      capabilities: { ...engine.capabilities, ops: engine.capabilities.ops.length },
      guarantee: engineGuarantee(engine.name).text,
      ...engine.environment(),
    },
  };
}
