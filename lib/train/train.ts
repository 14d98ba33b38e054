/**
 * The training loop: seeded shuffling, batches through the engine, dynamic
 * loss scaling, divergence detection, evaluation on the test split every
 * epoch, per-epoch metrics and timings, and the final weight hash.
 *
 * @module
 */

import type { Engine, Executable, HostTensor } from "../../kernels/engine.ts";
import type { Dataset, Split } from "../../datasets/dataset.ts";
import { rounder } from "../formats/format.ts";
import { type Graph, sizeOf } from "../graph/graph.ts";
import type { ModelDef, ModelOptions } from "../model/zoo.ts";
import type { Policy } from "../policy/policy.ts";
import { Rng } from "../random.ts";
import { hashTensors } from "../record/hash.ts";
import { type EpochSums, stateMismatch, type TrainPosition } from "./checkpoint.ts";
import { initialState } from "./init.ts";
import { LossScaler } from "./loss_scaler.ts";
import { memoryFigures } from "./memory.ts";
import { adamAlpha } from "./optimizer.ts";
import { buildEvalGraph, buildTrainGraph, stepSlot, type StepSpec } from "./step.ts";
import type { Divergence, EpochMetrics, MemoryFigures, OptimizerConfig } from "../record/schema.ts";

/** Everything a run produced. */
export interface TrainResult {
  readonly epochs: EpochMetrics[];
  readonly divergence: Divergence | null;
  readonly weightHash: string;
  readonly memory: MemoryFigures;
  readonly parameterCount: number;
  readonly totalSeconds: number;
  /** Final persistent tensors (parameters, moving statistics, optimizer slots) by name. */
  readonly state: Record<string, HostTensor>;
  /** The model's weights (parameters and moving statistics, no optimizer slots): what `weightHash` covers. */
  readonly weights: Record<string, HostTensor>;
}

/** What one run needs. */
export interface TrainSetup {
  readonly model: ModelDef;
  readonly modelOptions: ModelOptions;
  readonly policy: Policy;
  readonly optimizer: OptimizerConfig;
  readonly batch: number;
  readonly epochs: number;
  readonly seed: number;
  readonly data: Dataset;
  readonly engine: Engine;
  /** Called after every epoch (progress output). */
  readonly onEpoch?: (m: EpochMetrics) => void;
  /** Called every few seconds inside an epoch with (done, total) batches. */
  readonly onBatch?: (done: number, total: number) => void;
  /** Saving and resuming positions; without it the run keeps none. */
  readonly checkpoint?: CheckpointHooks;
}

/** How a training saves its position and continues from a saved one. */
export interface CheckpointHooks {
  /** A position to continue from (a checkpoint of this run), or null to start at the beginning. */
  readonly resume: TrainPosition | null;
  /** Seconds between two positions saved inside an epoch (0: after every step); one is saved every epoch end. */
  readonly everySeconds: number;
  /** Saves a position; its tensors must be read before it resolves (the next step consumes them). */
  save(p: TrainPosition): Promise<void>;
  /** Called when `resume` is used. */
  onResume?(p: TrainPosition): void;
  /** Called with the reason when `resume` does not fit the model, which then starts at the beginning. */
  onReject?(why: string): void;
}

/** Compiles graphs lazily per batch size (the last batch of a split may be smaller). */
class GraphCache<T> {
  readonly #byBatch = new Map<number, T>();
  constructor(readonly make: (batch: number) => T) {}
  get(batch: number): T {
    let v = this.#byBatch.get(batch);
    if (!v) this.#byBatch.set(batch, v = this.make(batch));
    return v;
  }
}

const scalar = (v: number): HostTensor => ({
  shape: [],
  format: "fp32",
  data: Float64Array.of(Math.fround(v)),
});

function batchFeeds(
  split: Split,
  order: Uint32Array | null,
  start: number,
  n: number,
  per: number,
  compute: Graph["accumulate"],
) {
  // Float32Array holds fp32, fp16 and bf16 values exactly, and engines take it without a conversion.
  const x = new Float32Array(n * per), labels = new Float32Array(n), r = rounder(compute);
  for (let k = 0; k < n; k++) {
    const i = order ? order[start + k] : start + k;
    labels[k] = split.y[i];
    for (let p = 0; p < per; p++) x[k * per + p] = r(split.x[i * per + p]);
  }
  return { x, labels };
}

/** The first named tensor holding a NaN or an Infinity (read only after the graph's check said one does). */
function firstNonFinite(state: Record<string, HostTensor>, names: readonly string[]): string | null {
  for (const name of names) {
    const d = state[name].data;
    for (let i = 0; i < d.length; i++) if (d[i] - d[i] !== 0) return name;
  }
  return null;
}

