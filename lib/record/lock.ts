/**
 * Advisory file locks (flock) that the operating system releases when their
 * holder dies, even by SIGKILL: how a killed f16repro process's lock, temporary
 * file or scratch folder is told from a live one's, without reading /proc
 * (which Deno denies without --allow-all) or sending signals (which needs
 * --allow-run). On network file systems flock may only cover one machine.
 *
 * @module
 */

import { UserError } from "../errors.ts";
import { writeAll } from "../io.ts";

/** A lock this process holds; {@linkcode FileLock.release} (or the process's end) frees it. */
export interface FileLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes the exclusive lock on `path` (created if missing) without waiting, writing `note` into the file
 * for the next process to read; null when another live process holds it.
 */
export async function tryLockFile(path: string, note = ""): Promise<FileLock | null> {
  const file = await openOwnFile(path);
  if (!(await file.tryLock(true))) {
    file.close();
    return null;
  }
  if (note) {
    await file.truncate(0);
    await writeAll(file, new TextEncoder().encode(note));
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      file.close(); // closing the descriptor drops the flock
    },
  };
}

/**
 * Opens `path` for reading and writing, creating it exclusively when it is missing. An existing path must be
 * a regular file, and the file opened must be the one examined (same device and inode), so a symbolic link
 * planted in a shared folder can never redirect the write of the lock's note to another file.
 */
async function openOwnFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true, write: true, createNew: true, mode: 0o644 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const before = await Deno.lstat(path);
  if (!before.isFile) {
    throw new UserError(`${path} is not a regular file; remove it (it may be a planted link)`);
  }
  const file = await Deno.open(path, { read: true, write: true });
  const now = await file.stat();
  if (now.ino !== before.ino || now.dev !== before.dev) {
    file.close();
    throw new UserError(`${path} changed while it was opened; remove it and try again`);
  }
  return file;
}

/**
 * True when the regular file at `path` is locked by a live process (see {@linkcode tryLockFile}); false when
 * nobody holds it. The probe takes the lock for an instant and gives it back.
 */
export async function lockedByLiveProcess(path: string): Promise<boolean> {
  const info = await Deno.lstat(path);
  if (!info.isFile) return false;
  const file = await Deno.open(path, { read: true });
  try {
    return !(await file.tryLock(true));
  } finally {
    file.close();
  }
}
