/**
 * What a report covers, taken from its records only: datasets, networks,
 * epochs, examples, engine and its guarantee, machine, dates, the command and
 * the f16repro commit. It is the box at the top of the page and the sentence
 * under the timing figures, so a reader of an attached report knows what was
 * reproduced, where and how, without anything written by hand.
 *
 * @module
 */

import { byString, modelLabel, type Run } from "./aggregate.ts";
import type { Matrix } from "./inputs.ts";
import { type Cell, section, table } from "./html.ts";

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === "object" && v !== null && !Array.isArray(v) ? v as Json : {});
const distinct = (xs: readonly string[]) => [...new Set(xs)].sort(byString);
const list = (xs: readonly string[], none = "not recorded") => distinct(xs).join(", ") || none;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
const known = (v: unknown): v is string => typeof v === "string" && v !== "" && v !== "unknown";

/** The record's launch facts when they are well formed (the field is optional and not validated on load). */
export function launchOf(r: Run): { command: string | null; cellsAtOnce: number | null } {
  const l = obj(r.record.launch);
  const n = l.cellsAtOnce;
  return {
    command: typeof l.command === "string" && l.command !== "" ? l.command : null,
    cellsAtOnce: Number.isInteger(n) && (n as number) > 0 ? n as number : null,
  };
}

/** One engine as its records describe it. */
interface EngineFacts {
  readonly name: string;
  /** Its guarantee, e.g. "exact (bit-identical to ref)". */
  readonly guarantee: string;
  /**
   * The 16-bit formats whose arithmetic ran in 16-bit instructions in every record (the `native16`
   * capability: a list of formats, or true for all); the others were emulated.
   */
  readonly native16: readonly string[];
  /** True when a record says the engine ran on a CPU standing in for a GPU (webgpu on lavapipe). */
  readonly cpuAdapter: boolean;
  /** Threads per cell, as recorded. */
  readonly threads: string;
}

/** The 16-bit formats. */
const SIXTEEN = ["fp16", "bf16"];

/** The formats a recorded `native16` capability names (true: every 16-bit format). */
function nativeFormats(caps: Json): readonly string[] {
  const v = caps.native16;
  return v === true ? SIXTEEN : Array.isArray(v) ? v.filter((f): f is string => typeof f === "string") : [];
}

function engineFacts(runs: readonly Run[]): EngineFacts[] {
  const byName = new Map<string, Run[]>();
  for (const r of runs) {
    byName.set(r.record.config.engine, [...(byName.get(r.record.config.engine) ?? []), r]);
  }
  return [...byName].sort(([a], [b]) => byString(a, b)).map(([name, rs]) => {
    const e = rs.map((r) => obj(r.record.environment.engine));
    const caps = e.map((x) => obj(x.capabilities));
    const exact = caps.every((c) => c.bitExactWithRef === true);
    const modes = distinct(e.map((x) => x.mode).filter(known));
    return {
      name,
      guarantee: modes.join("; ") ||
        (exact
          ? "bit-identical to ref"
          : caps.some((c) => c.bitExactWithRef === false)
          ? "not bit-exact with ref"
          : "guarantee not recorded"),
      native16: SIXTEEN.filter((f) => caps.every((c) => nativeFormats(c).includes(f))),
      cpuAdapter: e.some((x) => x.fallbackAdapter === "true"),
      threads: list(e.map((x) => String(x.threads ?? "")).filter(known)),
    };
  });
}

/**
 * How the cells whose times are drawn were run, in one sentence: how many at once, engine and threads,
 * and whether the 16-bit arithmetic was emulated (then the times cannot speak to GPU speed).
 */
export function timingConditions(runs: readonly Run[]): string {
  if (runs.length === 0) return "No runs.";
  const atOnce = runs.map((r) => launchOf(r).cellsAtOnce);
  const counts = distinct(atOnce.filter((n) => n !== null).map(String));
  const missing = atOnce.filter((n) => n === null).length;
  const concurrency = counts.length === 0
    ? "How many cells trained at once is not recorded"
    : `Cells trained ${counts.join(" or ")} at a time${missing ? ` (not recorded for ${missing} runs)` : ""}`;
  const engines = engineFacts(runs);
  const engineText = engines.map((e) =>
    `${e.name} (threads per cell: ${e.threads === "not recorded" ? "not recorded" : e.threads})`
  ).join(", ");
  const emulated = engines.filter((e) => e.native16.length === 0).map((e) => e.name);
  const native = engines.filter((e) => e.native16.length > 0).map((e) => {
    const rest = SIXTEEN.filter((f) => !e.native16.includes(f));
    return `${e.name} ${e.native16.join(" and ")} in 16-bit instructions${
      rest.length ? `, ${rest.join(" and ")} emulated` : ""
    }${e.cpuAdapter ? " (on a CPU standing in for a GPU, so its times cannot speak to GPU speed)" : ""}`;
  });
  const arithmetic = emulated.length === engines.length
    ? "16-bit arithmetic emulated on the CPU (fp32 arithmetic, results rounded to 16 bits in software), " +
      "so these times cannot speak to GPU speed"
    : engines.every((e) => e.native16.length === SIXTEEN.length && !e.cpuAdapter)
    ? "16-bit arithmetic native"
    : `16-bit arithmetic: ${
      [...native, ...emulated.length ? [`${emulated.join(", ")} emulated`] : []].join("; ")
    }`;
  return `${concurrency}; engine ${engineText}; ${arithmetic}.`;
}

