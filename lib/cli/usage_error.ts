/**
 * Errors caused by the user's input (bad flags, unknown names, bad values).
 * The CLI prints their message on one line and exits with code 2, without a
 * stack trace.
 *
 * @module
 */

/** A user mistake on the command line. */
export class UsageError extends Error {}

/** Runs `f` (a flag parser, a name lookup), turning any error it throws into a one-line {@linkcode UsageError}. */
export function asUsageError<R>(f: () => R): R {
  try {
    return f();
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
}

/** Parses a positive integer flag or throws a {@linkcode UsageError} naming the flag. */
export function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`--${flag} must be a positive integer, got "${v}"`);
  }
  return n;
}

/** Parses a finite number flag within [min, max) (max exclusive when given). */
export function finiteNumber(
  flag: string,
  v: string,
  min: number,
  max = Infinity,
  minInclusive = true,
): number {
  const n = Number(v);
  const ok = v.trim() !== "" && Number.isFinite(n) && (minInclusive ? n >= min : n > min) && n < max;
  if (!ok) {
    const range = `${minInclusive ? "at least" : "greater than"} ${min}${
      max < Infinity ? ` and below ${max}` : ""
    }`;
    throw new UsageError(`--${flag} must be a number ${range}, got "${v}"`);
  }
  return n;
}

/** Parses a comma-separated list of seeds: integers from 0 to 2^32 - 1. */
export function seedList(flag: string, v: string): number[] {
  return v.split(",").map((p) => {
    const n = Number(p);
    if (!/^\s*\d+\s*$/.test(p) || !Number.isSafeInteger(n) || n >= 2 ** 32) {
      throw new UsageError(`--${flag} must list integers from 0 to 4294967295, got "${p}"`);
    }
    return n;
  });
}

/** Parses a comma-separated list of positive integers (e.g. --hidden 512,256). */
export function intList(flag: string, v: string): number[] {
  return v.split(",").map((p) => positiveInt(flag, p));
}
