/**
 * A short calibration for the dry run's time estimates: a few training steps of each distinct network and
 * precision on the chosen engine, fed random data of the dataset's shape (from the registry, so no data set
 * is read or downloaded), at a small batch. A cell's estimate is then its examples times the measured
 * seconds per example, plus its test passes at a third of that (forward only). The calibration has a total
 * cap; settings it does not reach get no estimate, and the output says so.
 *
 * @module
 */

import { datasetInfo } from "../../datasets/registry.ts";
import type { Engine, Executable, HostTensor } from "../../kernels/engine.ts";
import { rounder } from "../formats/format.ts";
import { sizeOf } from "../graph/graph.ts";
import { Rng } from "../random.ts";
import type { RunConfig } from "../record/schema.ts";
import type { ResolvedRun } from "../train/config.ts";
import { initialState } from "../train/init.ts";
import { buildTrainGraph } from "../train/step.ts";

/** The batch the calibration steps use (or the cell's own, when smaller): small, so each step is short. */
export const CALIBRATION_BATCH = 16;
/** Timed steps per setting at most, and the seconds after which a setting stops early. */
const MAX_STEPS = 3, SETTING_SECONDS = 2;

/** What one setting measured. */
export interface Calibration {
  /** Seconds per training example (one forward, backward and update, divided by the batch). */
  readonly secondsPerExample: number;
  /** Timed steps (after one untimed warm-up step) and their batch. */
  readonly steps: number;
  readonly batch: number;
  /** Seconds to build and compile the step graph. */
  readonly compileSeconds: number;
}

/** How the dry run's estimates are made, for its output. */
export const CALIBRATION_METHOD = `per network and precision: graph build and compile, one warm-up step, ` +
  `then up to ${MAX_STEPS} timed training steps (stopping once ${SETTING_SECONDS} s have passed) at batch ` +
  `${CALIBRATION_BATCH} on random inputs of the dataset's shape; a cell's estimate is its training ` +
  `examples x epochs x the seconds per example, plus its test examples x epochs at a third of that ` +
  `(forward only), plus the compile time; not counted: starting each cell's process and loading its data`;

/** The key of a setting: cells with equal keys share one calibration (seeds, limits and epochs do not count). */
export const settingKey = (c: RunConfig): string =>
  `${c.model} ${c.hidden.join(",")} ${c.dataset} ${c.policy} ${c.optimizer.kind}`;

/** Times a few steps of `run` on `engine` (see the module doc). */
export async function calibrate(run: ResolvedRun, engine: Engine): Promise<Calibration> {
  const { config, policy, model } = run;
  const info = datasetInfo(config.dataset);
  const batch = Math.min(config.batch, CALIBRATION_BATCH);
  const t0 = performance.now();
  const built = buildTrainGraph({
    model,
    modelOptions: { classes: info.classes, hidden: config.hidden },
    policy,
    optimizer: config.optimizer,
    inputShape: info.shape,
  }, batch);
  const exe: Executable = engine.compile(built.graph);
  const compileSeconds = (performance.now() - t0) / 1000;
  const state = initialState(built.graph, config.seed);
  const rng = new Rng(config.seed, "calibration"), r = rounder(policy.compute);
  const x = new Float32Array(batch * sizeOf(info.shape)).map(() => r(2 * rng.uniform() - 1));
  const labels = new Float32Array(batch).map(() => rng.below(info.classes));
  const scalar = (v: number): HostTensor => ({ shape: [], format: "fp32", data: Float64Array.of(v) });
  const step = async () => {
    const out = await exe.run({
      ...state,
      x: { shape: [batch, ...info.shape], format: policy.compute, data: x },
      labels: { shape: [batch], format: "fp32", data: labels },
      loss_scale: scalar(1),
      inv_loss_scale: scalar(1),
      step_seed: scalar(1),
      adam_alpha: scalar(config.optimizer.lr),
    });
    // The next step reads this one's state, as in training (a returned state tensor is consumed when fed).
    for (const name of Object.keys(state)) state[name] = out[name];
  };
  await step();
  let steps = 0;
  const ts = performance.now();
  while (steps < MAX_STEPS && (steps === 0 || performance.now() - ts < SETTING_SECONDS * 1000)) {
    await step();
    steps++;
  }
  const secondsPerExample = (performance.now() - ts) / 1000 / (steps * batch);
  return { secondsPerExample, steps, batch, compileSeconds };
}

/** A cell's estimated seconds from its setting's calibration (see the module doc). */
export function cellSeconds(c: RunConfig, cal: Calibration): number {
  const info = datasetInfo(c.dataset);
  const train = c.trainLimit ?? info.trainCount, test = c.testLimit ?? info.testCount;
  return cal.compileSeconds + c.epochs * cal.secondsPerExample * (train + test / 3);
}
