/**
 * The webgpu engine beyond the conformance suite: its integer rounding to fp16 and bf16 gives lib/formats'
 * bits on the hard cases, both matmul kernels (tiled, and one thread per output) give ref's bits on odd
 * shapes, and `train --engine webgpu` repeats its weight hash in two fresh processes and ends within one
 * point of wasm's test accuracy. Needs a WebGPU adapter: on a machine without a GPU, Mesa's lavapipe
 * (Debian package mesa-vulkan-drivers, which .ci/run installs); without one these tests fail, saying so.
 */

import assert from "node:assert/strict";
import { runCli, TRAIN_PERMS } from "./support/cli.ts";
import type { HostTensor } from "../kernels/engine.ts";
import { runGraph } from "../kernels/ref/mod.ts";
import { compileGraph } from "../kernels/webgpu/compile.ts";
import { acquireGpu } from "../kernels/webgpu/device.ts";
import { createEngine } from "../kernels/webgpu/mod.ts";
import { type FormatName, rounder } from "../lib/formats/format.ts";
import { Graph } from "../lib/graph/graph.ts";

/** Values that exercise every branch of the roundings: ties, subnormals, overflow, NaN, signed zeros. */
function hardValues(): Float32Array {
  const v: number[] = [0, -0, NaN, Infinity, -Infinity, 65504, 65505, 65519, 65520, -65520, 1e-30, -1e-30];
  for (let e = -27; e <= 17; e++) {
    for (const m of [1, 1 + 2 ** -11, 1 + 2 ** -10 + 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -9, 1.5, 1.999]) {
      v.push(m * 2 ** e, -m * 2 ** e);
    }
  }
  // fp16's subnormal ties at 2^-25 (to 0) and 3 * 2^-25 (to 2^-23), the largest f32 and the smallest subnormal.
  v.push(2 ** -25, 3 * 2 ** -25, 2 ** -25 + 2 ** -40, 3.4028234663852886e38, 2 ** -149);
  for (let i = 0; i < 2000; i++) v.push(Math.sin(i * 12.9898) * 2 ** ((i % 60) - 30));
  return Float32Array.from(v);
}

const sameBits = (a: number, b: number) => Object.is(a, b) || (a !== a && b !== b);

function assertBits(got: ArrayLike<number>, want: ArrayLike<number>, what: string) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    if (!sameBits(got[i], want[i])) assert.fail(`${what}: element ${i}: ref ${want[i]}, webgpu ${got[i]}`);
  }
}

Deno.test("webgpu: casts to fp16 and bf16 round to nearest even exactly as lib/formats does", async () => {
  const engine = await createEngine();
  try {
    const x = hardValues(), g = new Graph();
    const leaf = g.leaf("input", "x", [x.length], { format: "fp32" });
    for (const f of ["fp16", "bf16"] as FormatName[]) {
      const y = g.add("cast", [leaf], {}, { format: f });
      g.outputs[f] = g.add("cast", [y], {}, { format: "fp32" });
    }
    const out = await engine.compile(g).run({ x: { shape: [x.length], format: "fp32", data: x } });
    for (const f of ["fp16", "bf16"] as FormatName[]) {
      assertBits(out[f].data, Float64Array.from(x, rounder(f)), `cast to ${f}`);
    }
  } finally {
    engine.close?.();
  }
});

Deno.test("webgpu: tiled and per-output matmul give ref's bits on odd shapes, batched, transposed", async () => {
  const gpu = await acquireGpu();
  try {
    const engine = await createEngine();
    engine.close?.();
    const cases: [FormatName, FormatName][] = [["fp32", "fp32"], ["fp16", "fp32"], ["fp16", "fp16"], [
      "bf16",
      "bf16",
    ]];
    for (const [format, acc] of cases) {
      const g = new Graph(), feeds: Record<string, HostTensor> = {};
      g.accumulate = acc;
      const leaf = (name: string, shape: number[]) => {
        const n = shape.reduce((p, d) => p * d, 1);
        const data = Float64Array.from({ length: n }, (_, i) => rounder(format)(Math.sin(i * 1.3 + n) * 3));
        feeds[name] = { shape, format, data };
        return g.leaf("input", name, shape, { format });
      };
      const a = leaf("a", [2, 19, 37]), b = leaf("b", [2, 37, 21]), at = leaf("at", [2, 37, 19]);
      const bt = leaf("bt", [2, 21, 37]);
      g.outputs.ab = g.add("matmul", [a, b], {}, { format });
      g.outputs.atb = g.add("matmul", [at, b], { transA: true }, { format });
      g.outputs.abt = g.add("matmul", [a, bt], { transB: true }, { format });
      g.outputs.atbt = g.add("matmul", [at, bt], { transA: true, transB: true }, { format });
      const want = runGraph(g, feeds);
      for (const cpu of [false, true]) {
        const got = await compileGraph(g, { engine, gpu: { ...gpu, cpu } }).run(feeds);
        for (const k of Object.keys(g.outputs)) {
          assertBits(got[k].data, want[k].data, `${cpu ? "per-output" : "tiled"} ${k} ${format}/${acc}`);
        }
      }
    }
  } finally {
    gpu.device.destroy();
  }
});

Deno.test("webgpu: train repeats its weight hash in two processes and ends within a point of wasm", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = async (engine: string, k: number) => {
      const r = await runCli(
        [
          "train",
          ...["--engine", engine, "--dataset", "synthetic", "--model", "mlp", "--hidden", "32"],
          ...["--precision", "fp16", "--epochs", "2", "--train-limit", "2000", "--test-limit", "200"],
          ...["--batch", "50", "--out", `${dir}/${engine}${k}`, "--json", "--quiet"],
        ],
        TRAIN_PERMS,
      );
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { weightHash: string; testAccuracy: number };
    };
    const [a, b, wasm] = [await run("webgpu", 0), await run("webgpu", 1), await run("wasm", 0)];
    assert.equal(b.weightHash, a.weightHash, "two webgpu runs");
    // Synthetic data that the MLP learns to about 92% in two epochs: a one-point gap is two test samples.
    assert.ok(wasm.testAccuracy > 0.8, `wasm's accuracy ${wasm.testAccuracy}: the comparison needs learning`);
    assert.ok(
      Math.abs(a.testAccuracy - wasm.testAccuracy) <= 0.01,
      `webgpu ${a.testAccuracy}, wasm ${wasm.testAccuracy}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
