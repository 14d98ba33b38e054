/**
 * The report's figures as Vega-Lite specs. Each spec carries its data inline
 * (already aggregated, so the chart draws our means and stds rather than
 * computing its own), and every colour and sort order is fixed, so the same
 * records always give the same drawing. The same spec feeds the interactive
 * chart in the page and the static SVG.
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import { ERRATA, PRINTED_MEANS, tableMeans } from "./paper.ts";
import type { GroupRow, Run } from "./aggregate.ts";
import {
  bandAndLine,
  CONFIG,
  type Figure,
  MAX_FIGURE_WIDTH,
  type OmittedFigure,
  panelGrid,
  precisionScale,
  WIDE_PANEL,
  wrap,
} from "./figure_style.ts";
import type { LoadedTolerance } from "./inputs.ts";
import { toleranceFigure } from "./tolerance_figure.ts";
import { visibleDeep } from "./text.ts";
import { timingConditions } from "./scope.ts";
import { deviceCaption } from "./device.ts";
import { accumulationFigure, epsilonFigure, lostUpdatesFigure } from "./pitfall_figures.ts";
import {
  accuracyData,
  COLUMNS,
  CURVE_METRICS,
  curveData,
  type DataRow,
  differenceData,
  DIFFERENCES,
  MEMORY_CATEGORIES,
  memoryData,
  type Panel,
  precisionDomain,
  RATIOS,
  timeData,
} from "./figure_data.ts";

export type { Figure, OmittedFigure };

/** What the figures are built from. */
export interface FigureInput {
  /** The main runs (figures 1-5); the pitfall experiments' runs are in `pitfalls`. */
  readonly runs: readonly Run[];
  /** Group rows of the main runs. */
  readonly groups: readonly GroupRow[];
  /** Show the paper's Table 5 beside ours. */
  readonly paper: boolean;
  /** Runs of the non-main experiments (Adam epsilon, accumulation). */
  readonly pitfalls: readonly Run[];
  /** Tolerance results in file-name order. */
  readonly tolerance: readonly LoadedTolerance[];
}

const RATIO_COLOURS = ["#6f6f6f", "#b5b5b5"];
const DIFF_COLOURS = ["#4c78a8", "#54a24b"];
const MEMORY_COLOURS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2"];

const only = (source: string, panel: Panel) => ({
  filter: `datum.source === '${source}' && datum.panel === '${panel}'`,
});
const xTitleOf = (source: string) => (source === "ours" ? "model (dataset)" : "model");

/** A view's title: short text, and any longer note as subtitle lines (a long title would widen the view). */
type Title = { readonly text: string; readonly subtitle?: string[] };

/** Makes one view of a figure: its rows of `source` in `panel`, with a title and width. */
type MakeView = (source: string, panel: Panel, title: Title, width: number) => Record<string, unknown>;

/**
 * The panels of figures 1-3, top to bottom: the Table 5 networks we ran, ours and the paper's side by side
 * (ours titled with its data sets, "not CIFAR-10" when so); our small models (not in Table 5); the paper's
 * networks we did not run. A panel with no rows is left out. `rows` lays a pair or a single view out.
 */
function panelLayout(data: readonly DataRow[], make: MakeView, bars: number): Record<string, unknown>[] {
  const rowsOf = (source: string, panel: Panel) =>
    data.filter((d) => d.source === source && d.panel === panel);
  const has = (source: string, panel: Panel) => rowsOf(source, panel).length > 0;
  // About 22 px a bar, at least 200 px, at most `cap` (a pair must fit the figure's width with its legend).
  const width = (source: string, panel: Panel, cap: number) =>
    Math.min(
      cap,
      Math.max(200, new Set(rowsOf(source, panel).map((d) => d.cell)).size * Math.max(1, bars) * 22),
    );
  const pairCap = Math.floor((MAX_FIGURE_WIDTH - 250) / 2);
  const out: Record<string, unknown>[] = [];
  if (has("ours", "table5")) {
    const sets = [...new Set(rowsOf("ours", "table5").map((d) => d.dataset))];
    const other = sets.some((d) => d !== "cifar10")
      ? ", not CIFAR-10: cut runs, see the Table 5 section"
      : "";
    const title = { text: "Ours: Table 5 networks", subtitle: wrap(`${sets.join(", ")}${other}`, 36) };
    const w = Math.max(width("ours", "table5", pairCap), width("paper", "table5", pairCap));
    const ours = make("ours", "table5", title, w);
    out.push(
      has("paper", "table5")
        ? {
          hconcat: [
            ours,
            make("paper", "table5", { text: "Paper: the same networks", subtitle: wrap(PAPER_TITLE, 36) }, w),
          ],
        }
        : ours,
    );
  }
  if (has("ours", "small")) {
    out.push(
      make(
        "ours",
        "small",
        { text: "Ours: small models (not in Table 5)" },
        width("ours", "small", WIDE_PANEL),
      ),
    );
  }
  if (has("paper", "paper")) {
    const text = has("ours", "table5") ? `${PAPER_TITLE}: the networks we did not run` : PAPER_TITLE;
    out.push(make("paper", "paper", { text }, WIDE_PANEL));
  }
  return out;
}

