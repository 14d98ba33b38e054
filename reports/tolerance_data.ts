/**
 * The numbers behind figure 6 (error against tolerance): one row per test
 * input for the CSV, the rows the scatter draws, and the histograms of
 * log10(delta) and log10(Gamma), all computed here so that the chart only
 * draws them. A log scale cannot show 0, so values below a stated floor are
 * drawn at the floor; the CSV keeps the true values.
 *
 * @module
 */

import type { Run } from "./aggregate.ts";
import type { DataRow } from "./figure_data.ts";
import type { LoadedTolerance, ToleranceResult } from "./inputs.ts";

/** Values of delta or Gamma below this are drawn at it (a log scale has no 0). */
export const LOG_FLOOR = 1e-8;
/** Above this many points a panel's scatter is thinned (all inputs near or below the line are kept). */
export const SCATTER_LIMIT = 5000;
/** Width of a histogram bin in log10 units. */
export const BIN_WIDTH = 0.25;

/** Where an input lies with respect to the lemma, in drawing order (later categories are drawn on top). */
export const CATEGORIES = [
  "Gamma > 2 delta",
  "Gamma <= 2 delta, same prediction",
  "disagreement",
  "violation (Gamma > 2 delta)",
] as const;
/** One of {@linkcode CATEGORIES}. */
export type Category = typeof CATEGORIES[number];

/** Columns of figure 6's CSV. */
export const TOLERANCE_COLUMNS = [
  "panel",
  "file",
  "cell",
  "counterpart",
  "space",
  "i",
  "label",
  "pred32",
  "pred16",
  "delta",
  "gamma",
  "category",
  "drawn",
] as const;

/** Six significant digits: enough to read a value, and no float noise in the bytes. */
const sig = (x: number) => Number(x.toPrecision(6));

/** The 16-bit side of a comparison, as a reader would name it. */
export function counterpartLabel(t: ToleranceResult): string {
  const c = t.counterpart;
  return c.mode === "rounded" ? `${c.format}, fp32 weights rounded` : `${c.precision} run ${c.id}, trained`;
}

/** The precision of the 16-bit side, for accuracy labels. */
export const counterpartPrecision = (t: ToleranceResult): string =>
  t.counterpart.mode === "rounded" ? t.counterpart.format : t.counterpart.precision;

/** Everything figure 6 needs about one tolerance file. */
export interface TolerancePanel {
  /** Panel number, from 1, in file-name order. */
  readonly k: number;
  readonly file: string;
  readonly result: ToleranceResult;
  /** The reference model as the other figures label it. */
  readonly cell: string;
  readonly counterpart: string;
  /** One row per input (the CSV). */
  readonly rows: DataRow[];
  /** The rows the scatter draws, drawing order. */
  readonly drawn: DataRow[];
  /** Histogram bins of log10(delta) and log10(Gamma). */
  readonly bins: DataRow[];
  /** Inputs clamped to the floor, and inputs with a non-finite delta or Gamma (not drawn). */
  readonly clamped: number;
  readonly nonFinite: number;
  /** Disagreements at Gamma > 2 delta found in the points (the file's own count is `violations`). */
  readonly violationsInPoints: number;
  /** Every how many inputs with Gamma > 2 delta the scatter keeps one (1: all drawn). */
  readonly thinning: number;
  /** The axis domain of the scatter, powers of ten around the drawn values. */
  readonly xDomain: [number, number];
  readonly yDomain: [number, number];
}

function categoryOf(pred32: number, pred16: number, delta: number | null, gamma: number | null): Category {
  // A non-finite delta means the 16-bit outputs blew up: the lemma promises nothing there.
  const satisfied = delta !== null && gamma !== null && gamma > 2 * delta;
  if (pred32 !== pred16) return satisfied ? CATEGORIES[3] : CATEGORIES[2];
  return satisfied ? CATEGORIES[0] : CATEGORIES[1];
}

