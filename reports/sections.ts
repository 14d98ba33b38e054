/**
 * The report's table sections: determinism checks, diverged runs, the
 * environment manifest and the exact configs of every record. They turn the
 * figures' claims into something a reader can audit run by run, so they list
 * records one per row in the report's fixed order.
 *
 * @module
 */

import { byString, finalAccuracy, type Run } from "./aggregate.ts";
import type { DeterminismCheck, SkippedFile } from "./load.ts";
import { type Cell, escapeHtml, para, section, table } from "./html.ts";
import type { OptimizerConfig } from "../lib/record/schema.ts";

/** The summary line of the determinism checks. */
export function determinismSummary(checks: readonly DeterminismCheck[]): string {
  const same = checks.filter((c) => c.identical).length;
  const line = `${same} of ${checks.length} re-runs bit-identical`;
  const kinds = [...new Set(checks.map((c) => c.kind ?? "rerun"))].sort(byString);
  if (kinds.length < 2) return `${line}.`;
  const parts = kinds.map((k) => {
    const ks = checks.filter((c) => (c.kind ?? "rerun") === k);
    return `${k}: ${ks.filter((c) => c.identical).length} of ${ks.length}`;
  });
  return `${line} (${parts.join("; ")}).`;
}

/**
 * The determinism section (numbered `n`, after the last figure): the table of
 * checks, or a note that the folder has none.
 */
export function determinismSection(
  checks: readonly DeterminismCheck[] | null,
  skipped: boolean,
  n = 10,
): string {
  if (checks === null) {
    const why = skipped
      ? "determinism.json could not be used (see skipped files)"
      : "no determinism check in this folder";
    return section("determinism", `${n}. Determinism`, [
      para(`${why[0].toUpperCase()}${why.slice(1)}.`, "note"),
    ]);
  }
  const rows: Cell[][] = checks.map((c) => [
    c.id,
    c.model,
    c.precision,
    c.seed,
    c.engine,
    c.kind ?? "rerun",
    c.identical ? "yes" : "no",
    c.firstDifferingEpoch ?? "-",
  ]);
  return section("determinism", `${n}. Determinism`, [
    para(determinismSummary(checks), "summary"),
    para(
      "Each check trains a configuration again (on the same engine, or on another for cross-engine checks) " +
        "and compares the weight hash and the hash of every per-epoch metric.",
      "note",
    ),
    `<div class="scroll">${
      table(
        ["id", "model", "precision", "seed", "engine", "kind", "identical", "first differing epoch"],
        rows,
      )
    }</div>`,
  ]);
}

/** Runs that stopped early, with where and why. */
export function divergedSection(runs: readonly Run[]): string {
  const diverged = runs.filter((r) => r.record.status === "diverged");
  if (diverged.length === 0) return section("diverged", "Diverged runs", [para("No run diverged.", "note")]);
  const rows: Cell[][] = diverged.map((r) => {
    const d = r.record.divergence;
    return [
      r.model,
      r.record.config.dataset,
      r.record.config.precision,
      r.record.config.seed,
      d?.epoch ?? null,
      d?.step ?? null,
      d?.reason ?? "",
    ];
  });
  return section("diverged", "Diverged runs", [
    para(`${diverged.length} of ${runs.length} runs diverged; they are left out of the accuracy means.`),
    table(["model", "dataset", "precision", "seed", "epoch", "step", "reason"], rows),
  ]);
}

/** Flattens nested objects to dotted keys with printable values. */
function flatten(v: unknown, prefix: string, out: Map<string, string>): void {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(v) && v.every((x) => x === null || typeof x !== "object")) {
    out.set(prefix, v.map(String).join(", "));
  } else {
    out.set(prefix, typeof v === "string" ? v : JSON.stringify(v));
  }
}

