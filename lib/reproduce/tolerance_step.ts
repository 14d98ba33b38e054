/**
 * The tolerance step of reproduce: for each main experiment, the fp32 record
 * with the lowest seed is compared with its fp16 and bf16 counterparts
 * (rounded weights) and with the fp16 run of the same seed (independent
 * training). Results go to `<runs>/tolerance/`, where the report reads them.
 *
 * @module
 */

import { analyseTolerance, type ToleranceOptions } from "../analysis/run_tolerance.ts";
import { readJson } from "../record/read.ts";
import { type Estimate, plural, type Work } from "./progress.ts";
import { writeAtomic } from "../record/atomic.ts";
import type { Cell, Profile } from "./profiles.ts";
import { type RunRecord, TOLERANCE_SCHEMA, type ToleranceResult } from "../record/schema.ts";

/** Runs the analyses; returns one summary line per analysis. */
export async function toleranceStep(
  dir: string,
  p: Profile,
  cells: readonly Cell[],
  ids: readonly string[],
  records: ReadonlyMap<string, RunRecord>,
  o: {
    cacheDir?: string;
    offline: boolean;
    log: (s: string) => void;
    /** Records written by this run: an analysis involving one is redone, every other earlier result kept. */
    fresh: ReadonlySet<string>;
    /** Learns what an analysis costs (kind "tolerance"). */
    estimate?: Estimate;
  },
): Promise<string[]> {
  await Deno.mkdir(`${dir}/tolerance`, { recursive: true });
  const lines: string[] = [];
  for (let ei = 0; ei < p.experiments.length; ei++) {
    if (p.experiments[ei].kind !== "main") continue;
    const mine = cells.map((c, k) => ({ c, id: ids[k] })).filter((x) =>
      x.c.experiment === ei && records.has(x.id)
    );
    const ref = mine.filter((x) => x.c.precision === "fp32" && records.get(x.id)!.status === "completed")
      .sort((a, b) => a.c.seed - b.c.seed)[0];
    if (!ref) continue;
    const fp16 = mine.find((x) => x.c.precision === "fp16" && x.c.seed === ref.c.seed);
    // The engine that trained the reference computes the outputs (wasm gives ref's bits, faster).
    const engine = records.get(ref.id)!.config.engine;
    const base = { cacheDir: o.cacheDir, offline: o.offline, engine };
    // [file suffix, what it compares with, options, the records it reads]
    const jobs: [string, string, ToleranceOptions, string[]][] = [
      ["fp16", "its weights rounded to fp16", { ...base, format: "fp16" }, [ref.id]],
      ["bf16", "its weights rounded to bf16", { ...base, format: "bf16" }, [ref.id]],
    ];
    if (fp16) {
      jobs.push([`vs-${fp16.id}`, `the fp16 run of seed ${ref.c.seed} (record ${fp16.id})`, {
        ...base,
        against: `${dir}/${fp16.id}.json`,
      }, [ref.id, fp16.id]]);
    }
    const name = p.experiments[ei].name;
    for (const [suffix, what, opts, reads] of jobs) {
      const file = `${dir}/tolerance/${ref.id}-${suffix}.json`;
      let r: ToleranceResult | null = null;
      if (!reads.some((id) => o.fresh.has(id))) r = await earlier(file, engine);
      if (r) {
        lines.push(`${name} fp32 against ${what}: ${summaryOf(r)} (earlier result kept)`);
        continue;
      }
      o.log(`tolerance: ${name} fp32 (record ${ref.id}) against ${what}, on ${engine}`);
      const t0 = performance.now();
      try {
        r = await analyseTolerance(`${dir}/${ref.id}.json`, opts);
      } catch (e) {
        // One unreadable model must not cost the whole report.
        lines.push(`${name} against ${what}: skipped: ${(e as Error).message.split("\n")[0]}`);
        continue;
      }
      o.estimate?.measured(TOLERANCE_WORK, (performance.now() - t0) / 1000);
      await writeAtomic(file, JSON.stringify(r) + "\n");
      lines.push(`${name} fp32 against ${what}: ${summaryOf(r)}`);
    }
  }
  return lines;
}

/**
 * The estimate's view of one analysis: a tenth of a cell's prior guess (two forward passes over the test
 * split against a cell's epochs of training), so the machine's measured scale applies to both alike.
 */
export const TOLERANCE_WORK: Work = { kind: "tolerance", guess: 1 };

/** The analyses {@linkcode toleranceStep} runs per main experiment at most. */
export const TOLERANCE_PER_EXPERIMENT = 3;

function summaryOf(r: ToleranceResult): string {
  const l = r.logits;
  return `Gamma > 2 delta on ${(100 * l.satisfiedShare).toFixed(2)}% of ${l.count} inputs, ` +
    `${plural(l.disagreements, "disagreement")}, ${plural(l.violations, "violation")}`;
}

/** An earlier result at `path` computed on `engine`, or null when there is none that can be used. */
async function earlier(path: string, engine: string): Promise<ToleranceResult | null> {
  const read = await readJson(path);
  if (!("value" in read)) return null;
  const r = read.value as ToleranceResult;
  const usable = r?.schema === TOLERANCE_SCHEMA && typeof r.logits?.satisfiedShare === "number" &&
    (r.engine ?? "ref") === engine;
  return usable ? r : null;
}
