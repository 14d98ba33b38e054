/**
 * The step graphs engine comparisons run on: for each (model, batch, optimizer, policies) case, the train
 * and eval graphs of every policy with one step's feeds (small hidden layers, ten classes).
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import type { Graph } from "../../lib/graph/graph.ts";
import { modelByName } from "../../lib/model/zoo.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { buildEvalGraph, buildTrainGraph, type StepSpec } from "../../lib/train/step.ts";
import { stepFeeds } from "./step_feeds.ts";
import type { OptimizerConfig } from "../../lib/record/schema.ts";

/** A model at a batch size with an optimizer, under several policies. */
export type StepCase = readonly [
  model: string,
  batch: number,
  optimizer: OptimizerConfig,
  policies: readonly string[],
];

/** One policy of one case: its label ("<model> <policy>"), fresh train and eval graphs, and the step's feeds. */
export interface StepGraphs {
  readonly label: string;
  readonly train: Graph;
  readonly eval: Graph;
  readonly feeds: Record<string, HostTensor>;
}

/** Every policy of every case, built on demand; `stream` names the data's random stream. */
export function* stepCases(cases: readonly StepCase[], stream: string): Generator<StepGraphs> {
  for (const [model, batch, optimizer, policies] of cases) {
    for (const p of policies) {
      const m = modelByName(model);
      const spec: StepSpec = {
        model: m,
        modelOptions: { classes: 10, hidden: [13] },
        policy: parsePolicy(p),
        optimizer,
        inputShape: m.input ?? [1, 28, 28],
      };
      const train = buildTrainGraph(spec, batch).graph;
      const feeds = stepFeeds(train, spec.policy, spec.inputShape, batch, {
        ...{ seed: 3, stream, span: 2, lossScale: 1024, stepSeed: 12345, adamAlpha: 0.0003 },
      });
      yield { label: `${model} ${p}`, train, eval: buildEvalGraph(spec, batch), feeds };
    }
  }
}
