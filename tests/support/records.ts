/**
 * Synthetic run records and runs folders for the report tests (no training
 * run needed): every field filled, numbers derived from the options.
 *
 * @module
 */

import { RUN_SCHEMA, type RunRecord } from "../../lib/record/run_record.ts";
import type { FormatName } from "../../lib/formats/format.ts";

/** A string that must never reach a page unescaped. */
export const XSS = "<script>alert(1)</script>";

export interface Opts {
  model?: string;
  hidden?: number[];
  precision?: string;
  seed?: number;
  engine?: string;
  diverged?: boolean;
}

/** A run record with every field filled, its numbers derived from the options so runs differ. */
export function record(o: Opts = {}): RunRecord {
  const model = o.model ?? "mlp", hidden = o.hidden ?? (model === "mlp" ? [16] : []);
  const precision = o.precision ?? "fp32", seed = o.seed ?? 1, engine = o.engine ?? "ref";
  const fmt: FormatName = precision === "fp32" ? "fp32" : precision === "bf16" ? "bf16" : "fp16";
  const bytes = fmt === "fp32" ? 4 : 2;
  const base = 0.5 + 0.01 * seed + (precision === "fp16" ? 0.005 : 0) + (model === "cnn" ? 0.1 : 0);
  const epochs = [1, 2, 3].slice(0, o.diverged ? 2 : 3).map((epoch) => ({
    epoch,
    trainLoss: o.diverged && epoch === 2 ? NaN : 2 / epoch + 0.01 * seed,
    trainAccuracy: base + 0.05 * epoch,
    testLoss: 2.1 / epoch,
    testAccuracy: base + 0.04 * epoch,
    skippedSteps: 0,
    lossScale: precision === "mixed" ? 32768 : 1,
    trainSeconds: 1 + 0.1 * seed + (precision === "fp32" ? 0.5 : 0),
    evalSeconds: 0.1,
    samplesPerSecond: 1000,
  }));
  const params = model === "mlp" ? 784 * hidden[0] + hidden[0] + hidden[0] * 10 + 10 : 1000;
  const id = `${model}-${precision.replace(/[^a-z0-9]/gi, "x")}-${engine}-s${seed}`;
  const r: RunRecord = {
    schema: RUN_SCHEMA,
    id,
    config: {
      model,
      hidden,
      dataset: "synthetic",
      trainLimit: 300,
      testLimit: 100,
      precision,
      policy:
        `params=${fmt},compute=${fmt},accumulate=fp32,state=params,bn=params,loss-scale=none,rounding=nearest`,
      optimizer: {
        kind: "sgd",
        lr: 0.01,
        momentum: 0.9,
        weightDecay: 0,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-7,
      },
      batch: 50,
      epochs: 3,
      seed,
      engine,
    },
    policy: {
      name: precision,
      params: fmt,
      compute: fmt,
      accumulate: "fp32",
      state: "params",
      bn: "params",
      lossScale: { kind: "none" },
      rounding: "nearest",
    },
    status: o.diverged ? "diverged" : "completed",
    divergence: o.diverged ? { epoch: 2, step: 9, reason: "non-finite loss" } : null,
    epochs,
    final: { testAccuracy: epochs.at(-1)!.testAccuracy, trainLoss: epochs.at(-1)!.trainLoss },
    weightHash: `${seed}${"ab".repeat(31)}${precision.length}`,
    metricsHash: "cd".repeat(32),
    parameterCount: params,
    memory: {
      parameters: { [fmt]: params * bytes },
      gradients: { [fmt]: params * bytes },
      optimizer: { [fmt]: params * bytes },
      activations: { [fmt]: 5000 * bytes, fp32: 4 },
    },
    timings: { totalSeconds: 5 + seed, trainSeconds: epochs.reduce((s, e) => s + e.trainSeconds, 0) },
    dataset: { source: "generated", synthetic: true, rule: "10 classes & <noise>" },
    environment: {
      deno: "2.9.6",
      v8: "15.0",
      typescript: "6.0.3",
      os: "linux",
      arch: "x86_64",
      cpu: `CPU <${engine}>`,
      cpus: 2,
      gitCommit: null,
      engine: { name: engine, capabilities: { formats: ["fp32", "fp16", "bf16"], deterministic: true } },
    },
    createdAt: `2026-01-0${seed}T00:00:00.000Z`,
  };
  return r;
}

/** A determinism check entry. */
export const check = (id: string, identical: boolean, kind = "rerun") => ({
  id,
  model: "mlp",
  precision: "fp16",
  seed: 1,
  engine: "ref",
  weightHash: "a",
  rerunWeightHash: identical ? "a" : "b",
  metricsHash: "c",
  rerunMetricsHash: identical ? "c" : "d",
  identical,
  firstDifferingEpoch: identical ? null : 2,
  kind,
});

/** Writes a runs folder: 2 models x 4 precisions x 2 seeds, a diverged run, damaged files, determinism. */
export async function makeRuns(dir: string, determinism = true): Promise<void> {
  const records: RunRecord[] = [];
  for (const model of ["mlp", "cnn"]) {
    for (const precision of ["fp16", "fp32", "mixed", XSS]) {
      for (const seed of [2, 1]) records.push(record({ model, precision, seed }));
    }
  }
  records.push(record({ model: "mlp", precision: "fp16", seed: 3, diverged: true }));
  for (const r of records) await Deno.writeTextFile(`${dir}/${r.id}.json`, JSON.stringify(r, null, 2));
  const good = JSON.stringify(record({ seed: 9 }));
  await Deno.writeTextFile(`${dir}/truncated.json`, good.slice(0, good.length / 2));
  await Deno.writeTextFile(`${dir}/corrupt.json`, "{ this is not json");
  await Deno.writeTextFile(`${dir}/foreign.json`, JSON.stringify({ schema: "other/1" }));
  const noSeed = JSON.parse(good);
  delete noSeed.config.seed;
  await Deno.writeTextFile(`${dir}/noseed.json`, JSON.stringify(noSeed));
  await Deno.writeTextFile(`${dir}/notes.txt`, "not a record");
  if (determinism) {
    const checks = [check("a1", true), check("a2", true), check("a3", false, "cross-engine")];
    await Deno.writeTextFile(
      `${dir}/determinism.json`,
      JSON.stringify({ schema: "f16repro.determinism/1", checks }),
    );
  }
}
