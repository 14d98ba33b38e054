/**
 * The data tables of the pitfall figures (7: Adam epsilon, 8: lost updates,
 * 9: accumulation). As for figures 1-5, every mean is computed here and
 * rounded to fixed decimals, and rows come out in one fixed order, so the
 * chart, the CSV and the page show the same numbers.
 *
 * @module
 */

import {
  byString,
  comparePrecision,
  finalAccuracy,
  groupBy,
  groupRows,
  lostUpdatesOf,
  mean,
  round,
  roundOrNull,
  type Run,
} from "./aggregate.ts";
import { CURVE_METRICS, type DataRow } from "./figure_data.ts";

/** The columns of the pitfall figures' data tables, in CSV order. */
export const PITFALL_COLUMNS = {
  epsilon: ["experiment", "variant", "cell", "precision", "metric", "epoch", "runs", "mean", "min", "max"],
  lostUpdates: ["cell", "dataset", "precision", "epoch", "runs", "mean", "min", "max"],
  accumulation: [
    "experiment",
    "cell",
    "dataset",
    "precision",
    "runs",
    "diverged",
    "accMean",
    "accStd",
    "trainSecondsMean",
    "trainSecondsStd",
  ],
} as const;

/** Runs of one experiment kind. */
export const ofKind = (runs: readonly Run[], kind: string): Run[] =>
  runs.filter((r) => r.experiment.kind === kind);

/** The last number in a label ("epsilon 1e-7" gives 1e-7), for ordering variants by value. */
function labelNumber(label: string): number {
  const m = label.match(/[-+]?\d*\.?\d+(?:e[-+]?\d+)?(?!.*\d)/i);
  return m ? Number(m[0]) : NaN;
}

/** Orders variant labels by their number when both have one (smallest epsilon first), else by text. */
export function compareVariant(a: string, b: string): number {
  const x = labelNumber(a), y = labelNumber(b);
  return (Number.isFinite(x) && Number.isFinite(y) && x !== y ? x - y : 0) || byString(a, b);
}

/** Runs sorted by experiment, variant, cell and precision (then seed, kept from the input order). */
export function sortPitfallRuns(runs: readonly Run[]): Run[] {
  // Array.prototype.sort is stable, so runs equal on these keys keep the report's seed order.
  return [...runs].sort((a, b) =>
    byString(a.experiment.name, b.experiment.name) ||
    compareVariant(a.experiment.variant, b.experiment.variant) ||
    byString(a.cell, b.cell) || comparePrecision(a.record.config.precision, b.record.config.precision)
  );
}

/** Mean, min and max over seeds per epoch of `value`, skipping non-finite values. */
function perEpoch(runs: readonly Run[], value: (e: Run["record"]["epochs"][number]) => number | null) {
  const byEpoch = new Map<number, number[]>();
  for (const r of runs) {
    for (const e of r.record.epochs) {
      const v = value(e);
      if (v === null || !Number.isFinite(v)) continue;
      byEpoch.set(e.epoch, [...(byEpoch.get(e.epoch) ?? []), v]);
    }
  }
  return [...byEpoch.keys()].sort((a, b) => a - b).map((epoch) => {
    const vs = byEpoch.get(epoch)!;
    return { epoch, runs: vs.length, mean: mean(vs)!, min: Math.min(...vs), max: Math.max(...vs) };
  });
}

/** Figure 7: train loss and test accuracy per epoch of each (variant, precision), over seeds. */
export function epsilonData(runs: readonly Run[]): DataRow[] {
  const rows: DataRow[] = [];
  const sorted = sortPitfallRuns(ofKind(runs, "epsilon"));
  const key = (r: Run) =>
    JSON.stringify([r.experiment.name, r.experiment.variant, r.cell, r.record.config.precision]);
  for (const [, g] of groupBy(sorted, key)) {
    for (const [field, metric, scale] of CURVE_METRICS) {
      for (const p of perEpoch(g, (e) => (typeof e[field] === "number" ? e[field] * scale : null))) {
        rows.push({
          experiment: g[0].experiment.name,
          variant: g[0].experiment.variant,
          cell: g[0].cell,
          precision: g[0].record.config.precision,
          metric,
          epoch: p.epoch,
          runs: p.runs,
          mean: round(p.mean, 4),
          min: round(p.min, 4),
          max: round(p.max, 4),
        });
      }
    }
  }
  return rows;
}

/** Figure 8: lost updates in % per epoch of each main (model, precision), over the seeds that record it. */
export function lostUpdatesData(runs: readonly Run[]): DataRow[] {
  const rows: DataRow[] = [];
  for (const [, g] of groupBy(runs, (r) => JSON.stringify([r.cell, r.record.config.precision]))) {
    for (const p of perEpoch(g, (e) => (lostUpdatesOf(e) === null ? null : lostUpdatesOf(e)! * 100))) {
      rows.push({
        cell: g[0].cell,
        dataset: g[0].record.config.dataset,
        precision: g[0].record.config.precision,
        epoch: p.epoch,
        runs: p.runs,
        mean: round(p.mean, 4),
        min: round(p.min, 4),
        max: round(p.max, 4),
      });
    }
  }
  return rows;
}

/** Figure 9: final test accuracy and training seconds per precision string of the accumulation runs. */
export function accumulationData(runs: readonly Run[]): DataRow[] {
  const rows: DataRow[] = [];
  for (const [name, g] of groupBy(sortPitfallRuns(ofKind(runs, "accumulation")), (r) => r.experiment.name)) {
    for (const row of groupRows(g)) {
      rows.push({
        experiment: name,
        cell: row.cell,
        dataset: row.dataset,
        precision: row.precision,
        runs: row.runs,
        diverged: row.diverged,
        accMean: roundOrNull(row.accMean, 2),
        accStd: roundOrNull(row.accStd, 2),
        trainSecondsMean: round(row.trainSecondsMean, 3),
        trainSecondsStd: roundOrNull(row.trainSecondsStd, 3),
      });
    }
  }
  return rows;
}

/** Final test accuracy in % of a run, rounded, or null (diverged). */
export const finalAccuracyRounded = (r: Run): number | null => roundOrNull(finalAccuracy(r), 2);