const cellAxis = (title: string) => ({
  field: "cell",
  type: "nominal",
  title,
  sort: null,
  axis: { labelAngle: -30 },
});
const PAPER_TITLE = "Paper, Table 5: CIFAR-10, 100 epochs";

function accuracyFigure(i: FigureInput, precisions: string[]): Figure {
  const data = accuracyData(i.groups, i.paper);
  const yTitle = "final test accuracy (%)";
  const view: MakeView = (source, panel, title, width) => {
    const place = {
      x: cellAxis(xTitleOf(source)),
      xOffset: { field: "precision", type: "nominal", sort: precisions },
    };
    return {
      title,
      width,
      transform: [only(source, panel), { filter: "datum.accMean !== null" }],
      layer: [
        {
          mark: "bar",
          encoding: {
            ...place,
            y: { field: "accMean", type: "quantitative", title: yTitle },
            color: {
              field: "precision",
              type: "nominal",
              title: "precision",
              scale: precisionScale(precisions),
            },
            tooltip: [
              { field: "cell", title: "model" },
              { field: "precision" },
              { field: "accMean", title: "mean %" },
              { field: "accStd", title: "std" },
              { field: "runs" },
            ],
          },
        },
        {
          mark: { type: "errorbar", ticks: true, color: "black" },
          encoding: {
            ...place,
            y: { field: "accLow", type: "quantitative", title: yTitle },
            y2: { field: "accHigh" },
          },
        },
      ],
    };
  };
  const views = panelLayout(data, view, precisions.length);
  return {
    n: 1,
    name: "fig1-accuracy",
    title: "Final test accuracy per model and precision",
    caption: [
      "Bars are the mean final test accuracy over seeds, error bars one sample standard deviation " +
      "(computed by the report, not by the chart). Diverged runs are left out of the mean and counted in the CSV.",
      ...(i.paper
        ? [
          "Ours: mean ± sample std over seeds. The paper's panels are its CIFAR-10 Table 5 (mean ± std), not a " +
          "result of this tool: beside ours for the Table 5 networks we ran, below for the rest; all share one " +
          "scale.",
        ]
        : []),
    ],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: "Final test accuracy",
      // One above the other, on one accuracy scale, so the panels can be compared by eye.
      vconcat: views,
      resolve: { scale: { y: "shared" } },
    } as unknown as TopLevelSpec,
    data,
    columns: COLUMNS.accuracy,
  };
}

