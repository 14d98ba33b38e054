/**
 * The ort engine from the command line: `train --engine ort` in two fresh processes gives one weight hash
 * and states its settings in the run record; without --allow-ffi it fails with one line; `export` writes
 * a model that onnxruntime runs to the same predicted classes as our engine on the whole test split.
 */

import assert from "node:assert/strict";
import { runCli, TRAIN_PERMS } from "./support/cli.ts";
import { loadDataset } from "../datasets/registry.ts";
import { loadOrt } from "../kernels/ort/runtime.ts";
import { createEngine as createWasm } from "../kernels/wasm/mod.ts";
import { roundArray } from "../lib/formats/format.ts";
import { modelByName } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { readWeights, weightFeeds } from "../lib/record/weights.ts";
import { buildEvalGraph } from "../lib/train/step.ts";
import type { RunRecord } from "../lib/record/schema.ts";

const FFI = [...TRAIN_PERMS, "--allow-ffi"];

async function trainCli(dir: string, args: string[], perms = FFI) {
  const r = await runCli(
    ["train", "--dataset", "synthetic", "--out", dir, "--json", "--quiet", ...args],
    perms,
  );
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { path: string; weightHash: string };
}

Deno.test("ort cli: two fresh processes give one weight hash; the record states threads and determinism", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const args = [
      "--engine",
      "ort",
      "--model",
      "cnn",
      "--precision",
      "mixed",
      "--epochs",
      "1",
      "--train-limit",
      "512",
    ];
    const [a, b] = [await trainCli(dir + "/a", args), await trainCli(dir + "/b", args)];
    assert.equal(a.weightHash, b.weightHash);
    const env = (JSON.parse(await Deno.readTextFile(a.path)) as RunRecord).environment.engine as Record<
      string,
      unknown
    >;
    assert.equal(env.name, "ort");
    assert.match(String(env.threads), /^1 intra-op/);
    assert.match(String(env.deterministic), /use_deterministic_compute=1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ort cli: verify re-runs an ort cell with its recorded thread count (which changes ort's bits)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const args = ["--engine", "ort", "--model", "mlp", "--epochs", "1"];
    const [one, two] = [
      await trainCli(dir + "/one", args),
      await trainCli(dir + "/two", [...args, "--threads", "2"]),
    ];
    assert.notEqual(
      one.weightHash,
      two.weightHash,
      "1 and 2 intra-op threads happened to give the same bits",
    );
    const r = await runCli(["verify", dir + "/two", "--quiet"], [...FFI, "--allow-run"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ort cli: without --allow-ffi, train --engine ort fails with one line that says what to do", async () => {
  const r = await runCli(
    ["train", "--engine", "ort", "--dataset", "synthetic", "--epochs", "1"],
    TRAIN_PERMS,
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^f16repro: The ort engine .* needs --allow-ffi/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

Deno.test("cli: an engine that cannot honour the precision says why in one line, exit code 2", async () => {
  const cases = [
    [
      ["--engine", "ort", "--precision", "fp16,accumulate=fp16"],
      FFI,
      /Engine ort .*cannot accumulate in fp16/,
    ],
    [["--engine", "ort", "--precision", "bf16,rounding=stochastic"], FFI, /cannot round stochastically/],
    [
      ["--engine", "wasm", "--precision", "params=fp64,compute=fp64"],
      TRAIN_PERMS,
      /Engine wasm .*has no fp64/,
    ],
  ] as const;
  for (const [args, perms, why] of cases) {
    const r = await runCli(["train", "--dataset", "synthetic", "--epochs", "1", ...args], perms);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, why);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("ort cli: export usage errors are one line with exit code 2", async () => {
  for (const args of [["export"], ["export", "missing.json", "-o", "x.onnx"], ["export", "a.json"]]) {
    const r = await runCli(args, ["--allow-read", "--allow-write", "--allow-env"]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("ort cli: an exported model predicts our engine's classes on the whole test split", async () => {
  const dir = await Deno.makeTempDir();
  const ort = await loadOrt(), wasm = await createWasm({ threads: 1 });
  try {
    for (const [model, precision] of [["mlp", "fp16"], ["cnn", "mixed"], ["mlp", "bf16"]]) {
      const run = await trainCli(
        dir,
        ["--model", model, "--precision", precision, "--epochs", "1"],
        TRAIN_PERMS,
      );
      const file = `${dir}/${model}-${precision}.onnx`, batch = 100;
      const r = await runCli(["export", run.path, "-o", file, "--batch", String(batch)], [
        "--allow-read",
        "--allow-write",
        "--allow-env",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const record = JSON.parse(await Deno.readTextFile(run.path)) as RunRecord;
      const weights = await readWeights(run.path.replace(/\.json$/, ".weights"), record.weightHash);
      const data = await loadDataset("synthetic", { cacheDir: dir });
      const policy = parsePolicy(record.config.policy);
      const graph = buildEvalGraph({
        model: modelByName(model),
        modelOptions: { classes: 10, hidden: record.config.hidden },
        policy,
        optimizer: record.config.optimizer,
        inputShape: data.shape,
      }, batch);
      const exe = wasm.compile(graph);
      const leaves = weightFeeds(graph, weights);
      const session = await ort.InferenceSession.create(await Deno.readFile(file), {});
      const per = data.shape.reduce((p, d) => p * d, 1), n = data.test.count;
      assert.equal(n % batch, 0);
      let agree = 0, maxGap = 0;
      for (let s = 0; s < n; s += batch) {
        const x = data.test.x.slice(s * per, (s + batch) * per);
        const ours = (await exe.run({
          ...leaves,
          x: {
            shape: [batch, ...data.shape],
            format: policy.compute,
            data: roundArray(policy.compute, Float64Array.from(x)),
          },
          labels: { shape: [batch], format: "fp32", data: new Float64Array(batch) },
        })).logits.data;
        const theirs =
          (await session.run({ x: new ort.Tensor("float32", Float32Array.from(x), [batch, ...data.shape]) }))
            .logits.data as Float32Array;
        for (let i = 0; i < batch; i++) {
          const row = (a: ArrayLike<number>) => {
            let best = 0;
            for (let k = 1; k < 10; k++) if (a[i * 10 + k] > a[i * 10 + best]) best = k;
            return best;
          };
          if (row(ours) === row(theirs)) agree++;
          for (let k = 0; k < 10; k++) {
            maxGap = Math.max(maxGap, Math.abs(ours[i * 10 + k] - theirs[i * 10 + k]));
          }
        }
      }
      await session.release();
      assert.equal(
        agree,
        n,
        `${model} ${precision}: ${n - agree} of ${n} predictions differ (max logit gap ${maxGap})`,
      );
    }
  } finally {
    wasm.close?.();
    await Deno.remove(dir, { recursive: true });
  }
});
