/**
 * The wasm kernels' four-wide conversions (kernels/wasm/as/simd.ts) give the bits of Deno's own fp16
 * conversions (Float16Array, round-to-nearest-even) and of lib/formats' bf16 rounding: fp16 -> f32 on all
 * 65536 patterns; f32 -> fp16 bits and f32 -> f32 rounded to fp16 on every f32 whose top 24 bits are any
 * pattern and whose low byte is one of the patterns that decide a rounding (zero, the lowest bit, just
 * below, at and above half of it, all ones), which covers every exponent, every tie and every rounding
 * boundary, subnormals, 65504, overflow, Infinity, NaN and -0; the same for the fused round-and-store
 * (value and bits) and the bounded rounding of the optimizer update.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Format, Map1 } from "../kernels/wasm/kernels_wasm.ts";
import { instantiateKernels } from "../kernels/wasm/mod.ts";
import { rounder } from "../lib/formats/format.ts";

const { k, arena } = instantiateKernels();
const { FP32, FP16, BF16 } = Format;
const CHUNK = 1 << 20;
const LOW_BYTES = [0x00, 0x01, 0x7f, 0x80, 0x81, 0xff];
const x = arena.alloc(4 * CHUNK), y = arena.alloc(4 * CHUNK);
const mem = () => arena.views; // views are renewed when the memory grows

/** Calls `check(inputs, count)` for every f32 pattern of the family above, CHUNK at a time, at `x`. */
function forEachPattern(check: (bits: Uint32Array, n: number) => void) {
  const tops = 1 << 24, perChunk = CHUNK / LOW_BYTES.length | 0;
  for (let t0 = 0; t0 < tops; t0 += perChunk) {
    const u32 = mem().u32, n = Math.min(perChunk, tops - t0) * LOW_BYTES.length;
    let i = x >> 2;
    for (let t = t0; t < t0 + n / LOW_BYTES.length; t++) {
      for (const low of LOW_BYTES) u32[i++] = ((t << 8) | low) >>> 0;
    }
    check(u32.subarray(x >> 2, (x >> 2) + n), n);
  }
}

const isNaN16 = (h: number) => (h & 0x7fff) > 0x7c00;
/** The same value, any NaN counting as equal to any NaN. */
const sameValue = (a: number, b: number) => Object.is(a, b) || (a !== a && b !== b);
/** Modes of the roundLanes test export (kernels/wasm/as/pointwise.ts). */
const ROUND = 0, ROUND_BOUNDED = 1, ROUND_STORE = 2;

Deno.test("wasm fp16 -> f32 (widen) gives Float16Array's values for all 65536 patterns", () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  mem().u16.set(all, x >> 1);
  k.widen(x, FP16, y, 65536);
  const want = new Float32Array(new Float16Array(all.buffer));
  const got = mem().f32.subarray(y >> 2, (y >> 2) + 65536);
  for (let h = 0; h < 65536; h++) {
    if (!Object.is(got[h], want[h]) && !(isNaN16(h) && got[h] !== got[h])) {
      assert.fail(`fp16 0x${h.toString(16)}: wasm ${got[h]}, Float16Array ${want[h]}`);
    }
  }
});

Deno.test("wasm f32 -> fp16 bits (cast) gives Float16Array's rounding at every exponent, tie and boundary", () => {
  forEachPattern((bits, n) => {
    const want = new Uint16Array(new Float16Array(new Float32Array(bits.slice().buffer)).buffer);
    k.map1(Map1.CAST, x, FP32, y, FP16, n, 0);
    const got = mem().u16.subarray(y >> 1, (y >> 1) + n);
    for (let i = 0; i < n; i++) {
      if (got[i] !== want[i] && !(isNaN16(got[i]) && isNaN16(want[i]))) {
        assert.fail(
          `f32 0x${bits[i].toString(16)}: wasm 0x${got[i].toString(16)}, Float16Array 0x${
            want[i].toString(16)
          }`,
        );
      }
    }
  });
});

Deno.test("wasm vector rounding of f32 to fp16 and bf16 gives the reference bits", () => {
  const bf16 = rounder("bf16");
  forEachPattern((bits, n) => {
    const f = new Float32Array(bits.slice().buffer);
    const wantFp16 = new Float32Array(new Float16Array(f));
    k.roundLanes(x, FP16, ROUND, y, 0, n);
    let got = mem().f32.subarray(y >> 2, (y >> 2) + n);
    for (let i = 0; i < n; i++) {
      if (!sameValue(got[i], wantFp16[i])) {
        assert.fail(
          `fp16 rounding of 0x${bits[i].toString(16)}: wasm ${got[i]}, Float16Array ${wantFp16[i]}`,
        );
      }
    }
    k.roundLanes(x, BF16, ROUND, y, 0, n);
    got = mem().f32.subarray(y >> 2, (y >> 2) + n);
    for (let i = 0; i < n; i += 7) { // bf16 is unchanged here and its scalar reference is slow: every 7th
      const want = Math.fround(bf16(f[i]));
      if (!sameValue(got[i], want)) {
        assert.fail(`bf16 rounding of 0x${bits[i].toString(16)}: wasm ${got[i]}, lib/formats ${want}`);
      }
    }
  });
});

Deno.test("wasm fused round-and-store and bounded rounding to fp16 give Float16Array's values and bits", () => {
  const z = arena.alloc(2 * CHUNK);
  forEachPattern((bits, n) => {
    const f = new Float32Array(bits.slice().buffer);
    const want = new Float16Array(f),
      wantBits = new Uint16Array(want.buffer),
      wantValue = new Float32Array(want);
    k.roundLanes(x, FP16, ROUND_STORE, y, z, n);
    const got = mem().f32.subarray(y >> 2, (y >> 2) + n), gotBits = mem().u16.subarray(z >> 1, (z >> 1) + n);
    for (let i = 0; i < n; i++) {
      const nan = wantValue[i] !== wantValue[i];
      if (
        !(nan
          ? got[i] !== got[i] && isNaN16(gotBits[i])
          : Object.is(got[i], wantValue[i]) && gotBits[i] === wantBits[i])
      ) {
        assert.fail(
          `round and store of f32 0x${bits[i].toString(16)}: wasm ${got[i]} (0x${
            gotBits[i].toString(16)
          }), ` +
            `Float16Array ${wantValue[i]} (0x${wantBits[i].toString(16)})`,
        );
      }
    }
    // The bounded rounding is for products of an fp16 value and a factor of magnitude at most 1.
    k.roundLanes(x, FP16, ROUND_BOUNDED, y, 0, n);
    const bounded = mem().f32.subarray(y >> 2, (y >> 2) + n);
    for (let i = 0; i < n; i++) {
      if (Math.abs(f[i]) > 65504 && Number.isFinite(f[i])) continue;
      if (!sameValue(bounded[i], wantValue[i])) {
        assert.fail(
          `bounded rounding of f32 0x${bits[i].toString(16)}: wasm ${bounded[i]}, Float16Array ${
            wantValue[i]
          }`,
        );
      }
    }
  });
});