function timeFigure(i: FigureInput, precisions: string[]): Figure {
  const data = timeData(i.groups, i.paper);
  const ratios = RATIOS.map(([a, b]) => `${a}/${b}`);
  const colour = {
    field: "series",
    type: "nominal",
    title: "precision / ratio",
    scale: {
      domain: [...precisions, ...ratios],
      range: [...precisionScale(precisions).range, ...RATIO_COLOURS],
    },
  };
  // Our ratios and the paper's are drawn on one scale, so that a ratio of 1.5 looks the same in both.
  const ratioTop = Math.max(1, ...data.filter((d) => d.kind === "ratio").map((d) => Number(d.value)));
  const view = (
    source: string,
    panel: Panel,
    kind: string,
    title: Title,
    yTitle: string,
    width: number,
  ) => ({
    title,
    width,
    transform: [only(source, panel), { filter: `datum.kind === '${kind}'` }],
    layer: [
      {
        mark: "bar",
        encoding: {
          x: cellAxis(source === "ours" ? "model (dataset)" : "model"),
          xOffset: { field: "series", type: "nominal", sort: kind === "ratio" ? ratios : precisions },
          y: {
            field: "value",
            type: "quantitative",
            title: yTitle,
            ...(kind === "ratio" ? { scale: { domain: [0, ratioTop], nice: true } } : {}),
          },
          color: colour,
          tooltip: [{ field: "cell", title: "model" }, { field: "series" }, { field: "value" }, {
            field: "std",
          }],
        },
      },
      // A ratio of 1 is "no speed-up"; the dashed line makes bars above and below it easy to tell apart.
      ...(kind === "ratio"
        ? [{ mark: { type: "rule", strokeDash: [4, 3] }, encoding: { y: { datum: 1 } } }]
        : []),
    ],
  });
  const conditions = timingConditions(i.runs), devices = deviceCaption(i.runs);
  // Each panel of the layout is a pair: its seconds above its ratios.
  const pairOf: MakeView = (source, panel, title, width) => ({
    vconcat: [
      view(
        source,
        panel,
        "seconds",
        { ...title, text: `${title.text}: seconds` },
        "training time (s)",
        width,
      ),
      view(source, panel, "ratio", { ...title, text: `${title.text}: time ratio` }, "time ratio", width),
    ],
  });
  const rows = panelLayout(data, pairOf, precisions.length);
  return {
    n: 2,
    name: "fig2-time",
    title: "Training time and speed-up ratios",
    caption: [
      `How these times were taken: ${conditions}`,
      ...(devices ? [devices] : []),
      "Ours: wall-clock training seconds of a whole run (all its epochs, evaluation excluded), mean over seeds. " +
      "A ratio above 1 means fp16 trained faster.",
      ...(i.paper
        ? [
          `The paper's times are for 100 epochs on the authors' GPU; its printed mean ratios are fp32/fp16 ` +
          `${PRINTED_MEANS.fp32OverFp16}x and mixed/fp16 ${PRINTED_MEANS.mixedOverFp16}x (computed from the table: ` +
          `${tableMeans().fp32OverFp16.toFixed(2)}x and ${tableMeans().mixedOverFp16.toFixed(2)}x).`,
        ]
        : []),
    ],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: { text: "Training time", subtitle: wrap(conditions, 90) },
      vconcat: rows,
      resolve: { scale: { y: "independent" } },
    } as unknown as TopLevelSpec,
    data,
    columns: COLUMNS.time,
  };
}

function differenceFigure(i: FigureInput): Figure {
  const data = differenceData(i.runs, i.paper);
  const comparisons = DIFFERENCES.map(([a, b]) => `${a} - ${b}`);
  const yTitle = "accuracy difference (points)";
  const view: MakeView = (source, panel, title, width) => {
    const place = {
      x: cellAxis(xTitleOf(source)),
      xOffset: { field: "comparison", type: "nominal", sort: comparisons },
    };
    return {
      title,
      width,
      transform: [only(source, panel)],
      layer: [
        {
          mark: "bar",
          encoding: {
            ...place,
            y: { field: "diff", type: "quantitative", title: yTitle },
            color: {
              field: "comparison",
              type: "nominal",
              title: "difference",
              scale: { domain: comparisons, range: DIFF_COLOURS },
            },
            tooltip: [
              { field: "cell", title: "model" },
              { field: "comparison" },
              { field: "diff" },
              { field: "std" },
              { field: "note" },
            ],
          },
        },
        // The paper gives no per-pair spread, so its panel has no error bars (an empty layer only warns).
        ...(source === "ours"
          ? [{
            mark: { type: "errorbar", ticks: true, color: "black" },
            encoding: {
              ...place,
              y: { field: "low", type: "quantitative", title: yTitle },
              y2: { field: "high" },
            },
          }]
          : []),
        { mark: { type: "rule", color: "black" }, encoding: { y: { datum: 0 } } },
      ],
    };
  };
  const views = panelLayout(data, view, comparisons.length);
  const m = tableMeans();
  const errata = ERRATA.map((e) =>
    `${e.model} ${e.field} is printed as ${e.printed} in the paper; ${e.note} (drawn)`
  );
  return {
    n: 3,
    name: "fig3-accuracy-difference",
    title: "Accuracy difference fp16 - fp32 and fp16 - mixed",
    caption: [
      "Ours: final test accuracy differences in percentage points between runs of the same seed and engine, " +
      "mean and sample std over those pairs; the paper's: differences of its means, beside ours for the " +
      "Table 5 networks we ran.",
      ...(i.paper
        ? [
          `Paper: differences of the Table 5 means. Printed means: fp16 - fp32 ${PRINTED_MEANS.fp16MinusFp32}, ` +
          `fp16 - mixed ${PRINTED_MEANS.fp16MinusMixed}; computed from the table: ${
            m.fp16MinusFp32.toFixed(2)
          } ` +
          `and ${m.fp16MinusMixed.toFixed(2)}.`,
          ...errata.map((e) => `Erratum: ${e}.`),
        ]
        : []),
    ],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: i.paper ? { text: "Accuracy difference", subtitle: errata } : "Accuracy difference",
      // One above the other, on one scale of points, so a gap of ours and one of the paper's look alike.
      vconcat: views,
      resolve: { scale: { y: "shared" } },
    } as unknown as TopLevelSpec,
    data,
    columns: COLUMNS.difference,
  };
}

