/**
 * Feeds for one training step of a step graph, for benchmarks and engine comparisons: the initial state,
 * seeded random images in the compute format, labels, and the step's scalars.
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { rounder } from "../../lib/formats/format.ts";
import type { Graph } from "../../lib/graph/graph.ts";
import type { Policy } from "../../lib/policy/policy.ts";
import { Rng } from "../../lib/random.ts";
import { initialState } from "../../lib/train/init.ts";

/** Choices of {@linkcode stepFeeds}; the defaults are the benchmarks'. */
export interface StepFeedOptions {
  /** Seed of the initial state and of the data (default 1). */
  readonly seed?: number;
  /** Name of the data's random stream (default "bench"). */
  readonly stream?: string;
  /** Pixels are uniform in [-span / 2, span / 2) (default 1). */
  readonly span?: number;
  /** Loss scale fed when the policy scales dynamically (default 32768). */
  readonly lossScale?: number;
  readonly stepSeed?: number;
  readonly adamAlpha?: number;
}

const scalar = (v: number): HostTensor => ({ shape: [], format: "fp32", data: Float64Array.of(v) });

/** Every feed of one step of `graph` for a batch of `batch` images of `inputShape`. */
export function stepFeeds(
  graph: Graph,
  policy: Policy,
  inputShape: readonly number[],
  batch: number,
  o: StepFeedOptions = {},
): Record<string, HostTensor> {
  const seed = o.seed ?? 1, span = o.span ?? 1;
  const rng = new Rng(seed, o.stream ?? "bench"), r = rounder(policy.compute);
  const n = batch * inputShape.reduce((p, d) => p * d, 1);
  const scale = policy.lossScale.kind === "dynamic" ? o.lossScale ?? 32768 : 1;
  return {
    ...initialState(graph, seed),
    x: {
      shape: [batch, ...inputShape],
      format: policy.compute,
      data: Float32Array.from({ length: n }, () => r((rng.uniform() - 0.5) * span)),
    },
    labels: {
      shape: [batch],
      format: "fp32",
      data: Float32Array.from({ length: batch }, () => rng.below(10)),
    },
    loss_scale: scalar(scale),
    inv_loss_scale: scalar(1 / scale),
    step_seed: scalar(o.stepSeed ?? 1),
    adam_alpha: scalar(o.adamAlpha ?? 0.001),
  };
}
