/**
 * Figure 6: the paper's error/tolerance lemma on our models. For every test
 * input the scatter puts the error delta against the tolerance Gamma with the
 * line Gamma = 2 delta, above which the fp32 model and its 16-bit counterpart
 * must agree; every disagreement is drawn on top, in its own colour and
 * shape. A disagreement above the line would contradict a theorem, so it is
 * a bug in our numerics and the caption says so in red rather than leaving it
 * to be spotted in the chart.
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import type { Run } from "./aggregate.ts";
import { CONFIG, type Figure, type FigureTable, type OmittedFigure, wrap } from "./figure_style.ts";
import type { Cell } from "./html.ts";
import type { LoadedTolerance, ToleranceResult } from "./inputs.ts";
import {
  BIN_WIDTH,
  CATEGORIES,
  counterpartPrecision,
  LOG_FLOOR,
  SCATTER_LIMIT,
  TOLERANCE_COLUMNS,
  type TolerancePanel,
  tolerancePanels,
} from "./tolerance_data.ts";

const NAME = "fig6-tolerance";
const TITLE = "Error vs tolerance";
const CATEGORY_COLOURS = ["#9ecae9", "#f58518", "#e45756", "#000000"];
const CATEGORY_SHAPES = ["circle", "circle", "cross", "diamond"];
const HISTOGRAM_COLOURS = ["#4c78a8", "#54a24b"];
// Each panel has its own axes; colour and shape too, since the histograms colour by another field.
const INDEPENDENT = {
  scale: { x: "independent", y: "independent", color: "independent", shape: "independent" },
  legend: { color: "independent", shape: "independent" },
};

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
const floorText = LOG_FLOOR.toExponential(0);

function scatter(p: TolerancePanel) {
  const x = {
    field: "delta",
    type: "quantitative",
    title: "delta = max_k |M32_k - M16_k| (log)",
    scale: { type: "log", domain: p.xDomain, nice: false },
  };
  const y = {
    field: "gamma",
    type: "quantitative",
    title: "Gamma = top-1 - top-2 of M32 (log)",
    scale: { type: "log", domain: p.yDomain, nice: false },
  };
  const category = (range: readonly string[]) => ({
    field: "category",
    type: "nominal",
    title: "input",
    scale: { domain: [...CATEGORIES], range: [...range] },
    legend: { orient: "bottom", columns: 1, labelLimit: 320 },
  });
  const points = (extra: object, filter: string) => ({
    data: { name: "points" },
    transform: [{ filter }],
    // No aria labels: they would repeat every field of every point and make up most of the SVG's bytes.
    mark: { type: "point", filled: true, aria: false, ...extra },
    encoding: {
      x,
      y,
      color: category(CATEGORY_COLOURS),
      shape: category(CATEGORY_SHAPES),
      tooltip: [{ field: "i", title: "input" }, { field: "pred32" }, { field: "pred16" }, {
        field: "delta",
      }, { field: "gamma" }],
    },
  });
  // The line's ends are cut to the axes here: vega's clip paths get ids from a counter that runs on
  // through the process, so clipping would make the SVG depend on what was drawn before it.
  const [x0, x1] = [Math.max(p.xDomain[0], p.yDomain[0] / 2), Math.min(p.xDomain[1], p.yDomain[1] / 2)];
  const line = x0 < x1 ? [{ delta: x0, gamma: 2 * x0 }, { delta: x1, gamma: 2 * x1 }] : [];
  return {
    title: [`${p.k}. ${p.cell}`, `fp32 against ${p.counterpart}`],
    width: 320,
    height: 260,
    layer: [
      points({ size: 14, opacity: 0.7 }, `datum.panel === ${p.k}`),
      // Disagreements again, large and outlined on top, so that not one of them hides in the cloud.
      points(
        { size: 120, opacity: 1, stroke: "black", strokeWidth: 0.5 },
        `datum.panel === ${p.k} && indexof(${JSON.stringify(CATEGORIES.slice(2))}, datum.category) >= 0`,
      ),
      // The lemma's line; on log axes Gamma = 2 delta is a straight line one factor of 2 above the diagonal.
      {
        data: { values: line },
        mark: { type: "line", color: "black", strokeDash: [4, 3] },
        encoding: { x, y },
      },
    ],
  };
}

function histogramView(p: TolerancePanel) {
  return {
    title: `${p.k}. log10 of delta and Gamma`,
    width: 260,
    height: 260,
    data: { name: "bins" },
    transform: [{ filter: `datum.panel === ${p.k}` }],
    mark: { type: "bar", opacity: 0.6, binSpacing: 0 },
    encoding: {
      x: { field: "lo", type: "quantitative", title: `log10 (bins of ${BIN_WIDTH})` },
      x2: { field: "hi" },
      y: { field: "count", type: "quantitative", title: "inputs", stack: null },
      // Bars from 0: with a ranged x and no binning, vega-lite would otherwise draw thin ticks at the counts.
      y2: { datum: 0 },
      color: {
        field: "quantity",
        type: "nominal",
        title: "histogram",
        scale: { domain: ["delta", "Gamma"], range: HISTOGRAM_COLOURS },
      },
      tooltip: [{ field: "quantity" }, { field: "lo" }, { field: "hi" }, { field: "count" }],
    },
  };
}

/** The caption sentence of one panel: the lemma's counts in logits space. */
function panelSentence(p: TolerancePanel): string {
  const l = p.result.logits, p16 = counterpartPrecision(p.result);
  const gap = Math.abs(l.accuracy32 - l.accuracy16);
  return `Panel ${p.k} (${p.file}): Gamma > 2 delta on ${l.satisfied} of ${l.count} inputs ` +
    `(${pct(l.satisfiedShare)}); ${l.disagreements} disagreement${l.disagreements === 1 ? "" : "s"}; ` +
    `${l.violations} violation${l.violations === 1 ? "" : "s"}; accuracy ${p.result.reference.precision} ` +
    `${pct(l.accuracy32)}, ${p16} ${pct(l.accuracy16)} (gap ${(100 * gap).toFixed(2)} points); ` +
    `bound ${pct(l.bound)}.`;
}

