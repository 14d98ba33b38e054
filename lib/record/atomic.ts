/**
 * Atomic file writes: a reader (a report, a resumed reproduction, another
 * user's process) sees either the old file or the whole new one, never a
 * half-written one, and nobody can redirect the write.
 *
 * The temporary file beside the target has an unpredictable name and is
 * created exclusively (O_EXCL), so a symbolic link planted in a shared folder
 * is never followed; it is flushed to disk before the rename, so a crash
 * right after leaves the old file or the complete new one. The writer holds a
 * lock on it while it writes, which is how {@linkcode removeStaleTemps} tells
 * the leftovers of a killed writer from a live writer's file.
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { lockedByLiveProcess } from "./lock.ts";
import { writeAll } from "../io.ts";

/** A write that failed; the message names the file that could not be written, never the temporary file. */
export class WriteError extends UserError {
  /** The file that could not be written. */
  readonly path: string;
  constructor(path: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`Cannot write ${path}: ${why}`, { cause });
    this.path = path;
  }
}

const TEMP = /\.tmp-(\d+)-[0-9a-f]{16}$/;

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** Writes text or bytes to `path` atomically (see the module doc); throws a {@linkcode WriteError}. */
export async function writeAtomic(path: string, content: string | Uint8Array): Promise<void> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const tmp = `${path}.tmp-${Deno.pid}-${randomHex(8)}`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    await file.lock(true);
    await writeAll(file, bytes);
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    // Only a file this call created is removed: createNew failing means the name was someone else's.
    if (file) {
      file.close();
      await Deno.remove(tmp).catch(() => {});
    } else if (!(e instanceof Deno.errors.AlreadyExists)) {
      await Deno.remove(tmp).catch(() => {});
    }
    const why = e instanceof Error ? e.message.replaceAll(tmp, path) : String(e);
    throw new WriteError(path, new Error(why, { cause: e }));
  }
}

/**
 * Removes the temporary files that killed writers left in `dir` and returns their names. A file a live
 * writer holds, or one created in the last few seconds (its writer may not hold the lock yet), stays.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!TEMP.test(e.name) || !e.isFile) continue;
    const path = `${dir}/${e.name}`;
    const stale = await Deno.lstat(path).then(
      async (s) => Date.now() - (s.mtime?.getTime() ?? 0) > 5000 && !(await lockedByLiveProcess(path)),
      () => false,
    );
    if (stale && await Deno.remove(path).then(() => true, () => false)) removed.push(e.name);
  }
  return removed.sort();
}
