/**
 * The run config: what a caller asks for ({@linkcode RunRequest}, typed), resolved and checked into the
 * {@linkcode RunConfig} that defines a run and its id, and written back as the `train` arguments that give
 * the same config ({@linkcode configArgs}). `train` parses its flags into a request; `reproduce` builds
 * requests from profiles and passes each child the config's arguments; `verify` re-runs a record from its
 * config. tests/config_test.ts checks that parsing the arguments of a config gives the config back.
 *
 * @module
 */

import { datasetInfo } from "../../datasets/registry.ts";
import { engineSpec } from "../../kernels/registry.ts";
import { UsageError } from "../errors.ts";
import { type FormatName, rounder } from "../formats/format.ts";
import { modelByName, type ModelDef } from "../model/zoo.ts";
import { bnFormat, parsePolicy, type Policy, PolicyError, policyString } from "../policy/policy.ts";
import type { OptimizerConfig, RunConfig } from "../record/schema.ts";

/** The MLP's hidden widths when none are given. */
export const DEFAULT_HIDDEN: readonly number[] = [128];

/** A run as a caller states it; {@linkcode resolveRun} checks it and fills what follows from it. */
export interface RunRequest {
  readonly model: string;
  /** The MLP's hidden widths (default {@linkcode DEFAULT_HIDDEN}); other models have none. */
  readonly hidden?: readonly number[];
  readonly dataset: string;
  /** Use only the first N examples of a split; never more than the split holds. */
  readonly trainLimit?: number | null;
  readonly testLimit?: number | null;
  /** A policy name or string, as the user wrote it. */
  readonly precision: string;
  readonly optimizer: OptimizerConfig;
  readonly batch: number;
  readonly epochs: number;
  readonly seed: number;
  /** An engine or variant name (kernels/registry.ts). */
  readonly engine: string;
  /** Thread count, when the engine's bits depend on it (its spec's bitOptions); else a runtime choice. */
  readonly threads?: number;
}

/** A checked run: its config (and so its id), its policy and its model. */
export interface ResolvedRun {
  readonly config: RunConfig;
  readonly policy: Policy;
  readonly model: ModelDef;
}

const positive = (what: string, n: number) => {
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`--${what} must be a positive integer, got ${n}`);
  }
  return n;
};

