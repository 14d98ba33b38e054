/**
 * The parts of `deno task bench:zoo` that decide what its figures mean, without timing anything: the flop
 * count of a step graph against a hand count, per-round ratios, and the refusal of bad flags (one line,
 * exit code 2).
 */

import assert from "node:assert/strict";
import { backward } from "../lib/graph/autodiff.ts";
import { Graph } from "../lib/graph/graph.ts";
import { UsageError } from "../lib/errors.ts";
import { nodeFlops, stepFlops } from "./bench/step_flops.ts";
import { median } from "./bench/timing.ts";
import { parseZooArgs, ZOO_MODELS } from "./bench/zoo_args.ts";
import { type Group, peerMismatches, roundRatio, zooTables } from "./bench/zoo_tables.ts";

/** conv 3->4 (3x3, valid) on [2, 3, 5, 5], flatten, dense 36->5, softmax cross-entropy; grads of `wrt`. */
function tinyStep(dataNeedsGrad: boolean): Graph {
  const g = new Graph();
  const x = dataNeedsGrad ? g.leaf("param", "x", [2, 3, 5, 5]) : g.leaf("input", "x", [2, 3, 5, 5]);
  const w = g.leaf("param", "w", [4, 3, 3, 3]), d = g.leaf("param", "d", [36, 5]);
  const labels = g.leaf("input", "labels", [2]);
  const c = g.add("conv2d", [x, w], { stride: [1, 1], pads: [0, 0, 0, 0], groups: 1 }); // [2, 4, 3, 3]
  const logits = g.add("matmul", [g.add("reshape", [c], { shape: [2, 36] }), d]);
  const loss = g.add("softmax_xent", [logits, labels]);
  const grads = backward(g, loss, g.leaf("input", "seed", []), g.leaves("param").map((p) => p.id));
  for (const [p, gr] of grads) g.outputs[`grad_${p}`] = gr;
  return g;
}

Deno.test("stepFlops counts a tiny step's matmuls and convolutions as by hand", () => {
  // conv: 2*4*3*3 = 72 outputs x 27 multiply-adds, forward and weight gradient: 2 x 2 x 1944 flops.
  // dense: 2x36 by 36x5 = 360 multiply-adds, forward, input gradient and weight gradient: 3 x 2 x 360.
  const byHand = 2 * 2 * 72 * 27 + 3 * 2 * 360;
  assert.deepEqual(stepFlops(tinyStep(false)), { total: byHand, forward: 2 * 72 * 27 + 2 * 360 });
  // The data's gradient is dead (nothing reads it), so it is not counted; when it is needed, it is.
  assert.equal(stepFlops(tinyStep(true)).total, byHand + 2 * 72 * 27);
});

Deno.test("nodeFlops of a strided depthwise conv and a batched transposed matmul", () => {
  const g = new Graph();
  const x = g.leaf("input", "x", [1, 4, 6, 6]), w = g.leaf("param", "w", [4, 1, 3, 3]);
  // Output 3x3 per channel (6 + 1 pad, window 3, stride 2), 9 multiply-adds each.
  const c = g.add("conv2d", [x, w], { stride: [2, 2], pads: [0, 0, 1, 1], groups: 4 });
  assert.deepEqual(g.node(c).shape, [1, 4, 3, 3]);
  assert.equal(nodeFlops(g, g.node(c)), 2 * 36 * 9);
  const a = g.leaf("input", "a", [2, 3, 4]), b = g.leaf("input", "b", [2, 5, 4]);
  const m = g.add("matmul", [a, b], { transB: true }); // [2, 3, 5], inner size 4
  assert.equal(nodeFlops(g, g.node(m)), 2 * 30 * 4);
  const t = g.add("matmul", [a, g.leaf("input", "e", [2, 3, 7])], { transA: true }); // [2, 4, 7], inner 3
  assert.equal(nodeFlops(g, g.node(t)), 2 * 56 * 3);
  assert.equal(nodeFlops(g, g.node(g.add("relu", [x]))), 0);
});

Deno.test("ratios to the peer are taken round by round, then the median", () => {
  // Both sides slow down in round 2: the per-round ratios stay 0.5, where medians of each side would not.
  const ours = { rounds: [10, 40, 12], peakKiB: 0 }, peer = { rounds: [5, 20, 6], peakKiB: 0 };
  assert.equal(roundRatio(peer, ours), 0.5);
  // A round that one side missed is left out.
  const missed = { rounds: [5, undefined, 6, 3], peakKiB: 0 };
  assert.equal(roundRatio(missed, { rounds: [10, 40, 24, 12], peakKiB: 0 }), 0.25);
});

