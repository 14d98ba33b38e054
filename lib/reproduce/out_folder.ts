/**
 * A reproduction's out folder: one reproduction at a time, one profile per
 * folder, and no leftovers of killed runs.
 *
 * The lock is an OS file lock on `<out>/.f16repro.lock`, so a killed
 * reproduce never leaves a lock that blocks the next one; the file names its
 * holder for the one-line message a second reproduce prints.
 *
 * @module
 */

import { removeStaleTemps } from "../record/atomic.ts";
import { type FileLock, lockedByLiveProcess, tryLockFile } from "../record/lock.ts";
import { readJson } from "../record/read.ts";
import { UserError } from "../errors.ts";

/** The lock file of an out folder. */
export const LOCK_FILE = ".f16repro.lock";
/** The prefix of the determinism check's scratch folders in the system temp folder. */
export const VERIFY_SCRATCH = "f16repro-verify-";

/** What claiming a folder found and removed. */
export interface Claim {
  readonly lock: FileLock;
  /** Files removed: temporaries of killed writers, weights without a record. */
  readonly removed: readonly string[];
}

function host(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown host";
  }
}

/**
 * Takes `out` for a reproduction of `profile`: refuses (one line) when another reproduce holds it or when it
 * holds another profile's reproduction; then removes what killed runs left there.
 */
export async function claimOutFolder(out: string, profile: string): Promise<Claim> {
  await Deno.mkdir(out, { recursive: true });
  const lockPath = `${out}/${LOCK_FILE}`;
  const note = `pid ${Deno.pid} on ${host()}, profile ${profile}, since ${new Date().toISOString()}\n`;
  const lock = await tryLockFile(lockPath, note);
  if (!lock) {
    const holder = (await Deno.readTextFile(lockPath).catch(() => "")).trim() || "another process";
    throw new UserError(
      `${out} is in use by another f16repro reproduce (${holder}); wait for it or choose another --out`,
    );
  }
  try {
    const matrix = await readJson(`${out}/matrix.json`);
    const other = "value" in matrix ? (matrix.value as { profile?: unknown })?.profile : undefined;
    if (typeof other === "string" && other !== profile) {
      throw new UserError(
        `${out} holds a reproduction of profile ${other}; profile ${profile} needs its own folder (--out DIR)`,
      );
    }
    return { lock, removed: [...await removeStaleTemps(out), ...await removeOrphanWeights(out)] };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/**
 * Removes `<id>.weights` files that have no `<id>.json` beside them (a run killed between the two writes)
 * once they are an hour old: a younger one may belong to a cell still running elsewhere (a Slurm task
 * between its two writes), and is overwritten anyway when its cell runs again.
 */
async function removeOrphanWeights(out: string): Promise<string[]> {
  const names = new Set<string>();
  for await (const e of Deno.readDir(out)) if (e.isFile) names.add(e.name);
  const removed: string[] = [];
  for (const n of names) {
    if (!n.endsWith(".weights") || names.has(n.replace(/\.weights$/, ".json"))) continue;
    const age = Date.now() -
      ((await Deno.lstat(`${out}/${n}`).catch(() => null))?.mtime?.getTime() ?? Date.now());
    if (age < ORPHAN_AGE_MS) continue;
    if (await Deno.remove(`${out}/${n}`).then(() => true, () => false)) removed.push(n);
  }
  return removed.sort();
}

/** How old a weights file without its record must be before a reproduction removes it. */
export const ORPHAN_AGE_MS = 3600_000;

/** The system temp folder, as Deno.makeTempDir uses it. */
function tempRoot(): string {
  try {
    return Deno.env.get("TMPDIR") || "/tmp";
  } catch {
    return "/tmp";
  }
}

/**
 * Removes the determinism check's scratch folders that killed checks left in the temp folder (a live check
 * holds the lock file inside its folder) and returns their paths.
 */
export async function removeStaleScratch(): Promise<string[]> {
  const root = tempRoot(), removed: string[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.isDirectory || !e.name.startsWith(VERIFY_SCRATCH)) continue;
      const dir = `${root}/${e.name}`;
      // A folder without its lock file yet may belong to a check that is just starting: give it a minute.
      const live = await lockedByLiveProcess(`${dir}/${LOCK_FILE}`).catch(async () =>
        Date.now() - ((await Deno.stat(dir).catch(() => null))?.mtime?.getTime() ?? 0) < 60_000
      );
      if (!live && await Deno.remove(dir, { recursive: true }).then(() => true, () => false)) {
        removed.push(dir);
      }
    }
  } catch {
    // An unreadable temp folder holds nothing we could clean.
  }
  return removed.sort();
}
