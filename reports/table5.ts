/**
 * The paper's Table 5 reproduced: one entry per Table 5 network, the paper's fp16/fp32/mixed accuracy and
 * times (reports/paper.ts, data from PAPER.md) beside ours (run records only) for every setting we ran it
 * in, with the differences fp16 - fp32 and fp16 - mixed and whether ours lie within our seeds' spread. A
 * network we did not run is listed as not run, never left out; a setting that is not Table 5's (another
 * data set, fewer epochs or examples, another batch) says how it differs on its own line.
 *
 * @module
 */

import {
  byString,
  finalAccuracy,
  groupBy,
  mean,
  round,
  roundOrNull,
  type Run,
  sampleStd,
} from "./aggregate.ts";
import { engineCaveat } from "./engine_label.ts";
import { type Cell, para, section, table } from "./html.ts";
import { ERRATA, OUR_MODEL, type PaperRow, TABLE5 } from "./paper.ts";

/** The precisions of Table 5, in its column order. */
export const TABLE5_PRECISIONS = ["fp16", "fp32", "mixed"] as const;
type Precision = (typeof TABLE5_PRECISIONS)[number];

/** Table 5's setting, against which a run's cuts are named. */
export const TABLE5_SETTING = {
  dataset: "cifar10",
  epochs: 100,
  batch: 256,
  trainExamples: 50000,
  testExamples: 10000,
} as const;

/** Our final accuracies of one precision in one setting. */
export interface OursAccuracy {
  readonly mean: number | null;
  /** Sample std over the completed seeds; null for fewer than two. */
  readonly std: number | null;
  readonly completed: number;
  readonly runs: number;
  readonly trainSecondsMean: number | null;
}

/** One of our differences (percentage points) and whether it lies within our seeds' spread. */
export interface OursDifference {
  readonly comparison: "fp16 - fp32" | "fp16 - mixed";
  /** Mean over seeds of the paired difference (same seed and engine); null when no pair completed. */
  readonly diff: number | null;
  readonly pairs: number;
  /** The seeds' spread: the larger sample std of the two precisions' accuracies; null below two seeds. */
  readonly spread: number | null;
  /** |diff| <= spread; null when either is unknown. */
  readonly within: boolean | null;
}

/** Our runs of one Table 5 network in one setting. */
export interface OursSetting {
  readonly cell: string;
  readonly dataset: string;
  readonly epochs: number;
  readonly batch: number;
  readonly trainExamples: number | null;
  readonly testExamples: number | null;
  /** The engines that ran it, by name, sorted. */
  readonly engines: readonly string[];
  /** What each of them guarantees when that is not ref's bits, by engine name. */
  readonly caveats: Readonly<Record<string, string>>;
  /** How the setting differs from Table 5's ("" when it is Table 5's). */
  readonly cut: string;
  readonly acc: Readonly<Record<Precision, OursAccuracy | null>>;
  readonly differences: readonly OursDifference[];
}

/** One Table 5 network: the paper's row and ours (empty: not run). */
export interface Table5Entry {
  readonly paper: PaperRow;
  readonly model: string;
  readonly ours: readonly OursSetting[];
}

const count = (n: number) => n.toLocaleString("en-US");

/** How a run's setting differs from Table 5's, in words; "" when it does not. */
export function cutOf(
  s: Omit<OursSetting, "cut" | "acc" | "differences" | "cell" | "engines" | "caveats">,
): string {
  const t = TABLE5_SETTING, parts: string[] = [];
  if (s.dataset !== t.dataset) parts.push(`${s.dataset}, not CIFAR-10`);
  if (s.epochs !== t.epochs) parts.push(`${s.epochs} epoch${s.epochs === 1 ? "" : "s"}, not ${t.epochs}`);
  if (s.trainExamples !== t.trainExamples) {
    parts.push(`${s.trainExamples === null ? "unknown" : count(s.trainExamples)} training examples`);
  }
  if (s.testExamples !== t.testExamples) {
    parts.push(`${s.testExamples === null ? "unknown" : count(s.testExamples)} test examples`);
  }
  if (s.batch !== t.batch) parts.push(`batch ${s.batch}, not ${t.batch}`);
  return parts.length ? `cut: ${parts.join("; ")}` : "";
}

function examplesOf(r: Run, split: "train" | "test"): number | null {
  const counted = r.record.dataset[`${split}Count`];
  if (typeof counted === "number") return counted;
  return split === "train" ? r.record.config.trainLimit : r.record.config.testLimit;
}

function accuracyOf(rs: readonly Run[]): OursAccuracy | null {
  if (rs.length === 0) return null;
  const accs = rs.map(finalAccuracy).filter((a): a is number => a !== null);
  return {
    mean: mean(accs),
    std: sampleStd(accs),
    completed: accs.length,
    runs: rs.length,
    trainSecondsMean: mean(rs.map((r) => r.record.timings.trainSeconds)),
  };
}

