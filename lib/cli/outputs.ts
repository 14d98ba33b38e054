/**
 * Outputs are checked before the work and the work is kept when writing fails.
 *
 * - {@linkcode probeFolder} and {@linkcode probeFile} run before a command
 *   starts its work: they create a probe file exclusively where the output
 *   will go and remove it, and leave the file system as they found it (a
 *   folder they had to create is removed again). A folder that is a file, a
 *   file that is a folder, a missing parent, a read-only or full disk: one line
 *   naming the path, before minutes of training are spent.
 * - {@linkcode writeOrRescue} writes finished work; when that still fails (the
 *   disk filled up meanwhile), it writes the work into a fresh folder under the
 *   system temp folder and says in one line where it was kept, or why it could
 *   not be.
 *
 * @module
 */

import { firstLine } from "./usage_error.ts";
import { UserError } from "../errors.ts";
import { WriteError } from "../record/atomic.ts";

/** What is at `path`; "other" is a device, pipe or socket (outputs replace files by renaming onto them). */
const kindOf = (path: string) =>
  Deno.stat(path).then(
    (s) => (s.isDirectory ? "folder" : s.isFile ? "file" : "other"),
    () => "missing" as const,
  );

const parentOf = (path: string) => {
  const p = path.replace(/\/+$/, "");
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
};

/** Creates and removes one probe file in the existing folder `dir`; throws a UserError naming `what`. */
async function probeIn(what: string, shown: string, dir: string): Promise<void> {
  const probe = `${dir}/.f16repro-probe-${Deno.pid}-${crypto.randomUUID()}`;
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(probe, { write: true, createNew: true });
    // One byte needs a data block, so a full disk fails here rather than at the end.
    await f.write(new Uint8Array(1));
    await f.sync();
  } catch (e) {
    throw new UserError(`Cannot write ${what} "${shown}": ${firstLine(e)}`);
  } finally {
    f?.close();
    await Deno.remove(probe).catch(() => {});
  }
}

/**
 * Checks, before any work, that files can be created in the folder `dir` (`what` names it in messages, e.g.
 * "--out"). A missing folder is created for the check and removed again.
 */
export async function probeFolder(what: string, dir: string): Promise<void> {
  const created: string[] = [], top = dir.replace(/\/+$/, "") || "/";
  for (let p = top;; p = parentOf(p)) {
    const kind = await kindOf(p);
    if (kind === "folder") break;
    if (kind === "file" || kind === "other") {
      throw new UserError(
        p === top ? `${what} "${dir}" is a file, not a folder` : `${what} "${dir}": "${p}" is a file`,
      );
    }
    created.unshift(p);
    if (p === "." || p === "/") break;
  }
  try {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (e) {
      throw new UserError(`Cannot create ${what} "${dir}": ${firstLine(e)}`);
    }
    await probeIn(what, dir, dir);
  } finally {
    for (const p of created.reverse()) await Deno.remove(p).catch(() => {});
  }
}

/** Checks, before any work, that the file `path` can be written: it is not a folder and its folder takes files. */
export async function probeFile(what: string, path: string): Promise<void> {
  const kind = await kindOf(path);
  if (kind === "folder") throw new UserError(`${what} "${path}" is a folder; name a file`);
  if (kind === "other") throw new UserError(`${what} "${path}" is not a regular file`);
  const parent = parentOf(path);
  const pk = await kindOf(parent);
  if (pk !== "folder") {
    const why = pk === "missing" ? "does not exist" : "is not a folder";
    throw new UserError(`${what} "${path}": folder "${parent}" ${why}`);
  }
  await probeIn(what, path, parent);
}

/** Options of {@linkcode writeOrRescue}. */
export interface RescueOptions {
  /** "folder": `target` is a folder the work is written into; "file": it is the file itself. */
  readonly kind: "folder" | "file";
  /** Where the rescue folder is made (default: the system temp folder). */
  readonly tempRoot?: string;
}

/**
 * Writes finished work with `write(target)`. When that fails, writes it with `write(rescue)` into a fresh
 * folder under the system temp folder (for a file: the same name there) and throws a one-line
 * {@linkcode UserError} that names both the failure and where the work was kept, or why it could not be kept.
 * `write` must leave nothing half-written where it fails (as `writeAtomic` does).
 */
export async function writeOrRescue<T>(
  what: string,
  target: string,
  write: (target: string) => Promise<T>,
  o: RescueOptions,
): Promise<T> {
  let why: string;
  try {
    return await write(target);
  } catch (e) {
    // A refusal (a report folder holding other files, say) is not a failed write: nothing to keep.
    if (e instanceof UserError && !(e instanceof WriteError)) throw e;
    why = firstLine(e);
  }
  let rescue: string;
  try {
    const dir = await Deno.makeTempDir({ dir: o.tempRoot, prefix: "f16repro-kept-" });
    rescue = o.kind === "folder" ? dir : `${dir}/${target.replace(/\/+$/, "").split("/").pop()}`;
    await write(rescue);
  } catch (e) {
    throw new UserError(
      `Could not write ${what} to ${target} (${why}) nor to the temp folder (${firstLine(e)}); it is lost`,
    );
  }
  throw new UserError(`Could not write ${what} to ${target} (${why}); it is kept in ${rescue}`);
}
