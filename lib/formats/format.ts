/**
 * Number formats and their exact IEEE round-to-nearest-even rounding.
 *
 * Every tensor value in f16repro is held as a JavaScript number (a
 * Float64Array or Float32Array element) that is exactly representable in the
 * tensor's format. fp64 exists for the ref engine's float64 checks
 * (finite-difference gradients, error measurements), not for training. Rounding always starts from the exact (float64) result of an
 * operation and rounds once, so there is no double rounding through fp32.
 *
 * @module
 */

/** Names of the supported storage/compute formats. */
export type FormatName = "fp64" | "fp32" | "fp16" | "bf16";

/** Static description of a binary floating-point format. */
export interface Format {
  /** Short name used in policies, run records and the CLI. */
  readonly name: FormatName;
  /** Storage size of one element in bytes. */
  readonly bytes: number;
  /** Significand precision in bits, including the implicit leading bit. */
  readonly precision: number;
  /** Exponent of the smallest normal number (2^emin). */
  readonly emin: number;
  /** Largest finite value. */
  readonly maxFinite: number;
}

/** All formats by name. */
export const FORMATS: Readonly<Record<FormatName, Format>> = {
  fp64: { name: "fp64", bytes: 8, precision: 53, emin: -1022, maxFinite: Number.MAX_VALUE },
  fp32: { name: "fp32", bytes: 4, precision: 24, emin: -126, maxFinite: (2 - 2 ** -23) * 2 ** 127 },
  fp16: { name: "fp16", bytes: 2, precision: 11, emin: -14, maxFinite: 65504 },
  bf16: { name: "bf16", bytes: 2, precision: 8, emin: -126, maxFinite: (2 - 2 ** -7) * 2 ** 127 },
};

/** The list of format names, in a stable order. */
export const FORMAT_NAMES: readonly FormatName[] = ["fp64", "fp32", "fp16", "bf16"];

/** Returns the format with this name, or throws an error that lists the valid names. */
export function formatByName(name: string): Format {
  if (Object.hasOwn(FORMATS, name)) return FORMATS[name as FormatName];
  throw new RangeError(`Unknown format "${name}": expected one of ${FORMAT_NAMES.join(", ")}`);
}

// Scratch views for bit access. The project assumes a little-endian host
// (every platform Deno ships for); checked once here so a big-endian host
// fails loudly instead of rounding wrongly.
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
f64[0] = 1;
if (u32[1] !== 0x3ff00000) throw new Error("f16repro needs a little-endian host");

/** 2^k for integer k in [-1022, 1023], built from bits so it is exact on every runtime. */
export function pow2(k: number): number {
  u32[0] = 0;
  u32[1] = (k + 1023) << 20;
  return f64[0];
}

/** floor(log2(|x|)) for a finite non-zero normal float64 `x`, read from its exponent bits. */
function exponentOf(x: number): number {
  f64[0] = x;
  return ((u32[1] >>> 20) & 0x7ff) - 1023;
}

/**
 * Rounds `x` to the format `f`, round-to-nearest-even, with subnormals,
 * overflow to +-Infinity, NaN and -0 kept. When `u` (uniform in [0, 1)) is
 * given, rounds stochastically instead: up with probability equal to the
 * distance from the lower neighbour in ulps.
 *
 * This generic path works for any binary format; hot loops use
 * {@linkcode rounder}, which picks faster exact equivalents for fp32 and fp16.
 */
export function roundGeneric(f: Format, x: number, u?: number): number {
  if (x !== x || x === 0 || x === Infinity || x === -Infinity || f.precision >= 53) return x; // fp64 is exact
  const a = x < 0 ? -x : x;
  let e = exponentOf(a);
  if (e < f.emin) e = f.emin; // subnormal range: fixed quantum 2^(emin-p+1)
  const q = pow2(e - f.precision + 1);
  const y = a / q; // exact: division by a power of two
  let n = Math.floor(y);
  const d = y - n;
  if (u === undefined) {
    if (d > 0.5 || (d === 0.5 && n % 2 === 1)) n += 1;
  } else if (u < d) {
    n += 1;
  }
  let r = n * q;
  if (r > f.maxFinite) r = Infinity;
  return x < 0 ? -r : r;
}

const h16 = new Float16Array(1);

/** Exact fp16 round-to-nearest-even through a Float16Array store (the fastest exact way in V8, see README). */
export function roundFp16(x: number): number {
  h16[0] = x;
  return h16[0];
}

const f32 = new Float32Array(1);
const f32bits = new Uint32Array(f32.buffer);

/**
 * Exact bf16 round-to-nearest-even. Rounding float64 -> fp32 -> bf16 with
 * nearest-even twice could round wrongly at ties, so the first step rounds to
 * odd instead (truncate, then set the last bit when inexact); fp32 keeps 16
 * more bits than bf16, which makes the second, nearest-even step exact.
 */
export function roundBf16(x: number): number {
  f32[0] = x;
  const f = f32[0];
  if (f !== f) return x;
  let b = f32bits[0];
  if (f !== x && f - f === 0) {
    if (Math.abs(f) > Math.abs(x)) b -= 1; // step the magnitude back toward zero: truncation
    b |= 1; // sticky bit: round-to-odd
  }
  f32bits[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return f32[0];
}

/** A function that rounds a number to one format. */
export type Rounder = (x: number) => number;

const ROUNDERS: Readonly<Record<FormatName, Rounder>> = {
  fp64: (x) => x,
  fp32: Math.fround,
  fp16: roundFp16,
  bf16: roundBf16,
};

/** The fastest exact round-to-nearest-even function for a format. */
export function rounder(f: Format | FormatName): Rounder {
  return ROUNDERS[typeof f === "string" ? f : f.name];
}

/** Rounds every element of `data` to format `f` in place and returns it. */
export function roundArray<T extends Float32Array | Float64Array>(f: Format | FormatName, data: T): T {
  const r = rounder(f);
  for (let i = 0; i < data.length; i++) data[i] = r(data[i]);
  return data;
}

/** True when `x` is exactly representable in format `f` (NaN and +-Infinity count as representable). */
export function isRepresentable(f: Format | FormatName, x: number): boolean {
  const y = rounder(f)(x);
  return Object.is(y, x) || (x !== x && y !== y);
}
