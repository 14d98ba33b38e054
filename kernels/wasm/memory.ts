/**
 * The wasm engine's shared linear memory: a bump arena for buffers, and tensor transfer between host
 * arrays and the 16- or 32-bit storage of each format.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { TensorData } from "../engine.ts";
import { Format } from "./kernels_wasm.ts";

/** The kernels' format code of each storage format. */
export const FORMAT_CODE: Readonly<Partial<Record<FormatName, number>>> = {
  fp32: Format.FP32,
  fp16: Format.FP16,
  bf16: Format.BF16,
};

/**
 * The index, in a typed view of the engine's memory whose elements are `bytes` wide, of the element at byte
 * `address`. Addresses run to 4 GiB (wasm32), past the int32 range: an unsigned shift keeps those above
 * 2 GiB positive, where a signed one (`>>`) would turn them negative.
 */
export function elementIndex(address: number, bytes: 1 | 2 | 4 | 8): number {
  return address >>> (31 - Math.clz32(bytes));
}

const PAGE = 65536;

/**
 * Bytes of memory kept past the last buffer, so that a kernel's vector load that starts inside a buffer and
 * runs past its end (lanes it then masks: the gathers of kernels/wasm/as/window.ts, the depthwise kernels)
 * stays inside the memory. Loads that start a few values before a buffer stay inside the memory too: the engine's
 * first buffers are its tables (kernels/wasm/mod.ts).
 */
export const SLACK = 64;

const BF16_BITS = new Uint32Array(1), BF16_VALUE = new Float32Array(BF16_BITS.buffer);

/** Bump allocation over a growable shared WebAssembly.Memory. Buffers live as long as the engine. */
export class Arena {
  readonly memory: WebAssembly.Memory;
  #top: number;
  #views?: {
    buffer: ArrayBufferLike;
    u8: Uint8Array;
    f32: Float32Array;
    f16: Float16Array;
    u16: Uint16Array;
    u32: Uint32Array;
    f64: Float64Array;
    i32: Int32Array;
  };

  /** An arena that allocates above `base` (the module's static data). */
  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    this.#top = Math.ceil(base / 64) * 64;
  }

  /** Reserves `bytes` (64-byte aligned) and returns the address; grows the memory when needed. */
  alloc(bytes: number): number {
    const at = this.#top;
    const end = at + Math.ceil(Math.max(bytes, 1) / 64) * 64;
    if (end + SLACK > 2 ** 32) {
      throw new RangeError(`The wasm engine needs ${(end / 2 ** 30).toFixed(1)} GiB, above wasm32's 4 GiB`);
    }
    const have = this.memory.buffer.byteLength;
    if (end + SLACK > have) this.memory.grow(Math.ceil((end + SLACK - have) / PAGE));
    this.#top = end;
    return at;
  }

  /** Bytes in use. */
  get used(): number {
    return this.#top;
  }

  /** Typed views of the current memory (renewed after the memory grows). */
  get views() {
    const buffer = this.memory.buffer;
    if (this.#views?.buffer !== buffer) {
      this.#views = {
        buffer,
        u8: new Uint8Array(buffer),
        f32: new Float32Array(buffer),
        f16: new Float16Array(buffer),
        u16: new Uint16Array(buffer),
        u32: new Uint32Array(buffer),
        f64: new Float64Array(buffer),
        i32: new Int32Array(buffer),
      };
    }
    return this.#views;
  }

  /** Writes `data` (values exact in `format`) at `ptr` in the format's storage. */
  write(ptr: number, format: FormatName, data: TensorData): void {
    const v = this.views;
    if (format === "fp32") v.f32.set(data, elementIndex(ptr, 4));
    else if (format === "fp16") v.f16.set(data, elementIndex(ptr, 2));
    else {
      const f = new Float32Array(data), u = new Uint32Array(f.buffer), at = elementIndex(ptr, 2);
      for (let i = 0; i < u.length; i++) v.u16[at + i] = u[i] >>> 16;
    }
  }

  /** Reads `n` elements of `format` at `ptr`. */
  read(ptr: number, format: FormatName, n: number): TensorData {
    const v = this.views;
    if (format === "fp32") return v.f32.slice(elementIndex(ptr, 4), elementIndex(ptr, 4) + n);
    const at = elementIndex(ptr, 2);
    if (format === "fp16") return Float64Array.from(v.f16.subarray(at, at + n));
    const u = new Uint32Array(n);
    for (let i = 0; i < n; i++) u[i] = v.u16[at + i] << 16;
    return new Float32Array(u.buffer);
  }

  /** Element 0 of a tensor, as a number. */
  scalar(ptr: number, format: FormatName): number {
    const v = this.views;
    if (format === "fp32") return v.f32[elementIndex(ptr, 4)];
    if (format === "fp16") return v.f16[elementIndex(ptr, 2)];
    BF16_BITS[0] = v.u16[elementIndex(ptr, 2)] << 16;
    return BF16_VALUE[0];
  }
}
