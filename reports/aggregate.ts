/**
 * Turns run records into the rows that the figures, CSV files and tables
 * show. Every statistic is computed here (mean and sample standard deviation
 * over seeds), not by the chart library, so the numbers in the SVG, the CSV
 * and the page are the same numbers, and rows come out in one fixed order
 * whatever order the records were read in.
 *
 * @module
 */

import { engineLabel } from "./engine_label.ts";
import type { LoadedRecord } from "./load.ts";
import type { ExperimentKind, Matrix } from "./inputs.ts";
import type { RunRecord } from "../lib/record/schema.ts";

/** Precisions in the order the paper discusses them; any other precision string sorts after these. */
export const PRECISION_ORDER: readonly string[] = ["fp32", "fp16", "mixed", "bf16"];

/** A record with the labels the report groups it by. */
export interface Run {
  readonly file: string;
  readonly record: RunRecord;
  /** The model as a reader knows it, e.g. "mlp 784-128-10" or "cnn". */
  readonly model: string;
  /** Model label and dataset, the unit every figure has one panel or bar group for. */
  readonly cell: string;
  /** The experiment that matrix.json lists the record under; main when it lists it nowhere. */
  readonly experiment: RunExperiment;
}

/** Which experiment a run belongs to. */
export interface RunExperiment {
  /** The experiment's name in matrix.json; "" when the record is not listed. */
  readonly name: string;
  readonly kind: ExperimentKind;
  /** The variant label, e.g. "epsilon 1e-7"; "" for main runs. */
  readonly variant: string;
}

/** The experiment of records that matrix.json does not list (or when there is no usable matrix.json). */
const UNLISTED: RunExperiment = { name: "", kind: "main", variant: "" };

/** Whether a run belongs to the main comparison (figures 1-5 and the summary). */
export const isMain = (r: Run): boolean => r.experiment.kind === "main";

/** Accuracy and time of one (model, dataset, setting, precision) group over its seeds. */
export interface GroupRow {
  readonly model: string;
  readonly dataset: string;
  /** Epochs of the setting (a diverged run may have stopped earlier). */
  readonly epochs: number;
  /** Training and test examples used, from the dataset provenance (or the config's limit); null if unknown. */
  readonly trainExamples: number | null;
  readonly testExamples: number | null;
  readonly cell: string;
  readonly precision: string;
  readonly engines: string;
  readonly seeds: string;
  /** Runs in the group. */
  readonly runs: number;
  /** Runs that diverged (left out of the accuracy statistics). */
  readonly diverged: number;
  /** Final test accuracy in %, over completed runs. */
  readonly accMean: number | null;
  readonly accStd: number | null;
  readonly trainSecondsMean: number;
  readonly trainSecondsStd: number | null;
}

/** Mean; null for no values. */
export function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Sample standard deviation (n - 1); null for fewer than two values. */
export function sampleStd(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs)!;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * Rounds to `digits` decimals so that chart data and CSV cells carry no
 * float noise; -0 becomes 0 so that it prints the same as 0.
 */
export function round(x: number, digits: number): number {
  const r = Number(x.toFixed(digits));
  return Object.is(r, -0) ? 0 : r;
}

/** Rounds, passing null through. */
export const roundOrNull = (x: number | null, digits: number): number | null =>
  x === null ? null : round(x, digits);

/** Compares strings by code unit, independent of the locale of the machine. */
export const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sort rank of a precision: the paper's four first, then others by name. */
export function comparePrecision(a: string, b: string): number {
  const ia = PRECISION_ORDER.indexOf(a), ib = PRECISION_ORDER.indexOf(b);
  if (ia >= 0 || ib >= 0) return (ia < 0 ? Infinity : ia) - (ib < 0 ? Infinity : ib) || 0;
  return byString(a, b);
}

/**
 * The label of a model. An MLP is named by its layer widths; the input width
 * is not in the config, so it is solved from the parameter count (ten classes
 * in every dataset here), and left out when the count does not fit.
 */
export function modelLabel(r: RunRecord): string {
  const { model, hidden } = r.config;
  if (model !== "mlp") return hidden.length ? `${model} ${hidden.join("-")}` : model;
  const classes = 10;
  const widths = [...hidden, classes];
  let rest = 0;
  for (let i = 1; i < widths.length; i++) rest += widths[i - 1] * widths[i] + widths[i];
  const input = ((r.parameterCount ?? NaN) - rest - widths[0]) / widths[0];
  return Number.isInteger(input) && input > 0
    ? `mlp ${[input, ...widths].join("-")}`
    : `mlp ${widths.join("-")}`;
}

function compareRuns(a: Run, b: Run): number {
  const ca = a.record.config, cb = b.record.config;
  return byString(a.model, b.model) || byString(ca.dataset, cb.dataset) ||
    comparePrecision(ca.precision, cb.precision) || ca.seed - cb.seed || byString(ca.engine, cb.engine) ||
    byString(a.record.id, b.record.id) || byString(a.file, b.file);
}

/**
 * Labels records with their model and experiment and sorts them by model,
 * dataset, precision, seed, engine and id. A record that the matrix lists
 * more than once belongs to the first experiment listing it.
 */