function alertsOf(p: TolerancePanel): string[] {
  const found = Math.max(p.result.logits.violations, p.violationsInPoints);
  const out: string[] = [];
  if (found > 0) {
    out.push(
      `Bug: panel ${p.k} (${p.file}) has ${found} lemma violation${found === 1 ? "" : "s"} in logits space ` +
        "(a disagreement at Gamma > 2 delta). The lemma is a theorem, so this is an error in the numerics " +
        "or in the analysis, not a finding.",
    );
  }
  if (p.result.probabilities.violations > 0) {
    const n = p.result.probabilities.violations;
    out.push(
      `Bug: panel ${p.k} (${p.file}) has ${n} lemma violation${n === 1 ? "" : "s"} in probabilities space.`,
    );
  }
  return out;
}

function spaceRow(p: TolerancePanel, t: ToleranceResult, space: "logits" | "probabilities"): Cell[] {
  const s = t[space];
  const num = (x: number) => ({ num: (100 * x).toFixed(2) });
  return [
    p.k,
    `${p.cell}: fp32 against ${p.counterpart}`,
    space,
    s.count,
    s.satisfied,
    num(s.satisfiedShare),
    s.disagreements,
    s.violations > 0 ? { html: `<span class="bug">${s.violations}</span>` } : s.violations,
    num(s.accuracy32),
    num(s.accuracy16),
    num(s.bound),
  ];
}

/** Figure 6, or a note that the folder has no tolerance results. */
export function toleranceFigure(
  tolerance: readonly LoadedTolerance[],
  runs: readonly Run[],
): Figure | OmittedFigure {
  if (tolerance.length === 0) {
    return {
      n: 6,
      name: NAME,
      title: TITLE,
      omitted: "This runs folder has no usable tolerance results (tolerance/*.json, written by " +
        "f16repro tolerance or by reproduce), so figure 6 is not drawn.",
    };
  }
  const panels = tolerancePanels(tolerance, runs);
  const notes: string[] = [];
  for (const p of panels) {
    if (p.clamped) notes.push(`panel ${p.k}: ${p.clamped} input${p.clamped === 1 ? "" : "s"} at the floor`);
    if (p.nonFinite) {
      notes.push(
        `panel ${p.k}: ${p.nonFinite} input${p.nonFinite === 1 ? "" : "s"} with a non-finite ` +
          "delta or Gamma, not drawn",
      );
    }
    if (p.thinning > 1) {
      notes.push(
        `panel ${p.k}: more than ${SCATTER_LIMIT} inputs, so the scatter shows every ` +
          `${p.thinning}th input with Gamma > 2 delta and all others (the CSV's drawn column says which)`,
      );
    }
  }
  const alerts = panels.flatMap(alertsOf);
  const table: FigureTable = {
    title: "The lemma in both output spaces (shares in %; the scatter shows logits).",
    headers: [
      "panel",
      "comparison",
      "space",
      "inputs",
      "Gamma > 2 delta",
      "share %",
      "disagreements",
      "violations",
      "acc. fp32 %",
      "acc. 16-bit %",
      "bound %",
    ],
    rows: panels.flatMap((p) => [spaceRow(p, p.result, "logits"), spaceRow(p, p.result, "probabilities")]),
  };
  const subtitle = ["Logits; dashed line: Gamma = 2 delta. Below it the lemma allows a disagreement."];
  return {
    n: 6,
    name: NAME,
    title: TITLE,
    caption: [
      "Each point is one test input: x is the error delta, the largest difference between the logits of " +
      "the fp32 model and of its 16-bit counterpart; y is the tolerance Gamma, the fp32 model's top logit " +
      "minus its second. Above the dashed line Gamma = 2 delta the lemma guarantees the same prediction; " +
      "disagreements (pred16 != pred32) can only lie below it and are drawn as red crosses (listed in the " +
      "CSV, category column). The histograms show log10(delta) and log10(Gamma) of the same inputs.",
      `A log scale cannot show 0: values of delta or Gamma below ${floorText} (0 included) are drawn at ` +
      `${floorText}; the CSV keeps the true values.${notes.length ? ` ${notes.join("; ")}.` : ""}`,
      ...panels.map(panelSentence),
      "The bound is the share of inputs with Gamma <= 2 delta, the most the two models' accuracies can " +
      "differ by; a violation (a disagreement at Gamma > 2 delta) should never occur.",
    ],
    alerts,
    tables: [table],
    spec: {
      config: CONFIG,
      datasets: { points: panels.flatMap((p) => p.drawn), bins: panels.flatMap((p) => p.bins) },
      title: { text: "Error vs tolerance", subtitle: [...subtitle, ...alerts].flatMap((t) => wrap(t, 90)) },
      vconcat: panels.map((p) => ({ hconcat: [scatter(p), histogramView(p)], resolve: INDEPENDENT })),
      resolve: INDEPENDENT,
    } as unknown as TopLevelSpec,
    data: panels.flatMap((p) => p.rows),
    columns: TOLERANCE_COLUMNS,
  };
}
