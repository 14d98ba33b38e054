/**
 * The data table behind each figure, ours and the paper's side by side in one
 * table with a `source` column. One flat table per figure is what goes into
 * the chart, into the figure's CSV file and into the page, so a reader of the
 * CSV sees exactly the numbers that were drawn. Values are rounded here to a
 * fixed number of decimals so the output bytes carry no float noise.
 *
 * @module
 */

import { ERRATA, OUR_MODEL, type PaperRow, TABLE5 } from "./paper.ts";
import {
  byString,
  comparePrecision,
  finalAccuracy,
  groupBy,
  type GroupRow,
  mean,
  round,
  roundOrNull,
  type Run,
  sampleStd,
} from "./aggregate.ts";

/** A row of a figure's data table: plain JSON values, keys in column order. */
export type DataRow = Record<string, string | number | null>;

/** The columns of each figure's data table, in CSV order (also for an empty table). */
export const COLUMNS = {
  accuracy: [
    "source",
    "cell",
    "dataset",
    "precision",
    "runs",
    "diverged",
    "accMean",
    "accStd",
    "accLow",
    "accHigh",
    "panel",
  ],
  time: ["source", "kind", "cell", "dataset", "series", "value", "std", "panel"],
  difference: [
    "source",
    "cell",
    "dataset",
    "comparison",
    "diff",
    "std",
    "low",
    "high",
    "pairs",
    "note",
    "panel",
  ],
  curves: ["cell", "dataset", "precision", "metric", "epoch", "runs", "mean", "std", "min", "max"],
  memory: ["cell", "dataset", "precision", "seed", "category", "bytes", "formats"],
} as const;

/** The paper's dataset name as our records spell it. */
const PAPER_DATASET = "cifar10";
const PAPER_PRECISIONS = ["fp32", "fp16", "mixed"] as const;

const paperRows = (paper: boolean): readonly PaperRow[] => (paper ? TABLE5 : []);

/**
 * The panels of figures 1-3: `table5` holds the Table 5 networks we ran, ours beside the paper's; `small`
 * our other models (the MNIST-sized ones, which Table 5 does not have); `paper` the paper's rows of the
 * networks we did not run.
 */
export type Panel = "table5" | "small" | "paper";

const TABLE5_MODELS = new Set(Object.values(OUR_MODEL));

/** Our panel for a model (a label such as "alexnet" or "mlp 784-128-10"). */
export const oursPanel = (model: string): Panel => (TABLE5_MODELS.has(model) ? "table5" : "small");

/** The paper's panel for a Table 5 row: beside ours when we ran that network. */
export const paperPanel = (r: PaperRow, ran: ReadonlySet<string>): Panel =>
  ran.has(OUR_MODEL[r.model]) ? "table5" : "paper";

/** Figure 1: final test accuracy (%) per model and precision, mean +- sample std over seeds. */
export function accuracyData(groups: readonly GroupRow[], paper: boolean): DataRow[] {
  const ours = groups.map((g) => ({
    source: "ours",
    cell: g.cell,
    dataset: g.dataset,
    precision: g.precision,
    runs: g.runs,
    diverged: g.diverged,
    accMean: roundOrNull(g.accMean, 2),
    accStd: roundOrNull(g.accStd, 2),
    accLow: g.accMean === null ? null : round(g.accMean - (g.accStd ?? 0), 2),
    accHigh: g.accMean === null ? null : round(g.accMean + (g.accStd ?? 0), 2),
    panel: oursPanel(g.model),
  }));
  const ran = new Set(groups.map((g) => g.model));
  const theirs = paperRows(paper).flatMap((r) =>
    PAPER_PRECISIONS.map((p) => {
      const [m, s] = r.acc[p];
      return {
        source: "paper",
        cell: r.model,
        dataset: PAPER_DATASET,
        precision: p,
        runs: null,
        diverged: null,
        accMean: m,
        accStd: s,
        accLow: round(m - s, 2),
        accHigh: round(m + s, 2),
        panel: paperPanel(r, ran),
      };
    })
  );
  return [...ours, ...theirs];
}

