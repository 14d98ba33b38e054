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
import { cpuText, type TimingDevice, timingDevice } from "./device.ts";
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

/** The 16-bit formats whose arithmetic an engine may run natively. */
const SIXTEEN = ["fp16", "bf16"] as const;

/**
 * The 16-bit formats a capability record says run on 16-bit arithmetic units: `native16` as a boolean (every
 * format), as a list of formats or as an object of booleans per format. Anything else counts as emulated,
 * so an unreadable record never claims native arithmetic.
 */
function nativeFormats(caps: Json): string[] {
  const n = caps.native16;
  if (n === true) return [...SIXTEEN];
  if (Array.isArray(n)) return SIXTEEN.filter((f) => n.includes(f));
  const per = obj(n);
  return SIXTEEN.filter((f) => per[f] === true);
}

/** One engine as its records describe it. */
interface EngineFacts {
  readonly name: string;
  /** Its guarantee, e.g. "exact (bit-identical to ref)". */
  readonly guarantee: string;
  /** The 16-bit formats that every record of the engine says run natively; the others are emulated. */
  readonly native: readonly string[];
  /** Threads per cell, as recorded. */
  readonly threads: string;
  /** The distinct devices its times were measured on, in text order. */
  readonly devices: readonly TimingDevice[];
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
    const natives = caps.map(nativeFormats);
    const devices = new Map(rs.map((r) => timingDevice(r.record)).map((d) => [d.text, d]));
    return {
      name,
      guarantee: modes.join("; ") ||
        (exact
          ? "bit-identical to ref"
          : caps.some((c) => c.bitExactWithRef === false)
          ? "not bit-exact with ref"
          : "guarantee not recorded"),
      native: SIXTEEN.filter((f) => natives.every((n) => n.includes(f))),
      threads: list(e.map((x) => String(x.threads ?? "")).filter(known)),
      devices: [...devices.keys()].sort(byString).map((k) => devices.get(k)!),
    };
  });
}

const onGpu = (e: EngineFacts) => e.devices.some((d) => d.kind === "gpu");

/** An engine's 16-bit arithmetic in words: "native", "emulated" or "native for fp16, emulated for bf16". */
function arithmeticOf(e: EngineFacts): string {
  const emulated = SIXTEEN.filter((f) => !e.native.includes(f));
  if (emulated.length === 0) return "native";
  if (e.native.length === 0) return "emulated";
  return `native for ${e.native.join(" and ")}, emulated for ${emulated.join(" and ")}`;
}

/** What an engine's times measured on a GPU can say about GPU speed. */
function gpuSpeedNote(e: EngineFacts): string {
  const emulated = SIXTEEN.filter((f) => !e.native.includes(f));
  if (emulated.length === 0) return `${e.name}'s times on the GPU can speak to GPU speed`;
  const emulatedText = `${emulated.join(" and ")} there run fp32 arithmetic on 16-bit data`;
  return e.native.length === 0
    ? `${e.name}'s times on the GPU cannot speak to a GPU's 16-bit speed (${emulatedText})`
    : `${e.name}'s times on the GPU can speak to GPU speed for ${
      e.native.join(" and ")
    } only (${emulatedText})`;
}

/**
 * How the cells whose times are drawn were run, in one sentence: how many at once, each engine with its
 * threads and the device its times were measured on, and whether the 16-bit arithmetic was emulated. Only
 * times measured on an adapter recorded as a GPU (not a fallback adapter) are said to speak to GPU speed.
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
  const engineText = engines.map((e) => {
    // An engine on an adapter records no threads; saying "not recorded" there would suggest it should.
    const cpuOnly = e.devices.every((d) => d.kind === "cpu");
    const threads = e.threads !== "not recorded" || cpuOnly ? ` (threads per cell: ${e.threads})` : "";
    return `${e.name}${threads} on ${e.devices.map((d) => d.text).join(" and ")}`;
  }).join(" and ");
  const allOnCpu = engines.every((e) => e.devices.every((d) => d.kind === "cpu" || d.kind === "fallback"));
  const gpus = engines.filter(onGpu);
  const arithmetic = engines.every((e) => e.native.length === 0)
    ? `16-bit arithmetic emulated${allOnCpu ? " on the CPU" : ""} (fp32 arithmetic, results rounded to 16 ` +
      "bits in software)"
    : engines.length === 1
    ? `16-bit arithmetic ${arithmeticOf(engines[0])}`
    : `16-bit arithmetic ${engines.map((e) => `${arithmeticOf(e)} in ${e.name}`).join(" and ")}`;
  const elsewhere = engines.some((e) => e.devices.some((d) => d.kind !== "gpu"));
  const speed = gpus.length === 0 ? "so these times cannot speak to GPU speed" : [
    ...gpus.map(gpuSpeedNote),
    ...(elsewhere ? ["times measured elsewhere than on a GPU cannot speak to GPU speed"] : []),
  ].join("; ");
  return `${concurrency}; ${engines.length === 1 ? "engine" : "engines"} ${engineText}; ${arithmetic}${
    gpus.length ? ";" : ","
  } ${speed}.`;
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
  const cpus = distinct(
    env.map((e) => `${cpuText(e, "CPU model not recorded")}, ${e.os ?? "?"} ${e.arch ?? "?"}`),
  );
  // The CPUs above ran every run's host code; a run on an adapter (GPU or fallback) adds that adapter.
  const adapters = distinct(runs.flatMap((r) => {
    const d = timingDevice(r.record);
    return d.kind === "cpu" ? [] : [`${r.record.config.engine} on ${d.text}`];
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
    ["Machine", [...cpus, ...adapters].join("; ") || "not recorded"],
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