function differenceOf(
  rs: readonly Run[],
  acc: OursSetting["acc"],
  p: Precision,
  q: Precision,
): OursDifference {
  const key = (r: Run) => JSON.stringify([r.record.config.seed, r.record.config.engine]);
  const of = (precision: Precision) =>
    new Map(
      rs.filter((r) => r.record.config.precision === precision && finalAccuracy(r) !== null)
        .map((r) => [key(r), finalAccuracy(r)!]),
    );
  const a = of(p), b = of(q);
  const diffs = [...a].filter(([k]) => b.has(k)).map(([k, v]) => v - b.get(k)!);
  const sp = acc[p]?.std ?? null, sq = acc[q]?.std ?? null;
  const spread = sp === null || sq === null ? null : Math.max(sp, sq);
  const diff = mean(diffs);
  return {
    comparison: `${p} - ${q}` as OursDifference["comparison"],
    diff,
    pairs: diffs.length,
    spread,
    within: diff === null || spread === null ? null : Math.abs(diff) <= spread,
  };
}

/** Our settings of one model from the main runs, in cell order. */
function oursOf(runs: readonly Run[], model: string): OursSetting[] {
  const mine = runs.filter((r) => r.record.config.model === model);
  return groupBy(mine, (r) => r.cell).map(([cell, rs]) => {
    const c = rs[0].record.config;
    const base = {
      dataset: c.dataset,
      epochs: c.epochs,
      batch: c.batch,
      trainExamples: examplesOf(rs[0], "train"),
      testExamples: examplesOf(rs[0], "test"),
    };
    const acc = Object.fromEntries(
      TABLE5_PRECISIONS.map((p) => [p, accuracyOf(rs.filter((r) => r.record.config.precision === p))]),
    ) as Record<Precision, OursAccuracy | null>;
    return {
      ...base,
      cell,
      engines: [...new Set(rs.map((r) => r.record.config.engine))].sort(byString),
      caveats: Object.fromEntries(
        rs.flatMap((r) => {
          const why = engineCaveat(r.record);
          return why === undefined ? [] : [[r.record.config.engine, why]];
        }),
      ),
      cut: cutOf(base),
      acc,
      differences: [differenceOf(rs, acc, "fp16", "fp32"), differenceOf(rs, acc, "fp16", "mixed")],
    };
  });
}

/** The Table 5 view of the main runs: every Table 5 network in the paper's order. */
export function table5View(runs: readonly Run[]): Table5Entry[] {
  return TABLE5.map((paper) => {
    const model = OUR_MODEL[paper.model];
    return { paper, model, ours: oursOf(runs, model) };
  });
}

const fixed = (x: number | null, digits: number) => (x === null ? "-" : x.toFixed(digits));
const signed = (x: number) => `${x > 0 ? "+" : ""}${x.toFixed(2)}`;
const num = (text: string): Cell => ({ num: text });

function paperCells(r: PaperRow): Cell[] {
  const diff = (p: Precision, q: Precision, field: string) => {
    const e = ERRATA.find((x) => x.model === r.model && x.field === field);
    const d = signed(round(r.acc[p][0] - r.acc[q][0], 2));
    return e ? `${d} (printed ${e.printed})` : num(d);
  };
  return [
    ...TABLE5_PRECISIONS.map((p) => num(`${r.acc[p][0].toFixed(1)} ± ${r.acc[p][1].toFixed(1)}`)),
    ...TABLE5_PRECISIONS.map((p) => num(String(r.seconds[p]))),
    diff("fp16", "fp32", "FP16-FP32"),
    diff("fp16", "mixed", "FP16-MP"),
  ];
}

// Long cells are plain text, which may wrap on a printed page; short numbers are right-aligned numbers.
function oursCells(s: OursSetting): Cell[] {
  const acc = (a: OursAccuracy | null) =>
    a === null
      ? "not run"
      : a.mean === null
      ? `diverged (${a.runs})`
      : `${a.mean.toFixed(1)} ± ${fixed(a.std, 1)} (${a.completed} of ${a.runs})`;
  const secs = (
    a: OursAccuracy | null,
  ) => (a?.trainSecondsMean == null ? "-" : num(a.trainSecondsMean.toFixed(0)));
  const diff = (d: OursDifference) => {
    if (d.diff === null) return "-";
    if (d.within === null) return `${signed(d.diff)} (one seed: no spread)`;
    return `${signed(d.diff)} (${d.within ? "within" : "outside"} spread ${d.spread!.toFixed(2)})`;
  };
  return [
    ...TABLE5_PRECISIONS.map((p) => acc(s.acc[p])),
    ...TABLE5_PRECISIONS.map((p) => secs(s.acc[p])),
    ...s.differences.map(diff),
  ];
}

/**
 * What our setting is, for the table's setting column. The page states each engine's caveat once, under
 * its table; `caveats` puts them in the text itself (a CSV row stands alone).
 */
export function settingText(s: OursSetting, options: { caveats?: boolean } = {}): string {
  const ex = (n: number | null) => (n === null ? "?" : count(n));
  const engines = s.engines.map((e) => (options.caveats && s.caveats[e] ? `${e} (${s.caveats[e]})` : e))
    .join(" ");
  return `${s.dataset}, ${s.epochs} epoch${s.epochs === 1 ? "" : "s"}, ${ex(s.trainExamples)}/` +
    `${ex(s.testExamples)} examples, batch ${s.batch}, ${engines}${s.cut ? ` (${s.cut})` : ""}`;
}

