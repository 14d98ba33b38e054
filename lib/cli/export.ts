/**
 * `f16repro export`: a run's trained network as an inference ONNX model.
 *
 * @module
 */

import { exportInference } from "../export/onnx.ts";
import { readJson, recordProblem } from "../record/read.ts";
import { writeAtomic } from "../record/atomic.ts";
import { readWeights, WeightsError } from "../record/weights.ts";
import { probeFile, writeOrRescue } from "./outputs.ts";
import { parseFlags, positiveInt } from "./parse.ts";
import { UsageError } from "../errors.ts";
import type { RunRecord } from "../record/schema.ts";

/** Help text of `f16repro export`. */
export const EXPORT_HELP = `Usage: f16repro export RUN_RECORD -o MODEL.onnx [options]

Writes the network trained by a run as an inference ONNX model (opset 18) in the run's precision: the
weights are embedded in their stored formats (fp16 as float16, bf16 as bfloat16) and every value inside
is rounded to the policy's formats as in training. onnxruntime, or any ONNX runtime, loads it.
RUN_RECORD's .weights file must lie beside it.

Input x: [batch, C, H, W] float32, images normalised as the run's dataset loader does (the mean and
standard deviation are in the model's doc string). Output logits: [batch, classes] float32.

Options:
  -o, --output FILE  where to write the model (required)
  --batch N          the model's fixed batch size (default 1)
  -h, --help         this help

Example:
  f16repro export runs/quick/<id>.json -o mlp_fp16.onnx --batch 100`;

/** Runs `f16repro export` with `args`; returns the exit code. */
export async function exportCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags(args, {
    output: { type: "string", short: "o" },
    batch: { type: "string", default: "1" },
    help: { type: "boolean", short: "h", default: false },
  }, true);
  if (v.help) {
    console.log(EXPORT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("export takes one RUN_RECORD (see --help)");
  if (!v.output) throw new UsageError("export needs -o MODEL.onnx");
  const batch = positiveInt("batch", v.batch!);
  const path = positionals[0];
  const read = await readJson(path);
  const problem = "error" in read ? read.error : recordProblem(read.value);
  if (problem) throw new UsageError(`${path}: ${problem}`);
  const record = (read as { value: RunRecord }).value;
  if (record.status === "diverged") {
    throw new UsageError(`${path}: the run diverged; its weights are not a trained network`);
  }
  let weights;
  try {
    weights = await readWeights(path.replace(/\.json$/, ".weights"), record.weightHash);
  } catch (e) {
    if (e instanceof WeightsError) return console.error(`f16repro: ${e.message}`), 1;
    throw e;
  }
  await probeFile("-o", v.output);
  const model = await exportInference(record, weights, batch);
  await writeOrRescue("the model", v.output, (p) => writeAtomic(p, model.bytes), { kind: "file" });
  console.error(
    `f16repro export: ${record.config.model} ${record.config.precision} (run ${record.id}) -> ${v.output}, ` +
      `${model.bytes.length} bytes; input ${model.input.name} [${model.input.shape}], ` +
      `output ${model.output.name} [${model.output.shape}]`,
  );
  return 0;
}
