/**
 * The tolerance step of reproduce: for each main experiment, the fp32 record
 * with the lowest seed is compared with its fp16 and bf16 counterparts
 * (rounded weights) and with the fp16 run of the same seed (independent
 * training). Results go to `<runs>/tolerance/`, where the report reads them.
 *
 * @module
 */

import { analyseTolerance, type ToleranceOptions } from "../analysis/run_tolerance.ts";
import type { RunRecord } from "../record/run_record.ts";
import { writeAtomic } from "../record/run_record.ts";
import type { Cell, Profile } from "./profiles.ts";

/** Runs the analyses; returns one summary line per analysis. */
export async function toleranceStep(
  dir: string,
  p: Profile,
  cells: readonly Cell[],
  ids: readonly string[],
  records: ReadonlyMap<string, RunRecord>,
  o: { cacheDir?: string; offline: boolean; log: (s: string) => void },
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
    const base = { cacheDir: o.cacheDir, offline: o.offline };
    const jobs: [string, ToleranceOptions][] = [["fp16", { ...base, format: "fp16" }], ["bf16", {
      ...base,
      format: "bf16",
    }]];
    if (fp16) jobs.push([`vs-${fp16.id}`, { ...base, against: `${dir}/${fp16.id}.json` }]);
    for (const [suffix, opts] of jobs) {
      o.log(`tolerance: ${p.experiments[ei].name} fp32 ${ref.id} against ${suffix}`);
      let r;
      try {
        r = await analyseTolerance(`${dir}/${ref.id}.json`, opts);
      } catch (e) {
        // One unreadable model must not cost the whole report.
        lines.push(`${p.experiments[ei].name} ${suffix}: skipped: ${(e as Error).message.split("\n")[0]}`);
        continue;
      }
      await writeAtomic(`${dir}/tolerance/${ref.id}-${suffix}.json`, JSON.stringify(r) + "\n");
      const l = r.logits;
      lines.push(
        `${p.experiments[ei].name} ${suffix}: Gamma > 2 delta on ${
          (100 * l.satisfiedShare).toFixed(2)
        }% of ${l.count} inputs, ` +
          `${l.disagreements} disagreements, ${l.violations} violations`,
      );
    }
  }
  return lines;
}
