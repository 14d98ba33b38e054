/**
 * Synthetic run records and runs folders for the report tests (no training
 * run needed): every field filled, numbers derived from the options.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import { RUN_SCHEMA, type RunRecord } from "../../lib/record/schema.ts";

/** A string that must never reach a page unescaped. */
export const XSS = "<script>alert(1)</script>";

export interface Opts {
  model?: string;
  hidden?: number[];
  precision?: string;
  seed?: number;
  engine?: string;
  diverged?: boolean;
  /** Optimizer of the run (default SGD). */
  optimizer?: "sgd" | "adam";
  epsilon?: number;
  /** Lost-update shares per epoch: "absent" leaves the field out as older records do (the default). */
  lostUpdates?: "absent" | "null" | "values";
}

/** A run record with every field filled, its numbers derived from the options so runs differ. */
export function record(o: Opts = {}): RunRecord {
  const model = o.model ?? "mlp", hidden = o.hidden ?? (model === "mlp" ? [16] : []);
  const precision = o.precision ?? "fp32", seed = o.seed ?? 1, engine = o.engine ?? "ref";
  const fmt: FormatName = precision === "fp32" ? "fp32" : precision === "bf16" ? "bf16" : "fp16";
  const bytes = fmt === "fp32" ? 4 : 2;
  const base = 0.5 + 0.01 * seed + (precision === "fp16" ? 0.005 : 0) + (model === "cnn" ? 0.1 : 0);
  const lost = (epoch: number) =>
    o.lostUpdates === "values"
      ? (fmt === "fp32" || precision === "mixed" ? 0.001 : fmt === "bf16" ? 0.2 : 0.05) / epoch + 0.001 * seed
      : null;
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
    lostUpdates: lost(epoch),
  }));
  if ((o.lostUpdates ?? "absent") === "absent") {
    for (const e of epochs) delete (e as { lostUpdates?: number | null }).lostUpdates;
  }
  const adam = o.optimizer === "adam";
  const params = model === "mlp" ? 784 * hidden[0] + hidden[0] + hidden[0] * 10 + 10 : 1000;
  const id = `${model}-${precision.replace(/[^a-z0-9]/gi, "x")}-${engine}-s${seed}${
    adam ? `-adam${o.epsilon ?? 1e-7}` : ""
  }`;
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
        kind: adam ? "adam" : "sgd",
        lr: adam ? 0.001 : 0.01,
        momentum: 0.9,
        weightDecay: 0,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: o.epsilon ?? 1e-7,
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

/** A tolerance point. */
export interface Point {
  i: number;
  label: number;
  pred32: number;
  pred16: number;
  delta: number;
  gamma: number;
}

/**
 * A tolerance result with `n` generated inputs: most well above the line
 * Gamma = 2 delta, `below` agreeing inputs below it, the given disagreements
 * below it, one input with delta 0 and, when asked, violations (disagreements
 * above the line, which only a bug can produce).
 */
export function toleranceResult(
  o: { n?: number; disagreements?: number; violations?: number; format?: "fp16" | "bf16"; ref?: string } = {},
) {
  const n = o.n ?? 200, dis = o.disagreements ?? 2, vio = o.violations ?? 0;
  const points: Point[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 10;
    // Deterministic spread over decades: delta in [1e-4, 1e-2], Gamma in [1e-1, 10].
    let delta = 10 ** (-4 + 2 * ((i * 37) % 101) / 100), gamma = 10 ** (-1 + 2 * ((i * 53) % 97) / 96);
    let pred16 = label;
    if (i === 0) delta = 0;
    else if (i <= dis) (gamma = delta * 1.5), (pred16 = (label + 1) % 10);
    else if (i <= dis + 3) gamma = delta * 0.5;
    else if (i <= dis + 3 + vio) (gamma = delta * 10), (pred16 = (label + 1) % 10);
    points.push({ i, label, pred32: label, pred16, delta, gamma });
  }
  const space = (name: string) => {
    const satisfied = points.filter((p) => p.gamma > 2 * p.delta).length;
    const right16 = points.filter((p) => p.pred16 === p.label).length;
    return {
      space: name,
      count: n,
      satisfied,
      satisfiedShare: satisfied / n,
      disagreements: dis + vio,
      violations: vio,
      accuracy32: 1,
      accuracy16: right16 / n,
      bound: (n - satisfied) / n,
      points,
    };
  };
  return {
    schema: "f16repro.tolerance/1",
    model: "mlp",
    dataset: "synthetic",
    reference: { id: o.ref ?? "mlp-fp32-ref-s1", precision: "fp32" },
    counterpart: { mode: "rounded", format: o.format ?? "fp16" },
    logits: space("logits"),
    probabilities: space("probabilities"),
  };
}

