/**
 * The one strict parser of the command line: flags, numbers and lists. Every
 * command reads its arguments through {@linkcode parseFlags} and its values
 * through the functions here, so a value means the same in every command:
 *
 * - a flag's value is never empty and never starts or ends with white space
 *   (`--out ""`, `--precision " fp16"` are refused, not read as a default or
 *   as another name);
 * - an integer is decimal digits only (no `0x10`, `1e3`, `1.5`, `+3`);
 * - a number is a plain decimal with an optional exponent (no hex, `Infinity`,
 *   `NaN`, `1_000`);
 * - a list is comma-separated values, none of them empty (`--seeds ""`,
 *   `--seeds 1,,2` are refused);
 * - a negative value after a flag (`--seeds -1`) reaches validation and gets
 *   its own message instead of the parser's "argument is ambiguous".
 *
 * Each refusal is a {@linkcode UsageError} naming the flag and the value.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";

/** Options in node:util parseArgs form. */
export type FlagOptions = Record<
  string,
  { type: "string" | "boolean"; short?: string; default?: string | boolean; multiple?: boolean }
>;

/**
 * Joins `--flag -3` (and `-f -3`) into one argument when `--flag` takes a value, so a negative number reaches
 * validation instead of making node:util's parser stop with "argument is ambiguous".
 */
export function joinNegativeValues(args: readonly string[], options: FlagOptions): string[] {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== "string") continue;
    takesValue.add(`--${name}`);
    if (o.short) takesValue.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i], next = args[i + 1];
    if (takesValue.has(a) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(a.startsWith("--") ? `${a}=${next}` : `${a}${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** A value that a flag or an argument may hold: not empty, no white space around it. */
function checkText(what: string, v: string): void {
  if (v === "") throw new UsageError(`${what} needs a value, got ""`);
  if (v.trim() !== v) throw new UsageError(`${what} must not start or end with white space, got "${v}"`);
}

/**
 * Parses `args` against `options` (node:util parseArgs, strict) and checks every string value and positional
 * with the rules of this module. Throws a one-line {@linkcode UsageError}.
 */
export function parseFlags<O extends FlagOptions>(
  args: readonly string[],
  options: O,
  allowPositionals = false,
) {
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeValues(args, options), options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
  for (const [name, v] of Object.entries(parsed.values)) {
    for (const one of Array.isArray(v) ? v : [v]) if (typeof one === "string") checkText(`--${name}`, one);
  }
  for (const p of parsed.positionals) checkText("An argument", p);
  return parsed;
}

const INTEGER = /^\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parses a decimal integer flag value within [min, max]; the message names the flag and the range. */
export function integer(flag: string, v: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = INTEGER.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) {
    const range = min === 1 && max === Number.MAX_SAFE_INTEGER
      ? "a positive integer"
      : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${flag} must be ${range}, got "${v}"`);
  }
  return n;
}

/** Parses a positive integer flag value. */
export function positiveInt(flag: string, v: string): number {
  return integer(flag, v, 1);
}

/** Range of {@linkcode decimal}: a lower bound (inclusive unless `above`), an exclusive upper bound. */
export interface Range {
  readonly min: number;
  readonly above?: boolean;
  readonly below?: number;
}

/** Parses a plain decimal number (optional exponent) within `r`. */
export function decimal(flag: string, v: string, r: Range): number {
  const n = DECIMAL.test(v) ? Number(v) : NaN;
  const max = r.below ?? Infinity;
  if (!(Number.isFinite(n) && (r.above ? n > r.min : n >= r.min) && n < max)) {
    const range = `${r.above ? "greater than" : "at least"} ${r.min}${
      max < Infinity ? ` and below ${max}` : ""
    }`;
    throw new UsageError(`--${flag} must be a number ${range}, got "${v}"`);
  }
  return n;
}

/** Splits a comma-separated list and parses each item; an empty list or item is refused. */
export function list<T>(flag: string, v: string, item: (s: string) => T, unique = false): T[] {
  const parts = v.split(",");
  if (parts.some((p) => p === "")) throw new UsageError(`--${flag} has an empty item in "${v}"`);
  const items = parts.map(item);
  if (unique) {
    const dup = parts.find((p, i) => parts.indexOf(p) !== i);
    if (dup !== undefined) throw new UsageError(`--${flag} lists ${dup} twice`);
  }
  return items;
}

/** The largest seed. */
export const MAX_SEED = 2 ** 32 - 1;

/** Parses one seed: an integer from 0 to 2^32 - 1. */
export function seed(flag: string, v: string): number {
  return integer(flag, v, 0, MAX_SEED);
}

/** Parses a comma-separated list of distinct seeds. */
export function seedList(flag: string, v: string): number[] {
  return list(flag, v, (s) => seed(flag, s), true);
}

/** Parses a comma-separated list of positive integers (e.g. --hidden 512,256). */
export function intList(flag: string, v: string): number[] {
  return list(flag, v, (s) => positiveInt(flag, s));
}
