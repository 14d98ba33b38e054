/**
 * Figures 7-9: the known pitfalls of standalone fp16 measured on our runs.
 * Adam's default epsilon is a subnormal in fp16 (figure 7), updates smaller
 * than half an ulp of a weight are lost when the weights are stored in 16 bits
 * (figure 8), and sums accumulated in fp16 lose what GPU kernels keep by
 * accumulating in fp32 (figure 9). The epsilon and accumulation runs come from
 * their own experiments of matrix.json and never enter figures 1-5; a figure
 * without runs keeps its number and says why it is not drawn.
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import { byString, comparePrecision, type Run } from "./aggregate.ts";
import { CURVE_METRICS } from "./figure_data.ts";
import {
  bandAndLine,
  CONFIG,
  EPOCH_X,
  type Figure,
  type FigureTable,
  type OmittedFigure,
  panelGrid,
  precisionColour,
  precisionLine,
} from "./figure_style.ts";
import type { Cell } from "./html.ts";
import { timingConditions } from "./scope.ts";
import {
  accumulationData,
  compareVariant,
  epsilonData,
  finalAccuracyRounded,
  lostUpdatesData,
  ofKind,
  PITFALL_COLUMNS,
  sortPitfallRuns,
} from "./pitfall_data.ts";

const distinct = (xs: readonly unknown[]) => [...new Set(xs.map(String))];
const fmt = (x: unknown, digits: number): Cell => (typeof x === "number" ? { num: x.toFixed(digits) } : null);

/** What happened to a run, in words: completed, or where and why it diverged. */
export function statusText(r: Run): string {
  const d = r.record.divergence;
  if (r.record.status === "completed") return "completed";
  return d ? `diverged at epoch ${d.epoch}, step ${d.step}: ${d.reason}` : "diverged";
}

/** Figure 7: Adam epsilon in standalone fp16, or a note that there are no epsilon runs. */
export function epsilonFigure(pitfalls: readonly Run[]): Figure | OmittedFigure {
  const base = { n: 7, name: "fig7-adam-epsilon", title: "Adam epsilon in standalone fp16" };
  const runs = sortPitfallRuns(ofKind(pitfalls, "epsilon"));
  if (runs.length === 0) {
    return {
      ...base,
      omitted: "This runs folder has no records of an Adam-epsilon experiment (matrix.json lists none), " +
        "so figure 7 is not drawn.",
    };
  }
  const data = epsilonData(runs);
  const variants = distinct(runs.map((r) => r.experiment.variant)).sort(compareVariant);
  const precisions = distinct(runs.map((r) => r.record.config.precision)).sort(comparePrecision);
  const diverged = runs.filter((r) => r.record.status === "diverged").length;
  const table: FigureTable = {
    title: "Every run of the experiment: final test accuracy in % and how it ended.",
    headers: ["variant", "model (dataset)", "precision", "seed", "final test acc. %", "status"],
    rows: runs.map((r) => [
      r.experiment.variant,
      r.cell,
      r.record.config.precision,
      r.record.config.seed,
      fmt(finalAccuracyRounded(r), 2),
      statusText(r),
    ]),
  };
  return {
    ...base,
    caption: [
      "Adam in fp32 and standalone fp16 with different epsilons (one column each): training loss and test " +
      "accuracy after each epoch, mean over seeds. Adam's usual epsilon 1e-7 is a subnormal in fp16 " +
      "(the smallest normal is 6.1e-5), and the second moment g^2 underflows once |g| < ~2.4e-4, so " +
      "m/(sqrt(v)+eps) can overflow; epsilons of 1e-4 to 1e-3 avoid it.",
      `${diverged} of ${runs.length} runs diverged; their non-finite epochs are not drawn (see the table). ` +
      "These runs use Adam, so they are kept out of figures 1-5 and the summary.",
    ],
    tables: [table],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: {
        text: "Adam epsilon in standalone fp16",
        subtitle: "one column per epsilon variant; the columns share their scales (loss on a log scale)",
      },
      // One block per metric with its variants side by side on one shared scale, so a 1-point gap and a
      // collapse of 65 points look as different as they are.
      vconcat: CURVE_METRICS.map(([field, metric]) => ({
        transform: [{ filter: `datum.metric === ${JSON.stringify(metric)}` }],
        facet: { field: "variant", type: "nominal", title: null, sort: variants },
        columns: panelGrid(variants.length, 260, 200).columns,
        spec: {
          width: panelGrid(variants.length, 260, 200).width,
          height: 160,
          mark: { type: "line", point: { filled: true, size: 45 }, strokeWidth: 2 },
          encoding: {
            x: EPOCH_X,
            y: {
              field: "mean",
              type: "quantitative",
              title: metric,
              scale: field === "trainLoss" ? { type: "log" } : { zero: false },
            },
            ...precisionLine(precisions),
            tooltip: [{ field: "variant" }, { field: "precision" }, { field: "epoch" }, { field: "mean" }, {
              field: "runs",
            }],
          },
        },
        resolve: { scale: { y: "shared" } },
      })),
    } as unknown as TopLevelSpec,
    data,
    columns: PITFALL_COLUMNS.epsilon,
  };
}

