/**
 * The run config module: a config written as `train` arguments parses back to the same config (so a cell's
 * child process and a determinism re-run write the id their driver expects), only bit-changing engine
 * options enter a config, and bad requests are refused in one line.
 */

import assert from "node:assert/strict";
import { ENGINE_NAMES } from "../kernels/registry.ts";
import { parseTrainArgs } from "../lib/cli/train.ts";
import { UsageError } from "../lib/errors.ts";
import { configId } from "../lib/record/run_record.ts";
import { cellsOf, PROFILES } from "../lib/reproduce/profiles.ts";
import { configArgs, resolveRun, type RunRequest } from "../lib/train/config.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";

Deno.test("config: the train arguments of every profile cell on every engine parse back to its config", () => {
  let n = 0;
  for (const p of Object.values(PROFILES)) {
    for (const cell of cellsOf(p)) {
      for (const engine of ENGINE_NAMES) {
        const { config } = resolveRun({ ...cell.request, engine });
        assert.deepEqual(
          parseTrainArgs(configArgs(config)).config,
          config,
          `${p.name} ${cell.label} ${engine}`,
        );
        n++;
      }
    }
  }
  assert.ok(n > 100, `${n} configs`);
});

const TINY: RunRequest = {
  model: "mlp",
  hidden: [16, 8],
  dataset: "synthetic",
  trainLimit: 200,
  testLimit: 100,
  precision: "params=fp32,compute=fp16,accumulate=fp16",
  optimizer: { ...PAPER_SGD, kind: "adam", lr: 3e-4, momentum: 0, weightDecay: 5e-4, epsilon: 1e-4 },
  batch: 50,
  epochs: 3,
  seed: 4294967295,
  engine: "wasm-fast",
};

Deno.test("config: odd values (Adam, limits, policy strings, the largest seed, a variant) round-trip", () => {
  const { config } = resolveRun(TINY);
  assert.deepEqual(parseTrainArgs(configArgs(config)).config, config);
  // Numbers are written so they parse back to the same double.
  const odd = resolveRun({ ...TINY, optimizer: { ...TINY.optimizer, lr: 0.1 + 0.2 } }).config;
  assert.equal(parseTrainArgs(configArgs(odd)).config.optimizer.lr, 0.1 + 0.2);
});

Deno.test("config: only options that change an engine's bits enter the config and its id", async () => {
  const base = { ...TINY, precision: "fp32", optimizer: PAPER_SGD };
  // wasm's threads never change a bit: not in the config, so every thread count shares one id.
  const wasm = resolveRun({ ...base, engine: "wasm", threads: 3 }).config;
  assert.equal(wasm.engineOptions, undefined);
  assert.equal(await configId(wasm), await configId(resolveRun({ ...base, engine: "wasm" }).config));
  // ort's intra-op threads change its bits: recorded (default 1), so 1 and 2 threads are two ids.
  const one = resolveRun({ ...base, engine: "ort" }).config,
    two = resolveRun({ ...base, engine: "ort", threads: 2 }).config;
  assert.deepEqual(one.engineOptions, { threads: 1 });
  assert.deepEqual(two.engineOptions, { threads: 2 });
  assert.notEqual(await configId(one), await configId(two));
  assert.deepEqual(parseTrainArgs(configArgs(two)).config, two);
});

Deno.test("config: bad requests are one-line usage errors naming the value", () => {
  const refuses = (r: Partial<RunRequest>, re: RegExp) =>
    assert.throws(
      () => resolveRun({ ...TINY, ...r }),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
    );
  refuses({ engine: "tpu" }, /Unknown engine "tpu"/);
  refuses({ model: "lenet9" }, /lenet9/);
  refuses({ dataset: "imagenet" }, /Unknown dataset "imagenet"/);
  refuses({ model: "resnet32" }, /built for 3x32x32 images/);
  refuses({ trainLimit: 2001 }, /--train-limit 2001 is more than/);
  refuses({ batch: 0 }, /--batch must be a positive integer/);
  refuses({ optimizer: { ...PAPER_SGD, lr: 1e-320 } }, /--lr 1e-320 underflows to 0 in fp32/);
  refuses({ optimizer: { ...PAPER_SGD, momentum: 1 } }, /--momentum must be in \[0, 1\)/);
  refuses({ precision: "fp17" }, /Bad --precision "fp17"/);
});