/** Histogram of log10 of `values` (already clamped) in bins of {@linkcode BIN_WIDTH} aligned to 0. */
function histogram(k: number, quantity: string, values: readonly number[]): DataRow[] {
  const counts = new Map<number, number>();
  // Integer bin numbers, so bin edges are exact multiples of the width and carry no float noise.
  for (const v of values) {
    const b = Math.floor(Math.log10(v) / BIN_WIDTH);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => a - b).map(([b, count]) => ({
    panel: k,
    quantity,
    lo: sig(b * BIN_WIDTH),
    hi: sig((b + 1) * BIN_WIDTH),
    count,
  }));
}

/** A [10^a, 10^b] domain around `values` (a < b). */
function decades(values: readonly number[]): [number, number] {
  if (values.length === 0) return [LOG_FLOOR, 1];
  // A loop, not Math.min(...values): a large file would exceed the argument limit.
  let min = Infinity, max = -Infinity;
  for (const v of values) (min = Math.min(min, v)), (max = Math.max(max, v));
  const lo = Math.floor(Math.log10(min));
  const hi = Math.max(Math.ceil(Math.log10(max)), lo + 1);
  return [sig(10 ** lo), sig(10 ** hi)];
}

/** Builds the panels of figure 6, one per tolerance file in file-name order. */
export function tolerancePanels(
  tolerance: readonly LoadedTolerance[],
  runs: readonly Run[],
): TolerancePanel[] {
  return tolerance.map(({ file, result }, idx) => {
    const k = idx + 1;
    const ref = runs.find((r) => r.record.id === result.reference.id);
    const cell = ref ? ref.cell : `${result.model} (${result.dataset})`;
    const counterpart = counterpartLabel(result);
    const clamp = (v: number) => sig(Math.max(v, LOG_FLOOR));
    let clamped = 0, nonFinite = 0, violationsInPoints = 0;
    const all = result.logits.points.map((p) => {
      const category = categoryOf(p.pred32, p.pred16, p.delta, p.gamma);
      if (category === CATEGORIES[3]) violationsInPoints++;
      const finite = p.delta !== null && p.gamma !== null;
      if (!finite) nonFinite++;
      else if (p.delta < LOG_FLOOR || p.gamma < LOG_FLOOR) clamped++;
      return { p, category, finite };
    });
    const plain = all.filter((x) => x.finite && x.category === CATEGORIES[0]).length;
    const others = all.filter((x) => x.finite).length - plain;
    // Thin only the inputs the lemma covers; every input near or below the line stays visible.
    const room = Math.max(SCATTER_LIMIT - others, 1);
    const thinning = plain + others > SCATTER_LIMIT ? Math.ceil(plain / room) : 1;
    let seen = 0;
    const rows: DataRow[] = [], drawn: DataRow[] = [];
    for (const { p, category, finite } of all) {
      const keep = finite && (category !== CATEGORIES[0] || seen++ % thinning === 0);
      rows.push({
        panel: k,
        file,
        cell,
        counterpart,
        space: "logits",
        i: p.i,
        label: p.label,
        pred32: p.pred32,
        pred16: p.pred16,
        delta: p.delta === null ? null : sig(p.delta),
        gamma: p.gamma === null ? null : sig(p.gamma),
        category,
        drawn: keep ? "yes" : "no",
      });
      if (keep) {
        drawn.push({
          panel: k,
          i: p.i,
          pred32: p.pred32,
          pred16: p.pred16,
          delta: clamp(p.delta!),
          gamma: clamp(p.gamma!),
          category,
        });
      }
    }
    const rank = (r: DataRow) => CATEGORIES.indexOf(r.category as Category);
    drawn.sort((a, b) => rank(a) - rank(b) || (a.i as number) - (b.i as number));
    const finite = all.filter((x) => x.finite).map((x) => x.p);
    const deltas = finite.map((p) => clamp(p.delta!)), gammas = finite.map((p) => clamp(p.gamma!));
    return {
      k,
      file,
      result,
      cell,
      counterpart,
      rows,
      drawn,
      bins: [...histogram(k, "delta", deltas), ...histogram(k, "Gamma", gammas)],
      clamped,
      nonFinite,
      violationsInPoints,
      thinning,
      xDomain: decades(deltas),
      yDomain: decades(gammas),
    };
  });
}