/** Figure 8: lost updates per epoch of the main runs, or a note that no record has them. */
export function lostUpdatesFigure(
  runs: readonly Run[],
  precisions: readonly string[],
): Figure | OmittedFigure {
  const base = { n: 8, name: "fig8-lost-updates", title: "Lost updates" };
  const data = lostUpdatesData(runs);
  if (data.length === 0) {
    return {
      ...base,
      omitted: "No main run record has lost-update counts (records written before they were measured lack " +
        "them, and plain SGD without momentum has none), so figure 8 is not drawn.",
    };
  }
  const cells = distinct(data.map((d) => d.cell));
  const presentSet = new Set(data.map((d) => d.precision));
  const counted = new Set(data.map((d) => JSON.stringify([d.cell, d.precision])));
  const uncounted = runs.filter((r) => !counted.has(JSON.stringify([r.cell, r.record.config.precision])));
  const present = precisions.filter((p) => presentSet.has(p));
  return {
    ...base,
    caption: [
      "Share of parameter elements whose stored value did not change although the optimizer's step for them " +
      "was non-zero (w + dw == w), mean over an epoch's steps; the line is the mean over seeds, the band " +
      "spans their minimum and maximum. In fp16 an update smaller than half an ulp of the weight is lost.",
      "Mixed precision applies every update to its fp32 master weights, so it keeps updates that standalone " +
      "fp16 and bf16, which store the weights in 16 bits, lose.",
      ...(uncounted.length
        ? [
          `${uncounted.length} main run${uncounted.length === 1 ? "" : "s"} of groups without lost-update ` +
          "counts (older records or plain SGD) are not drawn.",
        ]
        : []),
    ],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: { text: "Lost updates", subtitle: "the panels share their scale" },
      facet: { field: "cell", type: "nominal", title: null, sort: cells },
      columns: panelGrid(cells.length).columns,
      spec: {
        width: panelGrid(cells.length).width,
        height: 180,
        layer: bandAndLine(present, "lost updates (% of elements)"),
      },
      // Every panel measures the same share, so one scale lets models be compared.
      resolve: { scale: { y: "shared" } },
    } as unknown as TopLevelSpec,
    data,
    columns: PITFALL_COLUMNS.lostUpdates,
  };
}

/** Figure 9: fp32 against fp16 accumulation, or a note that there are no accumulation runs. */
export function accumulationFigure(pitfalls: readonly Run[]): Figure | OmittedFigure {
  const base = { n: 9, name: "fig9-accumulation", title: "Accumulation" };
  const data = accumulationData(pitfalls);
  if (data.length === 0) {
    return {
      ...base,
      omitted: "This runs folder has no records of an accumulation experiment (matrix.json lists none), " +
        "so figure 9 is not drawn.",
    };
  }
  const precisions = distinct(data.map((d) => d.precision)).sort(comparePrecision);
  const cells = distinct(data.map((d) => d.cell)).sort(byString);
  const view = (field: string, title: string) => ({
    title,
    width: 300,
    mark: "bar",
    encoding: {
      y: { field: "cell", type: "nominal", title: null, sort: cells },
      yOffset: { field: "precision", type: "nominal", sort: precisions },
      x: { field, type: "quantitative", title },
      // Precision strings here are whole policies; the default label limit would cut them.
      color: { ...precisionColour(precisions), legend: { labelLimit: 400 } },
      tooltip: [{ field: "precision" }, { field }, { field: "runs" }, { field: "diverged" }],
    },
  });
  const table: FigureTable = {
    title: "Mean over seeds; diverged runs are left out of the accuracy.",
    headers: ["model (dataset)", "precision", "runs", "diverged", "acc. %", "std", "train s"],
    rows: data.map((d) => [
      d.cell,
      d.precision,
      d.runs,
      d.diverged,
      fmt(d.accMean, 2),
      fmt(d.accStd, 2),
      fmt(d.trainSecondsMean, 3),
    ]),
  };
  return {
    ...base,
    caption: [
      "Standalone fp16 whose sums (matrix products, convolutions, reductions) accumulate in fp32, as GPU " +
      "kernels do, against sums accumulated in fp16: final test accuracy and training seconds per precision " +
      "string, mean over seeds.",
      `How these times were taken: ${timingConditions(ofKind(pitfalls, "accumulation"))}`,
      "These runs are kept out of figures 1-5 and the summary.",
    ],
    tables: [table],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: "Accumulation",
      hconcat: [
        { ...view("accMean", "final test accuracy (%)"), transform: [{ filter: "datum.accMean !== null" }] },
        view("trainSecondsMean", "training time (s)"),
      ],
    } as unknown as TopLevelSpec,
    data,
    columns: PITFALL_COLUMNS.accumulation,
  };
}
