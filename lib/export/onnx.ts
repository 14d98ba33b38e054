/**
 * A trained network as an inference ONNX model in its precision: the evaluation graph of the run's
 * model and policy, cut down to images -> logits, with the trained weights embedded as initializers in
 * their own formats (fp16 weights as float16, bf16 as bfloat16). Any ONNX runtime can load it.
 *
 * The input `x` is [batch, C, H, W] float32 holding images normalised as the run's dataset loader does
 * (the mean and standard deviation are in the model's doc string); the output `logits` is
 * [batch, classes] float32. Inside, values are rounded to the policy's formats exactly as in training.
 *
 * @module
 */

import { datasetInfo } from "../../datasets/registry.ts";
import { modelByName } from "../model/zoo.ts";
import { parsePolicy } from "../policy/policy.ts";
import { weightFeeds } from "../record/weights.ts";
import { buildEvalGraph } from "../train/step.ts";
import type { HostTensor } from "../../kernels/engine.ts";
import { lowerGraph } from "../../kernels/ort/model.ts";
import type { RunRecord } from "../record/schema.ts";

/** An exported model and what it takes. */
export interface ExportedModel {
  readonly bytes: Uint8Array;
  /** Name and shape of the image input and of the logits output. */
  readonly input: { readonly name: string; readonly shape: readonly number[] };
  readonly output: { readonly name: string; readonly shape: readonly number[] };
}

/** Builds the inference model of `record` with its `weights` for a fixed `batch`. */
export async function exportInference(
  record: RunRecord,
  weights: Readonly<Record<string, HostTensor>>,
  batch: number,
): Promise<ExportedModel> {
  const c = record.config, info = datasetInfo(c.dataset);
  const policy = parsePolicy(c.policy);
  const graph = buildEvalGraph({
    model: modelByName(c.model),
    modelOptions: { classes: info.classes, hidden: c.hidden },
    policy,
    optimizer: c.optimizer,
    inputShape: info.shape,
  }, batch);
  const logits = graph.outputs.logits;
  for (const k of Object.keys(graph.outputs)) delete graph.outputs[k];
  graph.outputs.logits = logits;
  const constants = weightFeeds(graph, weights, (name) => new Error(`The weights have no tensor ${name}`));
  const ds = record.dataset as { mean?: number; std?: number };
  const lowered = await lowerGraph(graph, {
    constants,
    name: `${c.model}_${c.precision}`,
    doc: `f16repro run ${record.id}: ${c.model} on ${c.dataset}, precision ${c.precision} [${c.policy}], ` +
      `weights sha256 ${record.weightHash}. Input x: images normalised as the dataset loader does ` +
      `(x - ${ds.mean}) / ${ds.std}. Output: logits.`,
  });
  const x = lowered.inputs.find((p) => p.key === "x");
  if (!x || lowered.inputs.length !== 1) throw new Error("The evaluation graph should have one input, x");
  return {
    bytes: lowered.bytes,
    input: { name: x.name, shape: x.shape },
    output: { name: lowered.outputs[0].name, shape: lowered.outputs[0].shape },
  };
}