/** The scope rows: what was reproduced, on what, when and by which command. */
export function scopeRows(runs: readonly Run[], matrix: Matrix | null): [string, string][] {
  const recs = runs.map((r) => r.record);
  const datasets = distinct(recs.map((r) => r.config.dataset)).map((d) => {
    const of = recs.filter((r) => r.config.dataset === d);
    const sources = list(of.map((r) => String(r.dataset.source ?? "")).filter(known), "");
    // Experiments may use different subsets of one dataset: each size says how many records used it.
    const count = (k: string) => {
      const sizes = of.map((r) => String(r.dataset[k] ?? "?"));
      const kinds = distinct(sizes);
      return kinds.length === 1
        ? kinds[0]
        : kinds.map((v) => `${v} (${plural(sizes.filter((x) => x === v).length, "record")})`).join(" or ");
    };
    return `${d}${sources ? ` (${sources})` : ""}: ${count("trainCount")} training and ${
      count("testCount")
    } test examples`;
  });
  const networks = distinct(recs.map((r) => `${modelLabel(r)} (${r.parameterCount} parameters)`));
  const dates = distinct(
    recs.map((r) => r.createdAt.slice(0, 10)).filter((d) => /^\d{4}-\d\d-\d\d$/.test(d)),
  );
  const env = recs.map((r) => r.environment);
  const cpus = distinct(env.map((e) => {
    const cores = typeof e.cpus === "number" ? `, ${plural(e.cpus, "core")}` : "";
    const model = known(e.cpu) ? e.cpu : "CPU model not recorded";
    return `${model}${cores}, ${e.os ?? "?"} ${e.arch ?? "?"}`;
  }));
  const commands = distinct(runs.map((r) => launchOf(r).command).filter((c): c is string => c !== null));
  const command = commands.length
    ? commands.join("; ")
    : matrix
    ? `f16repro reproduce --profile ${matrix.profile} (profile from matrix.json; the records hold no command line)`
    : "not recorded (records of separate train runs)";
  const ids = new Set(recs.map((r) => r.id));
  const cells = matrix ? [...new Set(matrix.experiments.flatMap((e) => e.cells.map((c) => c.id)))] : [];
  const present = cells.filter((id) => ids.has(id)).length;
  return [
    ["Datasets", datasets.join("; ") || "none"],
    ["Networks", networks.join(", ") || "none"],
    ["Epochs", list(recs.map((r) => String(r.config.epochs)))],
    ["Precisions", list(recs.map((r) => r.config.precision))],
    [
      "Seeds",
      distinct(recs.map((r) => String(r.config.seed))).sort((a, b) => Number(a) - Number(b)).join(", "),
    ],
    ["Engine", engineFacts(runs).map((e) => `${e.name}: ${e.guarantee}`).join("; ") || "none"],
    ["Timing", timingConditions(runs)],
    ["Machine", cpus.join("; ") || "not recorded"],
    ["Dates", dates.length > 1 ? `${dates[0]} to ${dates.at(-1)}` : dates[0] ?? "not recorded"],
    ["Command", command],
    ["f16repro commit", list(env.map((e) => String(e.gitCommit ?? "")).filter(known))],
    [
      "Records",
      `${plural(recs.length, "run record")}` +
      (matrix
        ? `; ${present} of ${plural(cells.length, "cell")} of matrix.json (profile ${matrix.profile})`
        : ""),
    ],
  ];
}

/** The scope box at the top of the page. */
export function scopeSection(runs: readonly Run[], matrix: Matrix | null): string {
  const rows: Cell[][] = scopeRows(runs, matrix).map(([k, v]) => [k, v]);
  return section("scope", "Scope", [`<div class="scope">${table(["", "from the run records"], rows)}</div>`]);
}