const HEADERS = [
  "network",
  "source and setting",
  "fp16 acc. %",
  "fp32 acc. %",
  "mixed acc. %",
  "fp16 s",
  "fp32 s",
  "mixed s",
  "fp16 - fp32",
  "fp16 - mixed",
];

/** The Table 5 section of the page. */
export function table5Section(entries: readonly Table5Entry[]): string {
  const rows: Cell[][] = [];
  for (const e of entries) {
    rows.push([
      e.paper.model,
      "paper: CIFAR-10, 100 epochs, batch 256, the authors' GPU",
      ...paperCells(e.paper),
    ]);
    if (e.ours.length === 0) rows.push([e.model, "ours: not run", ...HEADERS.slice(2).map(() => "not run")]);
    for (const s of e.ours) rows.push([e.model, `ours: ${settingText(s)}`, ...oursCells(s)]);
  }
  const ran = entries.filter((e) => e.ours.length > 0).length;
  const caveats = new Map(entries.flatMap((e) => e.ours.flatMap((s) => Object.entries(s.caveats))));
  const caveatNote = [...caveats].sort(([a], [b]) => byString(a, b)).map(([e, why]) =>
    `${e} is not bit-exact with ref: ${why}.`
  ).join(" ");
  return section("table5", "Table 5: the paper's CIFAR-10 networks, theirs and ours", [
    para(
      `${ran} of ${entries.length} Table 5 networks have runs here. Accuracy: final-epoch test accuracy, ` +
        "mean ± sample std over seeds (completed of run); time: training seconds per run, mean over seeds. " +
        "A difference is the mean over seeds of fp16 minus fp32 (or mixed) of the same seed and engine, in " +
        "points; it is within our seeds' spread when its size is at most the larger of the two precisions' " +
        "sample stds. The paper's differences are computed from its means. A setting that is not Table 5's " +
        "says how it is cut; its numbers are not CIFAR-10 results unless its data set is cifar10.",
      "note",
    ),
    `<div class="scroll">${table(HEADERS, rows)}</div>`,
    ...(caveatNote ? [para(caveatNote, "note")] : []),
  ]);
}

type CsvRow = Record<string, string | number | boolean | null>;

/** The Table 5 view as rows for `table5.csv`: the page's table, one value a column. */
export function table5Csv(entries: readonly Table5Entry[]): CsvRow[] {
  const out: CsvRow[] = [];
  const blank = Object.fromEntries(TABLE5_COLUMNS.slice(4).map((c) => [c, null]));
  for (const e of entries) {
    const base = { network: e.paper.model, model: e.model };
    const r = e.paper;
    out.push({
      ...base,
      source: "paper",
      setting: "cifar10, 100 epochs, 50,000/10,000 examples, batch 256",
      ...Object.fromEntries(
        TABLE5_PRECISIONS.flatMap((p) => [[`${p}Acc`, r.acc[p][0]], [`${p}Std`, r.acc[p][1]]]),
      ),
      ...Object.fromEntries(TABLE5_PRECISIONS.map((p) => [`${p}Seconds`, r.seconds[p]])),
      fp16MinusFp32: round(r.acc.fp16[0] - r.acc.fp32[0], 2),
      fp16MinusFp32Within: null,
      fp16MinusMixed: round(r.acc.fp16[0] - r.acc.mixed[0], 2),
      fp16MinusMixedWithin: null,
    });
    if (e.ours.length === 0) out.push({ ...base, source: "ours", setting: "not run", ...blank });
    for (const s of e.ours) {
      const [d32, dmp] = s.differences;
      out.push({
        ...base,
        source: "ours",
        setting: settingText(s, { caveats: true }),
        ...Object.fromEntries(
          TABLE5_PRECISIONS.flatMap((p) => [
            [`${p}Acc`, roundOrNull(s.acc[p]?.mean ?? null, 2)],
            [`${p}Std`, roundOrNull(s.acc[p]?.std ?? null, 2)],
          ]),
        ),
        ...Object.fromEntries(
          TABLE5_PRECISIONS.map((p) => [`${p}Seconds`, roundOrNull(s.acc[p]?.trainSecondsMean ?? null, 1)]),
        ),
        fp16MinusFp32: roundOrNull(d32.diff, 2),
        fp16MinusFp32Within: d32.within,
        fp16MinusMixed: roundOrNull(dmp.diff, 2),
        fp16MinusMixedWithin: dmp.within,
      });
    }
  }
  return out;
}

/** The CSV columns of {@linkcode table5Csv}. */
export const TABLE5_COLUMNS = [
  "network",
  "model",
  "source",
  "setting",
  "fp16Acc",
  "fp16Std",
  "fp32Acc",
  "fp32Std",
  "mixedAcc",
  "mixedStd",
  "fp16Seconds",
  "fp32Seconds",
  "mixedSeconds",
  "fp16MinusFp32",
  "fp16MinusFp32Within",
  "fp16MinusMixed",
  "fp16MinusMixedWithin",
] as const;