/** The two speed-up ratios of the paper, as (numerator, denominator) precisions. */
export const RATIOS = [["fp32", "fp16"], ["mixed", "fp16"]] as const;

/** Figure 2: mean training seconds per group and the fp32/fp16 and mixed/fp16 ratios per model. */
export function timeData(groups: readonly GroupRow[], paper: boolean): DataRow[] {
  const rows: DataRow[] = [];
  const ran = new Set(groups.map((g) => g.model));
  for (const [cell, gs] of groupBy(groups, (g) => g.cell)) {
    const panel = oursPanel(gs[0].model);
    for (const g of gs) {
      rows.push({
        source: "ours",
        kind: "seconds",
        cell,
        dataset: g.dataset,
        series: g.precision,
        value: round(g.trainSecondsMean, 3),
        std: roundOrNull(g.trainSecondsStd, 3),
        panel,
      });
    }
    const secs = new Map(gs.map((g) => [g.precision, g.trainSecondsMean]));
    for (const [num, den] of RATIOS) {
      const a = secs.get(num), b = secs.get(den);
      if (a === undefined || b === undefined || b === 0) continue;
      const dataset = gs[0].dataset;
      rows.push({
        source: "ours",
        kind: "ratio",
        cell,
        dataset,
        series: `${num}/${den}`,
        value: round(a / b, 3),
        std: null,
        panel,
      });
    }
  }
  for (const r of paperRows(paper)) {
    for (const p of PAPER_PRECISIONS) {
      rows.push({
        source: "paper",
        kind: "seconds",
        cell: r.model,
        dataset: PAPER_DATASET,
        series: p,
        value: r.seconds[p],
        std: null,
        panel: paperPanel(r, ran),
      });
    }
    for (const [num, den] of RATIOS) {
      const value = round(r.seconds[num] / r.seconds[den], 3);
      rows.push({
        source: "paper",
        kind: "ratio",
        cell: r.model,
        dataset: PAPER_DATASET,
        series: `${num}/${den}`,
        value,
        std: null,
        panel: paperPanel(r, ran),
      });
    }
  }
  return rows;
}

/** The accuracy differences of the paper, as (minuend, subtrahend) precisions. */
export const DIFFERENCES = [["fp16", "fp32"], ["fp16", "mixed"]] as const;

/** How the paper's errata name a difference. */
const ERRATA_FIELD: Readonly<Record<string, string>> = {
  "fp16 - fp32": "FP16-FP32",
  "fp16 - mixed": "FP16-MP",
};

/** The paper's note on a printed value of Table 5, if it has one. */
export function paperNote(model: string, comparison: string): string {
  const e = ERRATA.find((x) => x.model === model && x.field === ERRATA_FIELD[comparison]);
  return e ? `printed ${e.printed}; ${e.note}` : "";
}

/**
 * Figure 3: accuracy differences in percentage points. Ours pairs runs of the
 * same seed and engine, so the std is over seed pairs; the paper's are
 * computed from the Table 5 means (the table gives no pairs).
 */