const noSums = (skippedBefore: number): EpochSums => ({
  lossSum: 0,
  correct: 0,
  seen: 0,
  lostSum: 0,
  applied: 0,
  skippedBefore,
  trainSeconds: 0,
});

/** A saved position `s.checkpoint` offers that fits this run's state, or null (the caller was told why). */
function usablePosition(s: TrainSetup, fresh: Record<string, HostTensor>): TrainPosition | null {
  const p = s.checkpoint?.resume;
  if (!p) return null;
  const nb = Math.ceil(s.data.train.count / s.batch);
  const why = stateMismatch(p.state, fresh) ?? hostStateProblem(p, s.policy) ??
    (p.epoch > s.epochs + 1 || p.batch > nb
      ? `its position (epoch ${p.epoch}, batch ${p.batch}) is past the run's end`
      : null);
  if (why) s.checkpoint!.onReject?.(why);
  return why ? null : p;
}

/** Why a position's stream or loss scaler state cannot be restored, or null. */
function hostStateProblem(p: TrainPosition, policy: Policy): string | null {
  try {
    new Rng(0, "check").seek(p.shuffle);
    new LossScaler(policy.lossScale).restore(p.scaler);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Trains one configuration to the end or to divergence, from the beginning or from a saved position. */
export async function train(s: TrainSetup): Promise<TrainResult> {
  const t0 = performance.now();
  const spec: StepSpec = {
    model: s.model,
    modelOptions: s.modelOptions,
    policy: s.policy,
    optimizer: s.optimizer,
    inputShape: s.data.shape,
  };
  const per = sizeOf(s.data.shape);
  const firstBatch = Math.min(s.batch, s.data.train.count);
  const first = buildTrainGraph(spec, firstBatch);
  const trainers = new GraphCache<Executable>((b) =>
    s.engine.compile(b === firstBatch ? first.graph : buildTrainGraph(spec, b).graph)
  );
  const evaluators = new GraphCache<Executable>((b) => s.engine.compile(buildEvalGraph(spec, b)));
  const state = initialState(first.graph, s.seed);
  const paramNames = first.graph.leaves("param").map((n) => n.name!);
  const modelNames = [
    ...paramNames,
    ...first.graph.leaves("state").filter((n) => !n.meta?.slot).map((n) => n.name!),
  ];
  const parameterCount = first.graph.leaves("param").reduce(
    (p, n) => p + sizeOf(n.shape),
    0,
  );

  const scaler = new LossScaler(s.policy.lossScale);
  // Lost updates are counted in the graph (the `lost` output), over every parameter element.
  const slotOf = stepSlot(s.optimizer);
  const paramElements = first.graph.leaves("param").reduce((t, n) => t + sizeOf(n.shape), 0);
  let adamT = 0, step = 0;
  const shuffle = new Rng(s.seed, "shuffle");
  const epochs: EpochMetrics[] = [];
  let divergence: Divergence | null = null;
  // Everything the loop carries from step to step comes back from a saved position, so the bits continue.
  const resume = usablePosition(s, state);
  if (resume) {
    Object.assign(state, resume.state);
    (step = resume.step), (adamT = resume.adamT);
    shuffle.seek(resume.shuffle);
    scaler.restore(resume.scaler);
    epochs.push(...resume.epochs);
    s.checkpoint!.onResume?.(resume);
  }
  const ck = s.checkpoint, earlier = resume?.elapsedSeconds ?? 0;
  let lastSave = performance.now();
  const save = async (
    p: Omit<TrainPosition, "step" | "adamT" | "scaler" | "epochs" | "elapsedSeconds" | "state">,
  ) => {
    await s.engine.settle?.(Object.values(state));
    await ck!.save({
      ...p,
      step,
      adamT,
      scaler: scaler.snapshot(),
      epochs: [...epochs],
      elapsedSeconds: earlier + (performance.now() - t0) / 1000,
      state,
    });
    lastSave = performance.now();
  };

  for (let epoch = resume?.epoch ?? 1; epoch <= s.epochs && !divergence; epoch++) {
    const te = performance.now();
    const shufflePosition = shuffle.position();
    const order = shuffle.permutation(s.data.train.count);
    const nb = Math.ceil(s.data.train.count / s.batch);
    const resumed = resume?.epoch === epoch ? resume : null;
    const sums = resumed ? { ...resumed.sums } : noSums(scaler.skipped);
    const trainSeconds = () => sums.trainSeconds + (performance.now() - te) / 1000;
    let lastTick = performance.now();
    for (let bi = resumed?.batch ?? 0; bi < nb; bi++) {
      step++;
      const start = bi * s.batch, n = Math.min(s.batch, s.data.train.count - start);
      const { x, labels } = batchFeeds(s.data.train, order, start, n, per, s.policy.compute);
      if (s.optimizer.kind === "adam") adamT++;
      const scale = scaler.scale;
      const out = await trainers.get(n).run({
        ...state,
        x: { shape: [n, ...s.data.shape], format: s.policy.compute, data: x },
        labels: { shape: [n], format: "fp32", data: labels },
        loss_scale: scalar(scale),
        inv_loss_scale: scalar(1 / scale),
        step_seed: scalar(mixSeed(s.seed, step)),
        adam_alpha: scalar(adamAlpha(s.optimizer, Math.max(adamT, 1))),
      });
      const loss = out.loss.data[0], finite = out.finite.data[0] === 1;
      if (slotOf && (finite || !scaler.gates)) {
        (sums.lostSum += out.lost.data[0] / paramElements), sums.applied++;
      }
      for (const name of Object.keys(state)) state[name] = out[name];
      sums.lossSum += loss * n;
      sums.correct += out.correct.data[0];
      sums.seen += n;
      const minScale = scale <= 1;
      if (!scaler.update(finite)) {
        if (s.optimizer.kind === "adam") adamT--; // a skipped step does not advance Adam's t (Keras)
        if (minScale && !Number.isFinite(loss)) {
          divergence = { epoch, step, reason: "non-finite loss with the loss scale at its minimum (1)" };
        }
      } else if (!scaler.gates && !Number.isFinite(loss)) {
        divergence = { epoch, step, reason: `non-finite loss (${loss})` };
      }
      // The graph says whether every parameter is finite; they are read only when one is not, to name it.
      let bad: string | null = null;
      if (!divergence && out.params_finite.data[0] !== 1) {
        await s.engine.settle?.(Object.values(state)); // an engine may keep state on a device until now
        bad = firstNonFinite(state, paramNames);
      }
      if (bad) divergence = { epoch, step, reason: `non-finite value in parameter ${bad}` };
      if (divergence) break;
      if (ck && performance.now() - lastSave >= ck.everySeconds * 1000) {
        await save({
          epoch,
          batch: bi + 1,
          shuffle: shufflePosition,
          sums: { ...sums, trainSeconds: trainSeconds() },
        });
      }
      if (s.onBatch && performance.now() - lastTick > 2000) {
        (lastTick = performance.now()), s.onBatch(bi + 1, nb);
      }
    }
    const seconds = trainSeconds(), { seen } = sums;
    const tv = performance.now();
    const test = await evaluate(evaluators, state, s.data.test, s.batch, per, s);
    epochs.push({
      epoch,
      trainLoss: sums.lossSum / seen,
      trainAccuracy: sums.correct / seen,
      testLoss: test.loss,
      testAccuracy: test.accuracy,
      skippedSteps: scaler.skipped - sums.skippedBefore,
      lostUpdates: slotOf && sums.applied ? sums.lostSum / sums.applied : null,
      lossScale: scaler.scale,
      trainSeconds: seconds,
      evalSeconds: (performance.now() - tv) / 1000,
      samplesPerSecond: seen / seconds,
    });
    s.onEpoch?.(epochs.at(-1)!);
    if (ck && !divergence) {
      await save({ epoch: epoch + 1, batch: 0, shuffle: shuffle.position(), sums: noSums(scaler.skipped) });
    }
  }
  await s.engine.settle?.(Object.values(state)); // the caller reads the state (weights file, hashes)
  const weights = Object.fromEntries(modelNames.map((n) => [n, state[n]]));
  return {
    epochs,
    divergence,
    weightHash: await hashTensors(weights),
    memory: memoryFigures(first),
    parameterCount,
    totalSeconds: earlier + (performance.now() - t0) / 1000,
    state,
    weights,
  };
}

/** Mean test loss and accuracy over a split, in order, with the current state. */
async function evaluate(
  cache: GraphCache<Executable>,
  state: Record<string, HostTensor>,
  split: Split,
  batch: number,
  per: number,
  s: TrainSetup,
): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0, correct = 0;
  for (let start = 0; start < split.count; start += batch) {
    const n = Math.min(batch, split.count - start);
    const { x, labels } = batchFeeds(split, null, start, n, per, s.policy.compute);
    const out = await cache.get(n).run({
      ...state,
      x: { shape: [n, ...s.data.shape], format: s.policy.compute, data: x },
      labels: { shape: [n], format: "fp32", data: labels },
    });
    lossSum += out.loss.data[0] * n;
    correct += out.correct.data[0];
  }
  return { loss: lossSum / split.count, accuracy: correct / split.count };
}

/** Per-step seed for dropout masks and stochastic rounding (exact in fp32: 24 bits). */
function mixSeed(seed: number, step: number): number {
  return new Rng(seed, `step/${step}`).nextU32() >>> 8; // (seed, step) -> stream: no collision across seeds
}
