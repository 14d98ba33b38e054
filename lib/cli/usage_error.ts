/**
 * The line between a user's situation and a bug. A user's situation (a bad
 * flag, a missing file, a full disk, a read-only folder) is printed as one
 * line and gives a non-zero exit code; anything else is an internal bug and
 * keeps its stack trace. {@linkcode userMessage} is the one place that
 * decides which is which.
 *
 * @module
 */

import { DatasetError } from "../../datasets/gzip.ts";
import { UsageError, UserError } from "../errors.ts";

/** Runs `f` (a flag parser, a name lookup), turning any error it throws into a one-line {@linkcode UsageError}. */
export function asUsageError<R>(f: () => R): R {
  try {
    return f();
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
}

/**
 * Error codes of the operating system that describe the user's files and disks, not the program: the path
 * is missing, is of the wrong kind, is not writable, or the disk is full.
 */
const SITUATION_CODES: ReadonlySet<string> = new Set([
  "ENOENT",
  "ENOTDIR",
  "EISDIR",
  "EEXIST",
  "EACCES",
  "EPERM",
  "EROFS",
  "ENOSPC",
  "EDQUOT",
  "EFBIG",
  "ELOOP",
  "ENAMETOOLONG",
]);

/** The OS error code of an error from a file operation (`ENOSPC`, ...), if it has one. */
export function osCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The first line of an error's message. */
export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * The one-line message and exit code for an error that is a user's situation, or undefined for an internal
 * bug (which must keep its stack trace).
 */
export function userMessage(e: unknown): { message: string; exitCode: number } | undefined {
  if (e instanceof UserError) return { message: firstLine(e), exitCode: e.exitCode };
  // Dataset errors name the file and every mirror's failure; their lines are kept.
  if (e instanceof DatasetError) return { message: e.message, exitCode: 1 };
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return { message: firstLine(e), exitCode: 1 };
  }
  const code = osCode(e);
  if (code && SITUATION_CODES.has(code)) return { message: firstLine(e), exitCode: 1 };
  return undefined;
}
