/**
 * Replaces a report folder as a whole. The report is written into a fresh
 * sibling folder (`.NAME.partial-PID-RANDOM`), and only when every file is
 * there does it take the folder's place: the old folder is renamed aside
 * (`.NAME.old-PID-RANDOM`), the new one renamed in, the old one removed. A
 * kill at any moment therefore leaves the report folder holding one whole
 * report (the old or the new), or, between the two renames, no report folder
 * and the new report beside it; files of figures that are no longer drawn
 * go with the old folder. The next run removes what a killed run left.
 *
 * Whether the writer of a leftover still runs cannot be told under the
 * report's permissions (Deno keeps /proc behind --allow-all and signals
 * behind --allow-run), so every leftover is removed. Two reports started
 * into one folder at the same moment is the one case this touches: the
 * later start removes the earlier one's fresh folder, and the earlier one
 * stops with a one-line error instead of writing anything.
 *
 * An existing folder is only replaced when it holds nothing but report
 * files, so a mistyped `-o` (the runs folder, a home folder) is refused
 * instead of being swept away.
 *
 * @module
 */

import { UserError } from "../lib/errors.ts";

/** A report folder that cannot be written; the message is one sentence naming the folder. Exit code 2. */
export class ReportFolderError extends UserError {
  override readonly exitCode: number = 2;
}

/** Names a report writes: the page, the Table 5 view's CSV and each figure's SVG and CSV. */
const REPORT_FILE = /^(report\.html|table5\.csv|fig\d+-[a-z0-9-]+\.(svg|csv))$/;
/** Leftovers of a run of this module beside the folder: `.NAME.partial-PID-X` or `.NAME.old-PID-X`. */
const LEFTOVER = /^\.(.+)\.(partial|old)-\d+-[0-9a-f]+$/;

/** The parent folder and the name of `path`. */
function split(path: string): [string, string] {
  const p = path.replace(/\/+$/, "") || "/";
  const i = p.lastIndexOf("/");
  return i < 0 ? [".", p] : [p.slice(0, i) || "/", p.slice(i + 1)];
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Removes the leftovers of killed runs for the folder `name` inside `parent`. */
async function removeLeftovers(parent: string, name: string): Promise<void> {
  for await (const e of Deno.readDir(parent)) {
    const m = LEFTOVER.exec(e.name);
    if (m && m[1] === name && e.isDirectory) {
      await Deno.remove(`${parent}/${e.name}`, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * Whether `path` exists; throws a {@linkcode ReportFolderError} unless it is
 * absent, an empty folder or a folder of report files only.
 */
async function checkReplaceable(path: string): Promise<boolean> {
  const info = await statOrNull(path);
  if (info === null) return false;
  if (!info.isDirectory) throw new ReportFolderError(`Output ${path} exists and is not a folder`);
  for await (const e of Deno.readDir(path)) {
    if (!e.isFile || !REPORT_FILE.test(e.name)) {
      throw new ReportFolderError(
        `Output folder ${path} holds ${e.name}, which is not a report file; choose an empty or new folder`,
      );
    }
  }
  return true;
}

/** `PID-RANDOM`: the process id tells a person which run left a folder; the random part keeps names unique. */
const suffix = () =>
  `${Deno.pid}-${
    [...crypto.getRandomValues(new Uint8Array(6))].map((b) => b.toString(16).padStart(2, "0")).join("")
  }`;

/**
 * Writes a folder with `fill` (which gets the fresh folder's path and writes
 * its files there) and puts it at `outDir` in place of what was there. The
 * parent folder is created when missing. Throws a {@linkcode ReportFolderError}
 * before calling `fill` when `outDir` exists and holds anything but report
 * files; on any failure the old folder stays as it was.
 */
export async function replaceFolder(outDir: string, fill: (dir: string) => Promise<void>): Promise<void> {
  const [parent, name] = split(outDir);
  if (name === "." || name === ".." || name === "/") {
    throw new ReportFolderError(`Output folder ${outDir} must be named, not ".", ".." or "/"`);
  }
  await Deno.mkdir(parent, { recursive: true });
  await removeLeftovers(parent, name);
  const target = `${parent}/${name}`;
  await checkReplaceable(target);
  // A fresh name, created exclusively (not recursive), so nothing planted there in advance is written into.
  const fresh = `${parent}/.${name}.partial-${suffix()}`;
  await Deno.mkdir(fresh);
  try {
    await fill(fresh);
    // Checked again: the folder may have appeared or changed while the report was being drawn.
    if (await checkReplaceable(target)) {
      const old = `${parent}/.${name}.old-${suffix()}`;
      await Deno.rename(target, old);
      await Deno.rename(fresh, target);
      // A report started meanwhile may already have removed it as a leftover.
      await Deno.remove(old, { recursive: true }).catch(() => {});
    } else {
      await Deno.rename(fresh, target);
    }
  } catch (e) {
    if (!(e instanceof ReportFolderError) && (await statOrNull(fresh)) === null) {
      throw new ReportFolderError(`Another report was started into ${outDir} meanwhile; this one stopped`);
    }
    await Deno.remove(fresh, { recursive: true }).catch(() => {});
    throw e;
  }
}
