/**
 * Runs the cells of a matrix, each in its own process, a few at a time.
 *
 * A cell whose run record (same config id) already exists is skipped, so
 * killing reproduce and starting it again finishes only the remaining cells
 * (records are written atomically at the end of a cell). A cell whose process
 * fails is written up in `<id>.failed.txt` and the others go on; it runs again
 * next time.
 *
 * @module
 */

import { parseTrainArgs } from "../cli/train.ts";
import { configId, writeAtomic } from "../record/run_record.ts";
import { runChild } from "./child.ts";
import type { Cell } from "./profiles.ts";

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
}

/** What happened to the cells. */
export interface RunnerResult {
  /** The record id of every cell, in cell order. */
  readonly ids: string[];
  readonly ran: string[];
  readonly skipped: string[];
  readonly failed: { readonly id: string; readonly label: string; readonly code: number }[];
}

/** The full `train` arguments of a cell, and the id its record will have. */
export async function cellInvocation(cell: Cell, o: Pick<RunnerOptions, "out" | "engine" | "extra">) {
  const args = ["train", ...cell.args, "--engine", o.engine, "--out", o.out, ...o.extra];
  return { args, id: await configId(parseTrainArgs(args.slice(1)).config) };
}

const fmt = (s: number) =>
  s < 90 ? `${Math.round(s)}s` : `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;

/** Runs every cell not yet recorded in `o.out`. */
export async function runCells(cells: readonly Cell[], o: RunnerOptions): Promise<RunnerResult> {
  await Deno.mkdir(o.out, { recursive: true });
  const pending: { cell: Cell; args: string[]; id: string }[] = [];
  const result: RunnerResult = { ids: [], ran: [], skipped: [], failed: [] };
  for (const cell of cells) {
    const inv = await cellInvocation(cell, o);
    result.ids.push(inv.id);
    // Finished = record and weights both present (weights are written first; an old record without them reruns).
    const has = (f: string) => Deno.stat(`${o.out}/${f}`).then(() => true, () => false);
    const done = !o.force && await has(`${inv.id}.json`) && await has(`${inv.id}.weights`);
    if (done) result.skipped.push(inv.id);
    else pending.push({ cell, ...inv });
  }
  if (result.skipped.length) {
    o.log(`${result.skipped.length} of ${cells.length} cells already have records; skipping them`);
  }
  const start = performance.now();
  const spent = new Map<number, number[]>(); // seconds per finished cell, by group
  let next = 0, finished = 0;
  const eta = () => {
    const all = [...spent.values()].flat();
    if (!all.length) return "ETA unknown";
    const left = pending.slice(finished).reduce((s, t) => {
      const g = spent.get(t.cell.experiment);
      return s + (g ? g.reduce((a, b) => a + b, 0) / g.length : all.reduce((a, b) => a + b, 0) / all.length);
    }, 0);
    return `ETA ${fmt(left / Math.min(o.jobs, Math.max(1, pending.length - finished)))}`;
  };
  const worker = async () => {
    while (next < pending.length) {
      const k = next++;
      const t = pending[k], t0 = performance.now();
      const tag = `[${k + 1}/${pending.length}] ${t.cell.label}`;
      o.log(`${tag}: started (elapsed ${fmt((t0 - start) / 1000)}, ${eta()})`);
      const r = await runChild(t.args, (line) => {
        const m = /^epoch (\d+)\/(\d+)\s+(.*)$/.exec(line);
        if (m) {
          o.log(`${tag}: epoch ${m[1]}/${m[2]} ${m[3]} (elapsed ${fmt((performance.now() - start) / 1000)})`);
        }
      });
      const secs = (performance.now() - t0) / 1000;
      finished++;
      if (r.code === 0) {
        spent.set(t.cell.experiment, [...(spent.get(t.cell.experiment) ?? []), secs]);
        result.ran.push(t.id);
        o.log(`${tag}: done in ${fmt(secs)} (${eta()})`);
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
