/**
 * A tensor's stored bytes: the one definition of how a value array sits in memory and on disk in its own
 * format (fp16 as IEEE half, bf16 as the top 16 bits of each float32, fp32 and fp64 as themselves,
 * little-endian). Weight files, weight hashes and the ort engine's initializers all use it.
 *
 * @module
 */

import type { FormatName } from "./format.ts";

/** The stored bytes of `data`, whose values are exact in `format`. */
export function storedBytes(
  t: { readonly format: FormatName; readonly data: ArrayLike<number> },
): Uint8Array {
  if (t.format === "fp64") return new Uint8Array(Float64Array.from(t.data).buffer);
  if (t.format === "fp16") return new Uint8Array(Float16Array.from(t.data).buffer);
  const f32 = Float32Array.from(t.data);
  if (t.format === "fp32") return new Uint8Array(f32.buffer);
  const words = new Uint32Array(f32.buffer), half = new Uint16Array(words.length);
  for (let i = 0; i < words.length; i++) half[i] = words[i] >>> 16; // exact: the values are bf16 already
  return new Uint8Array(half.buffer);
}