function curveFigure(i: FigureInput, precisions: string[]): Figure {
  const data = curveData(i.runs);
  const cells = [...new Set(i.runs.map((r) => r.cell))];
  const grid = panelGrid(cells.length);
  // One block per metric, its panels wrapped in rows; each panel keeps its own y axis, since the models
  // differ and a panel compares the precisions within it.
  const block = ([, metric]: typeof CURVE_METRICS[number]) => ({
    transform: [{ filter: `datum.metric === ${JSON.stringify(metric)}` }],
    facet: { field: "cell", type: "nominal", title: null, sort: cells },
    columns: grid.columns,
    spec: {
      width: grid.width,
      height: 170,
      layer: bandAndLine(precisions, metric, { scale: { zero: false } }),
    },
    resolve: { scale: { y: "independent" } },
  });
  return {
    n: 4,
    name: "fig4-curves",
    title: "Training curves",
    caption: [
      "Test accuracy and training loss after each epoch: the line is the mean over seeds, the band spans " +
      "the minimum and maximum over seeds. Non-finite values of diverged runs are left out. Each precision " +
      "has its own colour, dash and point shape, so curves that lie on each other stay visible.",
    ],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: "Training curves",
      vconcat: CURVE_METRICS.map(block),
    } as unknown as TopLevelSpec,
    data,
    columns: COLUMNS.curves,
  };
}

function memoryFigure(i: FigureInput, precisions: string[]): Figure {
  const data = memoryData(i.runs);
  const cells = [...new Set(i.runs.map((r) => r.cell))];
  const order = `indexof(${JSON.stringify(MEMORY_CATEGORIES)}, datum.category)`;
  const note = "The paper gives no memory figures.";
  return {
    n: 5,
    name: "fig5-memory",
    title: "Memory per precision",
    caption: [
      "Bytes of one training step by category, from the step graph of the first seed's run of each " +
      "precision (the CSV lists the bytes per storage format).",
      note,
    ],
    spec: {
      config: CONFIG,
      data: { values: data },
      title: { text: "Memory of a training step", subtitle: note },
      transform: [{ calculate: order, as: "stackOrder" }],
      facet: { column: { field: "cell", type: "nominal", title: null, sort: cells } },
      spec: {
        width: { step: 40 },
        height: 220,
        mark: "bar",
        encoding: {
          x: { field: "precision", type: "nominal", sort: precisions, axis: { labelAngle: 0 } },
          y: { field: "bytes", type: "quantitative", title: "bytes", axis: { format: "~s" } },
          color: {
            field: "category",
            type: "nominal",
            title: "category",
            scale: { domain: [...MEMORY_CATEGORIES], range: MEMORY_COLOURS },
          },
          order: { field: "stackOrder", type: "quantitative" },
          tooltip: [{ field: "precision" }, { field: "category" }, { field: "bytes" }, { field: "formats" }],
        },
      },
      // An MLP needs a fraction of a CNN's memory; a shared axis would flatten its bars.
      resolve: { scale: { y: "independent" } },
    } as unknown as TopLevelSpec,
    data,
    columns: COLUMNS.memory,
  };
}

/**
 * Builds the report's nine figures in order: 1-5 from the main runs, 6 from
 * the tolerance results, 7-9 from the pitfall experiments. A figure with
 * nothing to draw keeps its number as an {@linkcode OmittedFigure}, so file
 * names and references stay the same from one runs folder to the next.
 * Every string of every figure (spec, data, captions, tables) passes through
 * {@linkcode visibleDeep}: this is where record text enters vega, and one odd
 * character in one record must not stop the report.
 */
export function buildFigures(i: FigureInput): (Figure | OmittedFigure)[] {
  const acc = accuracyData(i.groups, i.paper);
  const precisions = precisionDomain(acc, curveData(i.runs));
  const figures = [
    accuracyFigure(i, precisions),
    timeFigure(i, precisions),
    differenceFigure(i),
    curveFigure(i, precisions),
    memoryFigure(i, precisions),
    toleranceFigure(i.tolerance, i.runs),
    epsilonFigure(i.pitfalls),
    lostUpdatesFigure(i.runs, precisions),
    accumulationFigure(i.pitfalls),
  ];
  return figures.map(visibleDeep);
}
