/**
 * Seeded, named pseudo-random streams and a stateless counter hash.
 *
 * Generator: xoshiro128** (Blackman & Vigna) seeded through splitmix32 from
 * (seed, stream name). Each purpose (initialisation, shuffling, dropout,
 * stochastic rounding) draws from its own named stream, so changing how many
 * numbers one purpose uses never shifts another. Only 32-bit integer
 * operations are used, so every engine and runtime produces the same bits.
 *
 * @module
 */

/** The name recorded in run records for this generator. */
export const RNG_NAME = "xoshiro128** seeded by splitmix32(seed, fnv1a(stream))";

/** FNV-1a hash of a string's UTF-16 code units, as an unsigned 32-bit integer. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** One splitmix32 output for state `x` (a pure function; used to seed and to hash counters). */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Stateless hash of up to four 32-bit words to a uniform float in [0, 1).
 * Used where a random value must be recomputable from its coordinates
 * (dropout masks in forward and backward, stochastic rounding).
 */
export function hashUniform(a: number, b: number, c: number, d: number): number {
  let h = mix32(a);
  h = mix32(h ^ b);
  h = mix32(h ^ c);
  h = mix32(h ^ d);
  return h / 4294967296;
}

/** A seeded xoshiro128** stream. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** Creates the stream named `stream` for `seed` (any integer, taken modulo 2^32). */
  constructor(seed: number, stream: string) {
    let x = mix32((seed >>> 0) ^ fnv1a(stream));
    const next = () => (x = mix32(x));
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** The stream's position: its four state words (what a checkpoint saves to continue the stream). */
  position(): [number, number, number, number] {
    return [this.#s0 >>> 0, this.#s1 >>> 0, this.#s2 >>> 0, this.#s3 >>> 0];
  }

  /** Moves the stream to a position {@linkcode position} returned (a checkpoint's), so it continues there. */
  seek(p: readonly [number, number, number, number]): void {
    if (
      p.length !== 4 || p.every((w) => w === 0) ||
      !p.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)
    ) {
      throw new RangeError(`Not a stream position: [${p}]`);
    }
    [this.#s0, this.#s1, this.#s2, this.#s3] = p.map((w) => w | 0);
  }

  /** Next unsigned 32-bit integer. */
  nextU32(): number {
    const s1 = this.#s1;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return r;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n) without modulo bias (n at most 2^32). */
  below(n: number): number {
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return v % n;
    }
  }

  /** A deterministic Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.below(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