/** Checks `r` and resolves it into a run config; throws a one-line {@linkcode UsageError}. */
export function resolveRun(r: RunRequest): ResolvedRun {
  let model: ModelDef;
  try {
    model = modelByName(r.model);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let info;
  try {
    info = datasetInfo(r.dataset);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (model.input && model.input.some((d, i) => d !== info.shape[i])) {
    throw new UsageError(
      `Model ${model.name} is built for ${model.input.join("x")} images (CIFAR-10); ${r.dataset} has ${
        info.shape.join("x")
      }`,
    );
  }
  let engine;
  try {
    engine = engineSpec(r.engine);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let policy: Policy;
  try {
    policy = parsePolicy(r.precision);
  } catch (e) {
    if (e instanceof PolicyError) throw new UsageError(`Bad --precision "${r.precision}": ${e.message}`);
    throw e;
  }
  const optimizer = checkOptimizer(r.optimizer, policy);
  const limit = (flag: string, n: number | null | undefined, size: number, split: string) => {
    if (n === null || n === undefined) return null;
    // A limit above the set's size would train on fewer examples than the id says: refused, never trimmed.
    if (positive(flag, n) > size) {
      throw new UsageError(`--${flag} ${n} is more than the ${size} ${split} examples of ${r.dataset}`);
    }
    return n;
  };
  const bitThreads = engine.spec.bitOptions.includes("threads") && !("threads" in engine.preset);
  const threads = r.threads ?? engine.spec.defaults?.threads;
  if (bitThreads && threads !== undefined) positive("threads", threads);
  const config: RunConfig = {
    model: model.name,
    hidden: model.name === "mlp" ? [...(r.hidden ?? DEFAULT_HIDDEN)].map((w) => positive("hidden", w)) : [],
    dataset: r.dataset,
    trainLimit: limit("train-limit", r.trainLimit, info.trainCount, "training"),
    testLimit: limit("test-limit", r.testLimit, info.testCount, "test"),
    precision: r.precision,
    policy: policyString(policy),
    optimizer,
    batch: positive("batch", r.batch),
    epochs: positive("epochs", r.epochs),
    seed: r.seed,
    engine: r.engine,
    // Only options that change the bits belong to the config (and its id); an engine without any has none.
    ...(bitThreads && threads !== undefined ? { engineOptions: { threads } } : {}),
  };
  return { config, policy, model };
}

/**
 * Checks an optimizer against the policy and returns it in canonical form (SGD ignores epsilon, so it is
 * kept at the Keras default there and out of SGD config ids). Refuses hyperparameters the policy's update
 * formats cannot hold: the optimizer rounds lr, momentum, weight decay and Adam's epsilon to the format of
 * the parameters and of their optimizer state (kernels/ref/optim.ts), so `--lr 1e-320` would train nothing
 * while the record says lr 1e-320.
 */
function checkOptimizer(o: OptimizerConfig, p: Policy): OptimizerConfig {
  if (o.kind !== "sgd" && o.kind !== "adam") {
    throw new UsageError(`Unknown optimizer "${o.kind}": expected sgd or adam`);
  }
  const range = (flag: string, v: number, ok: boolean, what: string) => {
    if (!Number.isFinite(v) || !ok) throw new UsageError(`--${flag} must be ${what}, got ${v}`);
  };
  range("lr", o.lr, o.lr > 0, "a positive number");
  range("weight-decay", o.weightDecay, o.weightDecay >= 0, "a number >= 0");
  if (o.kind === "sgd") range("momentum", o.momentum, o.momentum >= 0 && o.momentum < 1, "in [0, 1)");
  else range("epsilon", o.epsilon, o.epsilon > 0, "a positive number");
  const out: OptimizerConfig = {
    ...o,
    momentum: o.kind === "sgd" ? o.momentum : 0,
    epsilon: o.kind === "adam" ? o.epsilon : 1e-7,
  };
  const formats = [
    ...new Set<FormatName>([p.params, p.state === "params" ? p.params : p.state, bnFormat(p)]),
  ];
  holdable("lr", out.lr, formats);
  holdable("weight-decay", out.weightDecay, formats);
  if (out.kind === "sgd") holdable("momentum", out.momentum, formats, 1);
  else holdable("epsilon", out.epsilon, formats);
  return out;
}

/**
 * Refuses a value that the given formats cannot hold as meant: a non-zero value that rounds to zero
 * (underflow), to infinity (overflow), or to `below` or more (momentum 0.99999 is 1 in fp16).
 * The message names the flag, the value, the format and what it becomes there.
 */
export function holdable(
  flag: string,
  value: number,
  formats: readonly FormatName[],
  below = Infinity,
): void {
  for (const f of formats) {
    const r = rounder(f)(value);
    const why = value !== 0 && r === 0
      ? "underflows to 0"
      : !Number.isFinite(r)
      ? "overflows to infinity"
      : r >= below
      ? `rounds to ${r}`
      : undefined;
    if (why) {
      throw new UsageError(`--${flag} ${value} ${why} in ${f}, the format the optimizer rounds it to here`);
    }
  }
}

/** The `train` arguments that give config `c` (numbers written so they parse back to the same value). */
export function configArgs(c: RunConfig): string[] {
  const o = c.optimizer;
  return [
    ...["--model", c.model, ...(c.hidden.length ? ["--hidden", c.hidden.join(",")] : [])],
    ...["--dataset", c.dataset],
    ...(c.trainLimit !== null ? ["--train-limit", String(c.trainLimit)] : []),
    ...(c.testLimit !== null ? ["--test-limit", String(c.testLimit)] : []),
    ...["--precision", c.precision, "--optimizer", o.kind, "--lr", String(o.lr)],
    ...["--weight-decay", String(o.weightDecay)],
    ...(o.kind === "sgd" ? ["--momentum", String(o.momentum)] : ["--epsilon", String(o.epsilon)]),
    ...["--batch", String(c.batch), "--epochs", String(c.epochs), "--seed", String(c.seed)],
    ...["--engine", c.engine],
    ...(c.engineOptions?.threads !== undefined ? ["--threads", String(c.engineOptions.threads)] : []),
  ];
}