/** The epsilon variants of the synthetic Adam experiment. */
export const EPSILONS = [1e-7, 1e-4] as const;

/**
 * Writes a runs folder with matrix.json: a main experiment (MLP, fp32 and
 * fp16, seeds 1-2, with lost updates), an Adam-epsilon experiment (fp16 with
 * epsilon 1e-7 diverges) and an accumulation experiment, plus tolerance
 * results (one with a violation) and a damaged tolerance file.
 */
export async function makePitfallRuns(dir: string): Promise<{ main: RunRecord[]; other: RunRecord[] }> {
  const main: RunRecord[] = [], epsilon: RunRecord[] = [], accumulation: RunRecord[] = [];
  for (const precision of ["fp32", "fp16", "mixed"]) {
    for (const seed of [1, 2]) main.push(record({ precision, seed, lostUpdates: "values" }));
  }
  main.push(record({ model: "cnn", precision: "fp16", lostUpdates: "absent" }));
  for (const epsilon_ of EPSILONS) {
    for (const precision of ["fp32", "fp16"]) {
      epsilon.push(record({
        precision,
        optimizer: "adam",
        epsilon: epsilon_,
        seed: 1,
        diverged: precision === "fp16" && epsilon_ === 1e-7,
      }));
    }
  }
  const accPolicy = "params=fp16,compute=fp16,accumulate=fp16";
  for (const precision of ["fp16", accPolicy]) accumulation.push(record({ precision, seed: 5 }));
  for (const r of [...main, ...epsilon, ...accumulation]) {
    await Deno.writeTextFile(`${dir}/${r.id}.json`, JSON.stringify(r, null, 2));
  }
  const cells = (rs: RunRecord[], variant: (r: RunRecord) => string) =>
    rs.map((r) => ({ id: r.id, variant: variant(r), precision: r.config.precision, seed: r.config.seed }));
  const matrix = {
    schema: "f16repro.matrix/1",
    profile: "test",
    experiments: [
      // The cnn record is listed nowhere and so counts as main.
      { name: "mlp", kind: "main", description: "main", cells: cells(main.slice(0, 6), () => "") },
      {
        name: "adam-epsilon",
        kind: "epsilon",
        description: "Adam epsilon",
        cells: cells(epsilon, (r) => `epsilon ${r.config.optimizer.epsilon}`),
      },
      {
        name: "accumulation",
        kind: "accumulation",
        description: "acc",
        cells: cells(accumulation, () => ""),
      },
    ],
  };
  await Deno.writeTextFile(`${dir}/matrix.json`, JSON.stringify(matrix, null, 2));
  await Deno.mkdir(`${dir}/tolerance`);
  await Deno.writeTextFile(`${dir}/tolerance/a-fp16.json`, JSON.stringify(toleranceResult()));
  await Deno.writeTextFile(
    `${dir}/tolerance/b-bf16.json`,
    JSON.stringify(toleranceResult({ format: "bf16", disagreements: 3, violations: 1 })),
  );
  const short = toleranceResult();
  short.logits.points = short.logits.points.slice(1);
  await Deno.writeTextFile(`${dir}/tolerance/c-short.json`, JSON.stringify(short));
  await Deno.writeTextFile(`${dir}/tolerance/d-broken.json`, "{ not json");
  return { main, other: [...epsilon, ...accumulation] };
}
