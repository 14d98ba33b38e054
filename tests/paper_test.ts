/** The transcribed Table 5 agrees with the summary the paper prints (so a typo in transcription shows). */

import assert from "node:assert/strict";
import { PRINTED_MEANS, TABLE5, tableMeans } from "../reports/paper.ts";

Deno.test("Table 5 transcription reproduces the printed means", () => {
  assert.equal(TABLE5.length, 12);
  const m = tableMeans();
  assert.equal(m.fp16MinusFp32.toFixed(1), PRINTED_MEANS.fp16MinusFp32.toFixed(1));
  assert.equal(m.fp16MinusMixed.toFixed(1), PRINTED_MEANS.fp16MinusMixed.toFixed(1));
  assert.equal(m.fp32OverFp16.toFixed(1), PRINTED_MEANS.fp32OverFp16.toFixed(1));
  assert.equal(m.mixedOverFp16.toFixed(1), PRINTED_MEANS.mixedOverFp16.toFixed(1));
});

Deno.test("ViT-12 FP16-MP difference computes to -0.4 (the paper prints -0.004)", () => {
  const v = TABLE5.find((r) => r.model === "ViT-12")!;
  assert.equal((v.acc.fp16[0] - v.acc.mixed[0]).toFixed(1), "-0.4");
});