export function toRuns(loaded: readonly LoadedRecord[], matrix: Matrix | null = null): Run[] {
  const experiments = new Map<string, RunExperiment>();
  for (const e of matrix?.experiments ?? []) {
    for (const c of e.cells) {
      if (!experiments.has(c.id)) experiments.set(c.id, { name: e.name, kind: e.kind, variant: c.variant });
    }
  }
  // Settings are compared within each experiment (pitfall experiments differ from the main one by design).
  const byExperiment = new Map<string, RunRecord[]>();
  for (const { record } of loaded) {
    const name = (experiments.get(record.id) ?? UNLISTED).name;
    byExperiment.set(name, [...(byExperiment.get(name) ?? []), record]);
  }
  const suffixes = new Map<string, string>();
  for (const rs of byExperiment.values()) for (const [id, sfx] of settingSuffixes(rs)) suffixes.set(id, sfx);
  return loaded.map(({ file, record }) => {
    const model = modelLabel(record);
    const experiment = experiments.get(record.id) ?? UNLISTED;
    const cell = `${model} (${record.config.dataset})${suffixes.get(record.id) ?? ""}`;
    return { file, record, model, cell, experiment };
  }).sort(compareRuns);
}

/**
 * Whether the record's engine guarantees results bit-identical to ref (as the record's own engine
 * manifest says): runs of such engines are the same computation, whichever of them ran it.
 */
export function bitExactWithRef(r: RunRecord): boolean {
  const engine = r.environment.engine as { capabilities?: { bitExactWithRef?: unknown } } | undefined;
  return engine?.capabilities?.bitExactWithRef === true;
}

/**
 * The config fields that tell runs of one model and dataset apart: everything but seed and precision, and
 * the engine only when it is not bit-exact with ref (its numbers differ, so it is another setting).
 */
function setting(r: RunRecord): Record<string, string> {
  // Within an experiment the variant flags (e.g. Adam's epsilon) are meant to differ; they stay in the
  // label only when they are the sole difference, which is how a variant shows.
  const { seed: _s, precision: _p, policy: _q, engine, optimizer, ...rest } = r.config;
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...rest, ...optimizer })) flat[k] = JSON.stringify(v);
  flat.engine = bitExactWithRef(r) ? "exact" : engine;
  return flat;
}

/**
 * Runs of the same model and dataset but another setting (epochs, limits, batch, optimizer...) must not be
 * averaged together as if they were seeds, so when a folder mixes settings, each group's cell label gets the
 * fields that differ, e.g. " [epochs 3]". A folder with one setting per model keeps plain labels.
 */
function settingSuffixes(records: readonly RunRecord[]): Map<string, string> {
  const byCell = new Map<string, RunRecord[]>();
  for (const r of records) {
    const k = `${modelLabel(r)}|${r.config.dataset}`;
    byCell.set(k, [...(byCell.get(k) ?? []), r]);
  }
  const out = new Map<string, string>();
  for (const rs of byCell.values()) {
    const settings = rs.map(setting);
    const keys = Object.keys(settings[0]).filter((k) => settings.some((s) => s[k] !== settings[0][k]));
    if (keys.length === 0) continue;
    rs.forEach((r, i) =>
      out.set(r.id, ` [${keys.sort(byString).map((k) => `${k} ${settings[i][k]}`).join(", ")}]`)
    );
  }
  return out;
}

/**
 * The lost-update share of an epoch, or null: records written before the
 * field existed lack it, and plain SGD writes null.
 */
export function lostUpdatesOf(epoch: object): number | null {
  const v = (epoch as { lostUpdates?: unknown }).lostUpdates;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Splits sorted runs into consecutive groups with the same key, keeping their order. */
export function groupBy<T>(items: readonly T[], key: (t: T) => string): [string, T[]][] {
  const out = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = out.get(k);
    if (list) list.push(t);
    else out.set(k, [t]);
  }
  return [...out];
}

/** The key of a (model, dataset, precision) group. */
export const groupKey = (r: Run): string => JSON.stringify([r.cell, r.record.config.precision]);

/** Final test accuracy in %, null when the run diverged or has no accuracy. */
export function finalAccuracy(r: Run): number | null {
  const a = r.record.final.testAccuracy;
  return r.record.status === "completed" && typeof a === "number" ? a * 100 : null;
}

/** The examples of a split a record used: the provenance's count, else the config's limit, else null. */
function examples(r: RunRecord, split: "train" | "test"): number | null {
  const counted = r.dataset[`${split}Count`];
  if (typeof counted === "number") return counted;
  return split === "train" ? r.config.trainLimit : r.config.testLimit;
}

/**
 * One row per (cell, precision) with mean and sample std over seeds. A cell is a model, dataset and
 * setting ({@linkcode toRuns} labels runs of other settings apart), so no row averages two settings.
 */
export function groupRows(runs: readonly Run[]): GroupRow[] {
  return groupBy(runs, groupKey).map(([, g]) => {
    const c = g[0].record.config;
    const accs = g.map(finalAccuracy).filter((a): a is number => a !== null);
    const secs = g.map((r) => r.record.timings.trainSeconds);
    return {
      model: g[0].model,
      dataset: c.dataset,
      epochs: c.epochs,
      trainExamples: examples(g[0].record, "train"),
      testExamples: examples(g[0].record, "test"),
      cell: g[0].cell,
      precision: c.precision,
      engines: [...new Set(g.map((r) => engineLabel(r.record)))].sort(byString).join(" "),
      seeds: g.map((r) => r.record.config.seed).join(" "),
      runs: g.length,
      diverged: g.filter((r) => r.record.status === "diverged").length,
      accMean: mean(accs),
      accStd: sampleStd(accs),
      trainSecondsMean: mean(secs)!,
      trainSecondsStd: sampleStd(secs),
    };
  });
}