/** For each key, the distinct values over `objects` with how many records have each. */
function distinctValues(objects: readonly unknown[]): Cell[][] {
  const counts = new Map<string, Map<string, number>>();
  for (const o of objects) {
    const flat = new Map<string, string>();
    flatten(o, "", flat);
    for (const [k, v] of flat) {
      const byValue = counts.get(k) ?? new Map<string, number>();
      byValue.set(v, (byValue.get(v) ?? 0) + 1);
      counts.set(k, byValue);
    }
  }
  return [...counts.keys()].sort(byString).map((k) => {
    const values = [...counts.get(k)!].sort(([a], [b]) => byString(a, b));
    const text = values.length === 1 && values[0][1] === objects.length
      ? values[0][0]
      : values.map(([v, n]) => `${v} (${n} record${n === 1 ? "" : "s"})`).join("; ");
    return [k, text];
  });
}

/** The environment manifest and dataset provenance, as distinct values over all records. */
export function environmentSection(runs: readonly Run[]): string {
  const body = [
    para("Distinct values over all records; a value seen in only some records says in how many."),
    `<h3>Environment</h3>`,
    `<div class="scroll">${
      table(["key", "value"], distinctValues(runs.map((r) => r.record.environment)))
    }</div>`,
  ];
  const datasets = [...new Set(runs.map((r) => r.record.config.dataset))].sort(byString);
  for (const d of datasets) {
    const of = runs.filter((r) => r.record.config.dataset === d).map((r) => r.record.dataset);
    body.push(`<h3>Dataset ${escapeHtml(d)}</h3>`);
    body.push(`<div class="scroll">${table(["key", "value"], distinctValues(of))}</div>`);
  }
  return section("environment", "Environment manifest", body);
}

/** The optimizer settings that matter for its kind. */
export function optimizerText(o: OptimizerConfig): string {
  const keys: readonly string[] = o.kind === "sgd"
    ? ["lr", "momentum", "weightDecay"]
    : o.kind === "adam"
    ? ["lr", "beta1", "beta2", "epsilon", "weightDecay"]
    : Object.keys(o).filter((k) => k !== "kind").sort(byString);
  const fields = o as unknown as Record<string, unknown>;
  return [o.kind, ...keys.map((k) => `${k}=${fields[k]}`)].join(" ");
}

/** Every record's exact config, one row each. */
export function configSection(runs: readonly Run[]): string {
  const rows: Cell[][] = runs.map((r) => {
    const c = r.record.config, acc = finalAccuracy(r);
    return [
      { html: `<span class="mono">${escapeHtml(r.record.id)}</span>` },
      [r.experiment.name, r.experiment.variant].filter((x) => x).join(": "),
      r.model,
      c.dataset,
      c.precision,
      { html: `<span class="mono">${escapeHtml(c.policy)}</span>` },
      optimizerText(c.optimizer),
      c.batch,
      c.epochs,
      c.seed,
      c.engine,
      acc === null ? null : { num: acc.toFixed(2) },
      r.record.status,
      { html: `<span class="mono">${escapeHtml(r.record.weightHash.slice(0, 12))}</span>` },
    ];
  });
  return section("configs", "Exact configs", [
    para(
      `${runs.length} run records. Test accuracy is the final epoch's, in %. The experiment is the one ` +
        "matrix.json lists the record under (empty when it lists it nowhere or there is no matrix.json).",
    ),
    `<div class="scroll">${
      table([
        "id",
        "experiment",
        "model",
        "dataset",
        "precision",
        "policy",
        "optimizer",
        "batch",
        "epochs",
        "seed",
        "engine",
        "test acc. %",
        "status",
        "weight hash",
      ], rows)
    }</div>`,
  ]);
}

/** Files of the runs folder that were not used. */
export function skippedSection(skipped: readonly SkippedFile[]): string {
  if (skipped.length === 0) return "";
  return section("skipped", "Skipped files", [
    para(`${skipped.length} file${skipped.length === 1 ? " was" : "s were"} not used:`, "warn"),
    table(["file", "reason"], skipped.map((s) => [s.file, s.reason])),
  ]);
}
