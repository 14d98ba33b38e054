/**
 * Runs the cells of a matrix, each in its own process, a few at a time.
 *
 * A cell counts as finished only when its record is verified
 * ({@linkcode verifiedRecord}: it parses, has this schema and this cell's id,
 * and its weights hash to the record's weight hash), so killing reproduce and
 * starting it again finishes only the remaining cells, and a damaged,
 * foreign or truncated record is rerun, with the reason said. A cell whose
 * process fails is written up in `<id>.failed.txt` and the others go on; it
 * runs again next time.
 *
 * @module
 */

import { configArgs, resolveRun } from "../train/config.ts";
import { configId } from "../record/run_record.ts";
import { writeAtomic } from "../record/atomic.ts";
import { runChild } from "./child.ts";
import { type Estimate, formatDuration, type Work } from "./progress.ts";
import type { Cell } from "./profiles.ts";
import { verifiedRecord } from "./verified.ts";

/** Options of {@linkcode runCells}. */
export interface RunnerOptions {
  readonly out: string;
  readonly engine: string;
  readonly jobs: number;
  readonly force: boolean;
  /** Extra `train` flags for every cell (cache folder, --offline). */
  readonly extra: readonly string[];
  /** One progress line. */
  readonly log: (line: string) => void;
  /** Learns what cells cost, for the estimate of the time left. */
  readonly estimate: Estimate;
  /** Seconds the phases after the cells are expected to take (for the estimate). */
  readonly later: () => number;
  /** The command line the user typed, which each cell's record keeps with how many cells ran at once. */
  readonly command?: string;
  /**
   * Told, before any cell starts, every cell's record id and the indices of the cells that will run (the
   * others have verified records), so the estimate of the later phases counts only what they will do.
   */
  readonly planned?: (ids: readonly string[], toRun: readonly number[]) => void;
}

/** A cell that had a record which could not be used, and why. */
export interface Rerun {
  readonly id: string;
  readonly label: string;
  readonly reason: string;
}

/** What happened to the cells. */
export interface RunnerResult {
  /** The record id of every cell, in cell order. */
  readonly ids: string[];
  readonly ran: string[];
  readonly skipped: string[];
  /** Cells rerun because their record or weights did not verify. */
  readonly reran: Rerun[];
  readonly failed: { readonly id: string; readonly label: string; readonly code: number }[];
}

/** A cell's run config on the reproduction's engine, the id its record will have, and its `train` arguments. */
export async function cellInvocation(cell: Cell, o: Pick<RunnerOptions, "out" | "engine" | "extra">) {
  const { config } = resolveRun({ ...cell.request, engine: o.engine });
  const args = ["train", ...configArgs(config), "--out", o.out, ...o.extra];
  return { args, config, id: await configId(config) };
}

/** The estimate's view of a cell: cells of one experiment cost alike. */
export const cellWork = (cell: Cell): Work => ({ kind: `cell ${cell.experiment}`, guess: 10 });

/** Runs every cell not yet recorded (and verified) in `o.out`. */
export async function runCells(cells: readonly Cell[], o: RunnerOptions): Promise<RunnerResult> {
  await Deno.mkdir(o.out, { recursive: true });
  const pending: { cell: Cell; args: string[]; id: string }[] = [];
  const result: RunnerResult = { ids: [], ran: [], skipped: [], reran: [], failed: [] };
  const toRun: number[] = [];
  for (const [k, cell] of cells.entries()) {
    const inv = await cellInvocation(cell, o);
    result.ids.push(inv.id);
    const v = o.force ? null : await verifiedRecord(o.out, inv.id);
    if (v?.ok) {
      result.skipped.push(inv.id);
      // A finished cell's own timing teaches the estimate what its experiment's cells cost.
      o.estimate.measured(cellWork(cell), v.record.timings.totalSeconds);
      continue;
    }
    if (v && !v.missing) {
      result.reran.push({ id: inv.id, label: cell.label, reason: v.reason });
      o.log(`${cell.label}: rerunning: ${v.reason}`);
    }
    pending.push({ cell, ...inv });
    toRun.push(k);
  }
  o.planned?.(result.ids, toRun);
  if (result.skipped.length) {
    o.log(`${result.skipped.length} of ${cells.length} cells already have verified records; skipping them`);
  }
  const start = performance.now();
  let next = 0;
  const running = new Set<number>();
  const eta = () => {
    const left = pending.slice(next).map((t) => cellWork(t.cell));
    const inFlight = [...running].map((k) => cellWork(pending[k].cell));
    const secs = o.estimate.left([...inFlight, ...left], o.jobs) + o.later();
    return `about ${formatDuration(secs)} left`;
  };
  const elapsed = () => `elapsed ${formatDuration((performance.now() - start) / 1000)}`;
  const worker = async () => {
    while (next < pending.length) {
      const k = next++;
      running.add(k);
      const t = pending[k], t0 = performance.now();
      const tag = `[${k + 1}/${pending.length}] ${t.cell.label}`;
      o.log(`${tag}: started (${elapsed()}, ${eta()})`);
      const launch = o.command
        ? { command: o.command, cellsAtOnce: Math.min(o.jobs, pending.length) }
        : undefined;
      const onLine = (line: string) => {
        const m = /^epoch (\d+)\/(\d+)\s+(.*)$/.exec(line);
        if (m) o.log(`${tag}: epoch ${m[1]}/${m[2]} ${m[3]} (${elapsed()})`);
      };
      const r = await runChild(t.args, { engine: o.engine, onLine, launch });
      const secs = (performance.now() - t0) / 1000;
      running.delete(k);
      if (r.code === 0) {
        o.estimate.measured(cellWork(t.cell), secs);
        result.ran.push(t.id);
        o.log(`${tag}: done in ${formatDuration(secs)} (${eta()})`);
      } else {
        result.failed.push({ id: t.id, label: t.cell.label, code: r.code });
        const note = `cell: ${t.cell.label}\ncommand: f16repro ${
          t.args.join(" ")
        }\nexit code: ${r.code}\n\n${r.stderrTail}\n`;
        await writeAtomic(`${o.out}/${t.id}.failed.txt`, note);
        o.log(`${tag}: FAILED with exit code ${r.code}; see ${o.out}/${t.id}.failed.txt`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, pending.length)) }, worker));
  // A cell that succeeded now leaves no stale failure note behind.
  for (const id of result.ran) await Deno.remove(`${o.out}/${id}.failed.txt`).catch(() => {});
  return result;
}