export function differenceData(runs: readonly Run[], paper: boolean): DataRow[] {
  const rows: DataRow[] = [];
  const ran = new Set(runs.map((r) => r.model));
  for (const [cell, rs] of groupBy(runs, (r) => r.cell)) {
    const acc = new Map<string, number>();
    for (const r of rs) {
      const a = finalAccuracy(r);
      const c = r.record.config;
      if (a !== null) acc.set(JSON.stringify([c.precision, c.seed, c.engine]), a);
    }
    for (const [p, q] of DIFFERENCES) {
      const diffs: number[] = [];
      for (const r of rs) {
        const c = r.record.config;
        if (c.precision !== p) continue;
        const a = acc.get(JSON.stringify([p, c.seed, c.engine]));
        const b = acc.get(JSON.stringify([q, c.seed, c.engine]));
        if (a !== undefined && b !== undefined) diffs.push(a - b);
      }
      if (diffs.length === 0) continue;
      rows.push({
        source: "ours",
        cell,
        dataset: rs[0].record.config.dataset,
        comparison: `${p} - ${q}`,
        diff: round(mean(diffs)!, 2),
        std: roundOrNull(sampleStd(diffs), 2),
        low: round(mean(diffs)! - (sampleStd(diffs) ?? 0), 2),
        high: round(mean(diffs)! + (sampleStd(diffs) ?? 0), 2),
        pairs: diffs.length,
        note: "",
        panel: oursPanel(rs[0].model),
      });
    }
  }
  for (const r of paperRows(paper)) {
    for (const [p, q] of DIFFERENCES) {
      const comparison = `${p} - ${q}`;
      rows.push({
        source: "paper",
        cell: r.model,
        dataset: PAPER_DATASET,
        comparison,
        diff: round(r.acc[p][0] - r.acc[q][0], 2),
        std: null,
        low: null,
        high: null,
        pairs: null,
        note: paperNote(r.model, comparison),
        panel: paperPanel(r, ran),
      });
    }
  }
  return rows;
}

/** The per-epoch metrics that figure 4 draws, with their display names. */
export const CURVE_METRICS = [
  ["testAccuracy", "test accuracy (%)", 100],
  ["trainLoss", "train loss", 1],
] as const;

/** Figure 4: per epoch mean, std, min and max over seeds of test accuracy and train loss. */
export function curveData(runs: readonly Run[]): DataRow[] {
  const rows: DataRow[] = [];
  for (const [, g] of groupBy(runs, (r) => JSON.stringify([r.cell, r.record.config.precision]))) {
    const c = g[0].record.config;
    for (const [field, metric, scale] of CURVE_METRICS) {
      const byEpoch = new Map<number, number[]>();
      for (const r of g) {
        for (const e of r.record.epochs) {
          const v = e[field];
          if (typeof v !== "number" || !Number.isFinite(v)) continue;
          const list = byEpoch.get(e.epoch) ?? [];
          list.push(v * scale);
          byEpoch.set(e.epoch, list);
        }
      }
      for (const epoch of [...byEpoch.keys()].sort((a, b) => a - b)) {
        const vs = byEpoch.get(epoch)!;
        rows.push({
          cell: g[0].cell,
          dataset: c.dataset,
          precision: c.precision,
          metric,
          epoch,
          runs: vs.length,
          mean: round(mean(vs)!, 4),
          std: roundOrNull(sampleStd(vs), 4),
          min: round(Math.min(...vs), 4),
          max: round(Math.max(...vs), 4),
        });
      }
    }
  }
  return rows;
}

/** The memory categories of a record, in stacking order. */
export const MEMORY_CATEGORIES = ["parameters", "gradients", "optimizer", "activations"] as const;

/** Figure 5: bytes per memory category of the first seed's run of each group. */
export function memoryData(runs: readonly Run[]): DataRow[] {
  const rows: DataRow[] = [];
  // Runs are sorted by seed inside a group, so the first one has the lowest seed.
  for (const [, g] of groupBy(runs, (r) => JSON.stringify([r.cell, r.record.config.precision]))) {
    const r = g[0], c = r.record.config;
    for (const category of MEMORY_CATEGORIES) {
      const byFormat = Object.entries(r.record.memory[category]).sort(([a], [b]) => byString(a, b));
      rows.push({
        cell: r.cell,
        dataset: c.dataset,
        precision: c.precision,
        seed: c.seed,
        category,
        bytes: byFormat.reduce((s, [, b]) => s + (b ?? 0), 0),
        formats: byFormat.map(([f, b]) => `${f} ${b}`).join(" + "),
      });
    }
  }
  return rows;
}

/** Every precision named in figure data, in report order (for the fixed colour scale). */
export function precisionDomain(...tables: readonly DataRow[][]): string[] {
  const seen = new Set<string>();
  for (const t of tables) for (const r of t) if (typeof r.precision === "string") seen.add(r.precision);
  return [...seen].sort(comparePrecision);
}
