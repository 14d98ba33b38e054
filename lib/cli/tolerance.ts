/**
 * `f16repro tolerance`: the error/tolerance lemma on a trained fp32 model.
 *
 * @module
 */

import { analyseTolerance, ToleranceInputError } from "../analysis/run_tolerance.ts";
import { writeAtomic } from "../record/atomic.ts";
import { WeightsError } from "../record/weights.ts";
import { probeFile, writeOrRescue } from "./outputs.ts";
import { parseFlags } from "./parse.ts";
import { UsageError } from "../errors.ts";
import type { ToleranceResult, ToleranceSpace } from "../record/schema.ts";
import { ENGINE_NAMES } from "../../kernels/registry.ts";

/** Help text of `f16repro tolerance`. */
export const TOLERANCE_HELP = `Usage: f16repro tolerance RUN_RECORD [options]

Measures, on every test input, the error delta = max_k |M32(x)_k - M16(x)_k| and the tolerance
Gamma = top-1 minus top-2 output of the fp32 model, on logits and on probabilities. The paper's lemma says
Gamma > 2 delta implies both models predict the same class, so the share of inputs with Gamma <= 2 delta
bounds the accuracy gap. RUN_RECORD must be an fp32 run (its .weights file beside it).

Options:
  --format F        fp16 | bf16: the counterpart is the same weights rounded to F, run under
                    the standalone F policy (default fp16)
  --against RECORD  compare with an independently trained 16-bit run instead (same model and data);
                    then delta includes training divergence and the lemma says much less
  --engine NAME     ${ENGINE_NAMES.join(" | ")}: the engine that computes both outputs
                    (default ref, whose arithmetic defines the formats; wasm gives ref's bits faster;
                    ort needs --allow-ffi and the lockfile, as the train:ort task has them)
  -o FILE           write the full result (every input's delta and Gamma) as JSON
  --cache-dir DIR   dataset cache; --offline: never download
  --json            print the summary as JSON; --quiet: print nothing (use with -o)
  -h, --help        this help

Exit code 1 when the lemma is violated (a disagreement at Gamma > 2 delta), which would be a bug.

Examples:
  f16repro tolerance runs/quick/<id>.json
  f16repro tolerance runs/quick/<id>.json --format bf16 -o bf16.json
  f16repro tolerance runs/quick/<fp32 id>.json --against runs/quick/<fp16 id>.json`;

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The summary lines of a result. */
export function toleranceSummary(r: ToleranceResult): string {
  const cp = r.counterpart.mode === "rounded"
    ? `its ${r.counterpart.format} counterpart (weights rounded to ${r.counterpart.format}, standalone ${r.counterpart.format} policy)`
    : `the independently trained ${r.counterpart.precision} run ${r.counterpart.id} (delta includes training divergence)`;
  const rows: [string, (s: ToleranceSpace) => string][] = [
    ["test inputs", (s) => String(s.count)],
    ["Gamma > 2 delta", (s) => `${s.satisfied} (${pct(s.satisfiedShare)})`],
    ["disagreements", (s) => String(s.disagreements)],
    ["lemma violations", (s) => String(s.violations)],
    ["accuracy fp32", (s) => pct(s.accuracy32)],
    ["accuracy 16-bit", (s) => pct(s.accuracy16)],
    ["bound on the gap", (s) => pct(s.bound)],
  ];
  return [
    `${r.model} on ${r.dataset}: fp32 run ${r.reference.id} against ${cp}, on the ${
      r.engine ?? "ref"
    } engine`,
    `${"".padEnd(18)} ${"logits".padStart(16)} ${"probabilities".padStart(16)}`,
    ...rows.map(([name, f]) =>
      `${name.padEnd(18)} ${f(r.logits).padStart(16)} ${f(r.probabilities).padStart(16)}`
    ),
  ].join("\n");
}

/** Runs `f16repro tolerance`. */
export async function toleranceCommand(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    format: { type: "string", default: "fp16" },
    against: { type: "string" },
    engine: { type: "string", default: "ref" },
    out: { type: "string", short: "o" },
    "cache-dir": { type: "string" },
    offline: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  }, true);
  const { values: v, positionals } = parsed;
  if (v.help) return console.log(TOLERANCE_HELP), 0;
  if (positionals.length !== 1) throw new UsageError("Name one run record: f16repro tolerance RUN_RECORD");
  if (v.format !== "fp16" && v.format !== "bf16") {
    throw new UsageError(`--format must be fp16 or bf16, got "${v.format}"`);
  }
  for (const p of [positionals[0], v.against]) {
    if (p && !(await Deno.stat(p).then((s) => s.isFile, () => false))) {
      throw new UsageError(`No such file: ${p}`);
    }
  }
  if (!ENGINE_NAMES.includes(v.engine)) {
    throw new UsageError(`Unknown engine "${v.engine}": expected one of ${ENGINE_NAMES.join(", ")}`);
  }
  if (v.out) await probeFile("-o", v.out);
  let r: ToleranceResult;
  try {
    r = await analyseTolerance(positionals[0], {
      against: v.against,
      format: v.format,
      engine: v.engine,
      cacheDir: v["cache-dir"],
      offline: v.offline,
    });
  } catch (e) {
    if (e instanceof ToleranceInputError) throw new UsageError(e.message);
    if (e instanceof WeightsError) return console.error(`f16repro: ${e.message}`), 1;
    throw e;
  }
  const out = v.out, text = JSON.stringify(r) + "\n";
  if (out) await writeOrRescue("the result", out, (p) => writeAtomic(p, text), { kind: "file" });
  if (v.json) {
    const strip = ({ points: _p, ...s }: ToleranceSpace) => s;
    console.log(JSON.stringify({ ...r, logits: strip(r.logits), probabilities: strip(r.probabilities) }));
  } else if (!v.quiet) console.log(toleranceSummary(r));
  return r.logits.violations + r.probabilities.violations > 0 ? 1 : 0;
}
