/**
 * What every figure of the report shares: the figure type, the chart
 * configuration and the fixed colours. Keeping them in one place is what
 * gives a precision the same colour in every figure, including the pitfall
 * figures that live in their own modules.
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import { PRECISION_ORDER } from "./aggregate.ts";
import type { DataRow } from "./figure_data.ts";
import type { Cell } from "./html.ts";

/** A small table shown under a figure (numbers the chart does not carry, or a per-run status). */
export interface FigureTable {
  /** A sentence above the table (plain text). */
  readonly title: string;
  readonly headers: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
}

/** One figure of the report. */
export interface Figure {
  /** Figure number, from 1. */
  readonly n: number;
  /** File stem, e.g. "fig1-accuracy". */
  readonly name: string;
  /** Heading in the page (plain text). */
  readonly title: string;
  /** Explanation under the figure (plain text paragraphs). */
  readonly caption: readonly string[];
  /** Sentences a reader must not miss, such as a lemma violation (plain text, shown in red). */
  readonly alerts?: readonly string[];
  /** Tables under the figure. */
  readonly tables?: readonly FigureTable[];
  readonly spec: TopLevelSpec;
  /** The figure's data table (also its CSV). */
  readonly data: readonly DataRow[];
  /** The data table's columns in CSV order. */
  readonly columns: readonly string[];
}

/** A figure that has nothing to draw for this runs folder; the page keeps its number and says why. */
export interface OmittedFigure {
  readonly n: number;
  readonly name: string;
  readonly title: string;
  /** Why it is not drawn (a sentence). */
  readonly omitted: string;
}

/** Whether a figure slot holds a drawn figure. */
export const isDrawn = (f: Figure | OmittedFigure): f is Figure => !("omitted" in f);

/** Colours of fp32, fp16, mixed and bf16, then of other precisions in turn. */
export const PALETTE: readonly string[] = [
  "#4c78a8",
  "#e45756",
  "#54a24b",
  "#f58518",
  "#b279a2",
  "#72b7b2",
  "#eeca3b",
  "#9d755d",
  "#bab0ac",
  "#ff9da6",
];

/**
 * The widest a figure may be drawn, in CSS pixels. The page's column is 1200 px; a figure no wider than
 * this fits it with its legend, and print scales the column down as a whole (the page's print style).
 */
export const MAX_FIGURE_WIDTH = 1150;

/** The width of a panel that spans the column, such as the paper's twelve networks. */
export const WIDE_PANEL = 900;

/**
 * The chart configuration every figure uses. Legends sit above the plot, where they never push a figure
 * past the column's right edge.
 */
export const CONFIG = {
  font: "system-ui, sans-serif",
  axis: { labelLimit: 240, titleFontWeight: "normal" },
  title: { anchor: "start", subtitleColor: "#444" },
  view: { continuousWidth: 320, continuousHeight: 220 },
  legend: {
    orient: "top",
    direction: "horizontal",
    // Columns are as wide as the widest label: four of at most 240 px stay inside the column.
    labelLimit: 240,
    titleOrient: "left",
    columns: 4,
    symbolOpacity: 1,
  },
} as const;

/**
 * Panels of `width` px for `count` cells, wrapped so that a row of them (with axes) stays inside
 * {@linkcode MAX_FIGURE_WIDTH}; `columns` is how many go in a row.
 */
export function panelGrid(count: number, wide = 300, narrow = 220): { width: number; columns: number } {
  const width = count <= 3 ? wide : narrow;
  // About 70 px of each panel's share go to its y axis labels, title and padding.
  return { width, columns: Math.max(1, Math.min(count, Math.floor(MAX_FIGURE_WIDTH / (width + 70)))) };
}

/** Splits a sentence into lines of at most about `width` characters (vega does not wrap a title or subtitle). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(" ")) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 1 + word.length <= width) {
      lines[lines.length - 1] = `${last} ${word}`;
    } else lines.push(word);
  }
  return lines;
}

/** Dash patterns of the precisions' lines, in palette order, so lines that lie on each other stay apart. */
const DASHES: readonly (readonly number[])[] = [[1, 0], [7, 3], [2, 2], [7, 3, 2, 3], [4, 4], [1, 3]];
/** Point shapes of the precisions, in palette order. */
const SHAPES: readonly string[] = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down"];

/** A colour scale over `domain` that gives the paper's precisions their fixed colours. */
export function precisionScale(domain: readonly string[]): { domain: string[]; range: string[] } {
  // Known precisions keep their colour whatever else is present; others share the rest of the palette.
  return { domain: [...domain], range: paletteIndices(domain).map((i) => PALETTE[i % PALETTE.length]) };
}

/** Each precision's index in the palette: the paper's four have fixed places, others follow. */
function paletteIndices(domain: readonly string[]): number[] {
  let next = PRECISION_ORDER.length;
  return domain.map((p) => {
    const i = PRECISION_ORDER.indexOf(p);
    return i >= 0 ? i : next++;
  });
}

/**
 * Colour, dash and point shape by precision: curves of precisions that agree lie on each other, and the
 * dashes and shapes keep the one drawn first visible (and tell them apart in grey print).
 */
export function precisionLine(domain: readonly string[]): Record<string, unknown> {
  const idx = paletteIndices(domain);
  const by = (range: readonly unknown[]) => ({
    field: "precision",
    type: "nominal",
    title: "precision",
    scale: { domain: [...domain], range: idx.map((i) => range[i % range.length]) },
  });
  return { color: precisionColour(domain), strokeDash: by(DASHES), shape: by(SHAPES) };
}

/** A colour encoding by the `precision` field over `domain`. */
export const precisionColour = (domain: readonly string[]) => ({
  field: "precision",
  type: "nominal",
  title: "precision",
  scale: precisionScale(domain),
});

/**
 * A band from the minimum to the maximum over seeds and a dashed, pointed line of the mean, by precision:
 * the layers of a training-curve panel. With two or three epochs a curve is a few points, so the points
 * carry as much as the lines.
 */
export function bandAndLine(
  precisions: readonly string[],
  yTitle: string | null,
  y: Record<string, unknown> = {},
): Record<string, unknown>[] {
  const line = precisionLine(precisions);
  return [
    {
      mark: { type: "area", opacity: 0.15 },
      encoding: {
        x: EPOCH_X,
        y: { field: "min", type: "quantitative", title: yTitle, ...y },
        y2: { field: "max" },
        color: line.color,
      },
    },
    {
      mark: { type: "line", point: { filled: true, size: 45 }, strokeWidth: 2 },
      encoding: {
        x: EPOCH_X,
        y: { field: "mean", type: "quantitative", title: yTitle, ...y },
        ...line,
        tooltip: [{ field: "precision" }, { field: "epoch" }, { field: "mean" }, { field: "min" }, {
          field: "max",
        }],
      },
    },
  ];
}

/** An x encoding for epochs (whole numbers only). */
export const EPOCH_X = {
  field: "epoch",
  type: "quantitative",
  title: "epoch",
  axis: { format: "d", tickMinStep: 1 },
} as const;
