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

/** The chart configuration every figure uses. */
export const CONFIG = {
  font: "system-ui, sans-serif",
  axis: { labelLimit: 240, titleFontWeight: "normal" },
  title: { anchor: "start", subtitleColor: "#444" },
  view: { continuousWidth: 320, continuousHeight: 220 },
} as const;

/** A colour scale over `domain` that gives the paper's precisions their fixed colours. */
export function precisionScale(domain: readonly string[]): { domain: string[]; range: string[] } {
  // Known precisions keep their colour whatever else is present; others share the rest of the palette.
  let next = PRECISION_ORDER.length;
  const range = domain.map((p) => {
    const i = PRECISION_ORDER.indexOf(p);
    return PALETTE[i >= 0 ? i : next++ % PALETTE.length];
  });
  return { domain: [...domain], range };
}

/** A colour encoding by the `precision` field over `domain`. */
export const precisionColour = (domain: readonly string[]) => ({
  field: "precision",
  type: "nominal",
  title: "precision",
  scale: precisionScale(domain),
});

/** An x encoding for epochs (whole numbers only). */
export const EPOCH_X = {
  field: "epoch",
  type: "quantitative",
  title: "epoch",
  axis: { format: "d", tickMinStep: 1 },
} as const;