Deno.test("a peer whose parameters or forward flops differ from ours is flagged", () => {
  const group = (params: number, forwardFlops: number): Group => ({
    model: "resnet32",
    batch: 8,
    threads: 1,
    configs: [{ engine: "ort", policy: "fp32", rounds: [1], peakKiB: 0, params: 100, forwardFlops: 5000 }],
    peer: { rounds: [1], peakKiB: 0, params, forwardFlops },
  });
  assert.deepEqual(peerMismatches({ groups: [group(100, 5000)] }), []);
  assert.deepEqual(peerMismatches({ groups: [group(99, 5000)] }), [
    "PARAMETER COUNT MISMATCH: resnet32 has 100 parameters here, 99 in PyTorch",
  ]);
  assert.deepEqual(peerMismatches({ groups: [group(100, 4000)] }), [
    "FLOP COUNT MISMATCH: the forward pass of resnet32 at batch 8 is 5000 flops here, 4000 in PyTorch",
  ]);
});

Deno.test("bench:zoo flags: defaults and cuts", () => {
  const d = parseZooArgs([]);
  assert.ok(d !== "help");
  assert.deepEqual(d.batches, [128, 256]);
  assert.deepEqual(d.threads, [1, 2]);
  assert.deepEqual(d.policies, ["fp32", "fp16", "mixed"]);
  assert.deepEqual(d.engines, ["ort", "wasm"]);
  assert.equal(ZOO_MODELS.length, 12);
  assert.deepEqual(d.models, ZOO_MODELS);
  const o = parseZooArgs(["--models", "resnet32,vit8", "--batch", "8", "--rounds", "1", "--no-peer"]);
  assert.ok(o !== "help");
  assert.deepEqual([o.models, o.batches, o.rounds, o.peer], [["resnet32", "vit8"], [8], 1, false]);
  assert.equal(parseZooArgs(["--help"]), "help");
});

Deno.test("bench:zoo flags: each bad one is refused, naming the flag", () => {
  const bad: [string[], RegExp][] = [
    [["--bogus"], /bogus/],
    [["--batch", "0"], /--batch/],
    [["--batch", "8,8"], /--batch lists 8 twice/],
    [["--threads", "two"], /--threads/],
    [["--rounds", "-1"], /--rounds/],
    [["--steps", "1.5"], /--steps/],
    [["--models", "mlp"], /--models has an unknown "mlp"/],
    [["--engines", "gpu"], /--engines: Unknown engine "gpu"/],
    [["--policies", "fp8"], /--policies/],
    [["--json", ""], /--json/],
  ];
  for (const [args, message] of bad) {
    assert.throws(
      () => parseZooArgs(args),
      (e) => e instanceof UsageError && message.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("bench:zoo: a bad flag is one line on stderr and exit code 2", async () => {
  const zoo = new URL("./bench/zoo.ts", import.meta.url).pathname;
  const cases: [string[], string][] = [
    [["--batch", "0"], 'bench:zoo: --batch must be a positive integer, got "0"'],
    // Checked before any measurement, so hours of them never end in a path that cannot be written.
    [
      ["--json", "/nonexistent-f16repro/zoo.json"],
      "bench:zoo: --json /nonexistent-f16repro/zoo.json: the " +
      "folder /nonexistent-f16repro does not exist",
    ],
  ];
  for (const [args, line] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", zoo, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.equal(new TextDecoder().decode(out.stderr).trim(), line);
    assert.equal(new TextDecoder().decode(out.stdout), "");
  }
});

Deno.test("median: the middle value of an odd count, the mean of the two middle values of an even one", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("the gemm table gives the wasm gemm's 2-thread speed-up beside onnxruntime's on the same machine", () => {
  const gemm = (engine: string, threads: number, gflops: number) => ({ engine, what: "", threads, gflops });
  const text = zooTables({
    header: {},
    gemms: [gemm("wasm", 1, 10), gemm("wasm", 2, 15), gemm("ort", 1, 70), gemm("ort", 2, 91)],
    groups: [],
    peer: { skipped: "--no-peer" },
  });
  assert.match(text, /wasm 512\^3 gemm, 2 threads \/ 1 thread: 1\.50x \(target >= 1\.7\)/);
  assert.match(text, /onnxruntime MatMul 512\^3, 2 threads \/ 1 thread: 1\.30x \(this machine's scaling\)/);
});
