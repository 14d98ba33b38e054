/**
 * fp16 rounding in a hot loop: Math.f16round, a Float16Array store/load,
 * @petamoriken/float16's f16round and the generic bit-level rounder, with
 * Math.fround as the fp32 baseline. Run: deno task bench.
 */

import { f16round } from "@petamoriken/float16";
import { FORMATS, roundBf16, roundFp16, roundGeneric } from "../../lib/formats/format.ts";
import { Rng } from "../../lib/random.ts";

const N = 1 << 16;
const xs = new Float64Array(N);
const rng = new Rng(1, "bench");
for (let i = 0; i < N; i++) xs[i] = (rng.uniform() - 0.5) * 200;
const h = new Float16Array(1);
let sink = 0;

Deno.bench("fp32 Math.fround (baseline)", { group: "round", baseline: true }, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += Math.fround(xs[i]);
  sink += s;
});
Deno.bench("fp16 Float16Array store/load, inline", { group: "round" }, () => {
  let s = 0;
  for (let i = 0; i < N; i++) {
    h[0] = xs[i];
    s += h[0];
  }
  sink += s;
});
Deno.bench("fp16 roundFp16 (the project's rounder)", { group: "round" }, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += roundFp16(xs[i]);
  sink += s;
});
Deno.bench("fp16 Math.f16round", { group: "round" }, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += Math.f16round(xs[i]);
  sink += s;
});
Deno.bench("fp16 @petamoriken/float16 f16round", { group: "round" }, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += f16round(xs[i]);
  sink += s;
});
Deno.bench("bf16 roundBf16 (round-to-odd via fp32, the project's rounder)", { group: "round" }, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += roundBf16(xs[i]);
  sink += s;
});
Deno.bench("fp16 roundGeneric (bit-level reference)", { group: "round" }, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += roundGeneric(FORMATS.fp16, xs[i]);
  sink += s;
});

globalThis.addEventListener("unload", () => {
  if (sink === 42) console.log(sink);
});
