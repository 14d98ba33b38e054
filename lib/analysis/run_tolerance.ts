/**
 * Runs the tolerance analysis for a recorded fp32 model: loads its weights
 * and test split, computes the fp32 outputs and those of a 16-bit counterpart
 * (the same weights rounded to fp16 or bf16 and run under that standalone
 * policy, or an independently trained 16-bit model), and measures the lemma
 * in both output spaces.
 *
 * @module
 */

import { loadDataset } from "../../datasets/registry.ts";
import type { Engine, HostTensor } from "../../kernels/engine.ts";
import { engineSpec, loadEngine } from "../../kernels/registry.ts";
import { rounder } from "../formats/format.ts";
import { modelByName } from "../model/zoo.ts";
import { parsePolicy, type Policy } from "../policy/policy.ts";
import { readJson, recordProblem } from "../record/read.ts";
import { readWeights, weightFeeds } from "../record/weights.ts";
import { buildEvalGraph } from "../train/step.ts";
import type { Dataset } from "../../datasets/dataset.ts";
import { measure, softmaxRows } from "./tolerance.ts";
import { type RunRecord, TOLERANCE_SCHEMA, type ToleranceResult } from "../record/schema.ts";
import { sizeOf } from "../graph/graph.ts";

/** A problem with the inputs of the analysis (a user mistake, reported in one line). */
export class ToleranceInputError extends Error {}

async function loadRecord(path: string): Promise<{ record: RunRecord; weightsPath: string }> {
  const read = await readJson(path);
  const problem = "error" in read ? read.error : recordProblem(read.value);
  if (problem) throw new ToleranceInputError(`${path}: ${problem}`);
  const record = (read as { value: RunRecord }).value;
  return { record, weightsPath: path.replace(/\.json$/, ".weights") };
}

/** Test-split logits of `record`'s model with `weights` under `policy`, as float64 [N, classes]. */
async function testLogits(
  record: RunRecord,
  weights: Record<string, HostTensor>,
  policy: Policy,
  data: Dataset,
  engine: Engine,
) {
  const c = record.config;
  const spec = {
    model: modelByName(c.model),
    modelOptions: { classes: data.classes, hidden: c.hidden },
    policy,
    optimizer: c.optimizer,
    inputShape: data.shape,
  };
  const per = sizeOf(data.shape), k = data.classes, n = data.test.count;
  const out = new Float64Array(n * k), r = rounder(policy.compute);
  const compiled = new Map<number, ReturnType<typeof engine.compile>>();
  let feedsOfWeights: Record<string, HostTensor> | undefined;
  for (let start = 0; start < n; start += c.batch) {
    const b = Math.min(c.batch, n - start);
    let exe = compiled.get(b);
    if (!exe) {
      const g = buildEvalGraph(spec, b);
      feedsOfWeights ??= weightFeeds(
        g,
        weights,
        (name) => new ToleranceInputError(`The weights have no tensor ${name}`),
      );
      compiled.set(b, exe = engine.compile(g));
    }
    const x = new Float64Array(b * per), labels = new Float64Array(b);
    for (let i = 0; i < b * per; i++) x[i] = r(data.test.x[start * per + i]);
    for (let i = 0; i < b; i++) labels[i] = data.test.y[start + i];
    const res = await exe.run({
      ...feedsOfWeights!,
      x: { shape: [b, ...data.shape], format: policy.compute, data: x },
      labels: { shape: [b], format: "fp32", data: labels },
    });
    await engine.settle?.([res.logits]);
    out.set(res.logits.data, start * k);
  }
  return out;
}

/** Options of {@linkcode analyseTolerance}. */
export interface ToleranceOptions {
  /** A second (16-bit trained) record to compare with instead of rounding the reference's weights. */
  readonly against?: string;
  readonly format?: "fp16" | "bf16";
  /** The dataset cache; undefined: from the environment, and only when a download is needed. */
  readonly cacheDir?: string;
  readonly offline?: boolean;
  /**
   * The engine that computes both models' outputs (default ref, whose arithmetic defines the formats; an
   * engine bit-identical to ref gives the same result faster). The reference's bit-changing engine options
   * (ort's thread count) apply when it is the engine the reference was trained on.
   */
  readonly engine?: string;
}

/** Runs the analysis for the fp32 record at `recordPath`. */
export async function analyseTolerance(recordPath: string, o: ToleranceOptions): Promise<ToleranceResult> {
  const ref = await loadRecord(recordPath);
  const c = ref.record.config, refPolicy = parsePolicy(c.precision);
  if (refPolicy.params !== "fp32" || refPolicy.compute !== "fp32") {
    throw new ToleranceInputError(
      `${recordPath} was trained in ${c.precision}; the reference must be an fp32 run`,
    );
  }
  const other = o.against ? await loadRecord(o.against) : null;
  if (other) {
    const oc = other.record.config;
    for (const key of ["model", "dataset", "trainLimit", "testLimit"] as const) {
      if (JSON.stringify(oc[key]) !== JSON.stringify(c[key])) {
        throw new ToleranceInputError(
          `${o.against} differs from the reference in ${key}; compare the same model and data`,
        );
      }
    }
    if (JSON.stringify(oc.hidden) !== JSON.stringify(c.hidden)) {
      throw new ToleranceInputError(`${o.against} has other hidden widths than the reference`);
    }
  }
  // Like the inputs above, the engine name is checked before the data set is loaded (perhaps downloaded).
  const engineName = o.engine ?? "ref";
  try {
    engineSpec(engineName);
  } catch (e) {
    throw new ToleranceInputError((e as Error).message);
  }
  const data = await loadDataset(c.dataset, {
    limits: { train: c.trainLimit ?? undefined, test: c.testLimit ?? undefined },
    cacheDir: o.cacheDir,
    offline: o.offline,
  });
  const refWeights = await readWeights(ref.weightsPath, ref.record.weightHash);
  const engine = await loadEngine(engineName, engineName === c.engine ? c.engineOptions : {});
  let a: Float64Array, b: Float64Array, counterpart: ToleranceResult["counterpart"];
  try {
    a = await testLogits(ref.record, refWeights, refPolicy, data, engine);
    if (other) {
      const oc = other.record.config;
      const weights = await readWeights(other.weightsPath, other.record.weightHash);
      b = await testLogits(other.record, weights, parsePolicy(oc.precision), data, engine);
      counterpart = { mode: "independent", id: other.record.id, precision: oc.precision };
    } else {
      const format = o.format ?? "fp16";
      b = await testLogits(ref.record, refWeights, parsePolicy(format), data, engine);
      counterpart = { mode: "rounded", format };
    }
  } finally {
    engine.close?.();
  }
  const k = data.classes, labels = data.test.y;
  return {
    schema: TOLERANCE_SCHEMA,
    model: c.model,
    dataset: c.dataset,
    reference: { id: ref.record.id, precision: c.precision },
    counterpart,
    engine: engineName,
    logits: measure("logits", a, b, k, labels),
    probabilities: measure("probabilities", softmaxRows(a, k), softmaxRows(b, k), k, labels),
  };
}
