/**
 * One training run as a function of its resolved config: load the engine and the data, train, assemble the
 * run record and save it with its weights. `train` calls it after parsing its flags; tests and other tools
 * call it with a config of their own.
 *
 * @module
 */

import type { Progress } from "../../datasets/download.ts";
import { loadDataset } from "../../datasets/registry.ts";
import { type HostTensor, policyProblem } from "../../kernels/engine.ts";
import { loadEngine } from "../../kernels/registry.ts";
import { UsageError } from "../errors.ts";
import { WriteError } from "../record/atomic.ts";
import { environmentManifest } from "../record/environment.ts";
import { configId, launchFromEnv, makeRunRecord, writeRunRecord } from "../record/run_record.ts";
import type { EpochMetrics, RunRecord } from "../record/schema.ts";
import { writeWeights } from "../record/weights.ts";
import type { ResolvedRun } from "./config.ts";
import { type CheckpointHooks, train } from "./train.ts";
import { type Checkpoint, CheckpointError, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";

/** Options of {@linkcode trainRun}. */
export interface TrainRunOptions {
  /** Where the record and weights go: a function of them that returns the record's path. */
  readonly save: (record: RunRecord, weights: Readonly<Record<string, HostTensor>>) => Promise<string>;
  /** Threads, for an engine whose bits do not depend on them (the config holds those that do). */
  readonly threads?: number;
  readonly cacheDir?: string;
  readonly offline?: boolean;
  /**
   * Checkpoints: `<dir>/<id>.ckpt`, saved at every epoch end and every `everySeconds` inside an epoch,
   * resumed from when present, removed once the record is saved. Absent: none are kept.
   */
  readonly checkpoint?: { readonly dir: string; readonly everySeconds: number };
  /** One progress line (the run's header, each epoch, divergence). */
  readonly log?: (line: string) => void;
  /** One line the user sees even without progress output (resuming, a checkpoint refused); default `log`. */
  readonly notice?: (line: string) => void;
  /** Download progress and events. */
  readonly onProgress?: (p: Progress) => void;
  readonly onEvent?: (message: string) => void;
}

/** Trains `run` and saves its record; returns the record and where it was written. */
export async function trainRun(
  run: ResolvedRun,
  o: TrainRunOptions,
): Promise<{ record: RunRecord; path: string }> {
  const { config, policy, model } = run, log = o.log ?? (() => {});
  const engine = await loadEngine(config.engine, { threads: config.engineOptions?.threads ?? o.threads });
  try {
    // An engine that cannot honour the policy says so before any data is loaded (never a fallback).
    const why = policyProblem(engine.capabilities, policy);
    if (why) {
      throw new UsageError(`Engine ${engine.name} cannot train with precision ${config.precision}: ${why}`);
    }
    const data = await loadDataset(config.dataset, {
      limits: { train: config.trainLimit ?? undefined, test: config.testLimit ?? undefined },
      cacheDir: o.cacheDir,
      offline: o.offline,
      onProgress: o.onProgress,
      onEvent: o.onEvent,
    });
    // resolveRun refused limits above the sets' sizes, so a mismatch here is a bug, never a quiet other id.
    for (const [split, want] of [["train", config.trainLimit], ["test", config.testLimit]] as const) {
      if (want !== null && data[split].count !== want) {
        throw new Error(`${data.name} gave ${data[split].count} ${split} examples for a limit of ${want}`);
      }
    }
    log(
      `f16repro train: ${config.model} on ${data.name} (${data.train.count} train, ${data.test.count} test), ` +
        `precision ${policy.name} [${config.policy}], engine ${engine.name}`,
    );
    const id = await configId(config);
    const ckptPath = o.checkpoint && `${o.checkpoint.dir.replace(/\/+$/, "")}/${id}.ckpt`;
    const checkpoint = ckptPath
      ? await checkpointHooks(id, ckptPath, o.checkpoint!.everySeconds, o.notice ?? log)
      : undefined;
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
      checkpoint,
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
    const path = await o.save(record, result.weights);
    // The record is the finished cell now; its checkpoint would only resume a run that is done.
    if (ckptPath) await Deno.remove(ckptPath).catch(() => {});
    if (result.divergence) {
      const d = result.divergence;
      log(`diverged at epoch ${d.epoch}, step ${d.step}: ${d.reason}`);
    }
    return { record, path };
  } finally {
    engine.close?.();
  }
}

/**
 * Writes a run's weights, then its record, into `dir` and returns the record's path. Weights first: a
 * record on disk is the sign of a finished cell, so its weights must already be there; when the record
 * cannot be written, weights this call added are removed again.
 */
export async function saveRun(
  dir: string,
  record: RunRecord,
  weights: Readonly<Record<string, HostTensor>>,
): Promise<string> {
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

/**
 * The checkpoint hooks of run `id` at `path`: a checkpoint found there is resumed from (said in one line),
 * one that cannot be trusted is set aside with a one-line warning, and a checkpoint that cannot be written
 * is warned about once while the training goes on.
 */
async function checkpointHooks(
  id: string,
  path: string,
  everySeconds: number,
  notice: (line: string) => void,
): Promise<CheckpointHooks> {
  const restart = (why: string) =>
    notice(`warning: checkpoint ${path} not used (${why}); training ${id} from the beginning`);
  let resume: Checkpoint | null = null;
  try {
    resume = await readCheckpoint(path, id);
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    restart(e.message);
  }
  let warned = false;
  return {
    resume,
    everySeconds,
    onResume: (p) =>
      notice(`resuming ${id} from epoch ${p.epoch}, step ${p.step} (checkpoint of ${resume!.writtenAt})`),
    onReject: restart,
    async save(p) {
      try {
        // The output folder may not exist yet (train checks it can be made, then leaves it unmade).
        await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || "/", { recursive: true }).catch(() => {});
        await writeCheckpoint(path, { configId: id, writtenAt: new Date().toISOString(), ...p });
      } catch (e) {
        if (!(e instanceof WriteError)) throw e;
        if (!warned) notice(`warning: ${(e as Error).message}; training goes on without checkpoints`);
        warned = true;
      }
    },
  };
}
