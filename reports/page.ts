/**
 * Assembles the single report page. Everything the page needs is inside it:
 * the chart libraries, the figure specs with their data, and a static SVG of
 * every figure in a `<noscript>` for readers without JavaScript. Nothing in
 * it depends on the time or machine of writing, so the same records give
 * the same bytes.
 *
 * @module
 */

import { version as vegaVersion } from "vega";
import { version as vegaLiteVersion } from "vega-lite";
import { type GroupRow, isMain, type Run } from "./aggregate.ts";
import { type Figure, isDrawn, type OmittedFigure } from "./figure_style.ts";
import type { DeterminismCheck, LoadedTolerance, Matrix, SkippedFile } from "./load.ts";
import { claimsSection } from "./claims.ts";
import { scopeSection } from "./scope.ts";
import { type Table5Entry, table5Section } from "./table5.ts";
import type { VendorScript } from "./vendor.ts";
import { type Cell, CSP, escapeHtml, jsonForScript, para, section, STYLE, table } from "./html.ts";
import {
  configSection,
  determinismSection,
  divergedSection,
  environmentSection,
  skippedSection,
} from "./sections.ts";

/** What the page shows. */
export interface PageInput {
  /** Every run: the summary counts the main ones, the audit sections list all. */
  readonly runs: readonly Run[];
  /** Group rows of the main runs. */
  readonly groups: readonly GroupRow[];
  /** The figures in order, drawn ones with their rendered SVG. */
  readonly figures: readonly ((Figure & { readonly svg: string }) | OmittedFigure)[];
  readonly determinism: readonly DeterminismCheck[] | null;
  readonly skipped: readonly SkippedFile[];
  readonly vendor: readonly VendorScript[];
  /** The experiment matrix, when the folder has a usable one (the scope names its profile and cells). */
  readonly matrix: Matrix | null;
  /** Tolerance results (the lemma's claim). */
  readonly tolerance: readonly LoadedTolerance[];
  /** The Table 5 view (every Table 5 network, ours beside the paper's); absent without the paper table. */
  readonly table5?: readonly Table5Entry[];
}

/**
 * Draws every figure with vega-embed. If a figure cannot be drawn, the page
 * shows the static SVG from its `<noscript>` instead (its text content when
 * scripting is on), so a reader never sees an empty space.
 */
const EMBED_SCRIPT = `(function () {
  var specs = JSON.parse(document.getElementById("f16repro-specs").textContent);
  Object.keys(specs).forEach(function (name) {
    var el = document.getElementById("vis-" + name);
    vegaEmbed(el, specs[name], { actions: false, renderer: "svg", mode: "vega-lite" }).catch(function (e) {
      var fallback = document.getElementById("static-" + name);
      el.innerHTML = fallback ? fallback.textContent : "";
      el.insertAdjacentText("afterbegin", "This figure could not be drawn interactively (" + e.message + ").");
    });
  });
})();`;

const fmt = (x: number | null, digits: number): Cell => (x === null ? null : { num: x.toFixed(digits) });

function figureHtml(f: (Figure & { readonly svg: string }) | OmittedFigure): string {
  const heading = `Figure ${f.n}. ${f.title}`;
  if (!isDrawn(f)) return section(`fig${f.n}`, heading, [para(f.omitted, "note")]);
  const tables = (f.tables ?? []).map((t) =>
    `${para(t.title, "note")}\n<div class="scroll">${table(t.headers, t.rows)}</div>`
  );
  return section(`fig${f.n}`, heading, [
    "<figure>",
    `<div class="vis" id="vis-${escapeHtml(f.name)}"></div>`,
    `<noscript id="static-${escapeHtml(f.name)}">${f.svg}</noscript>`,
    `<figcaption>${(f.alerts ?? []).map((a) => para(a, "bug")).join("")}${
      f.caption.map((c) => para(c)).join("")
    }</figcaption>`,
    "</figure>",
    ...tables,
    `<p class="note">Files: <code>${escapeHtml(f.name)}.svg</code> (static image), <code>${
      escapeHtml(f.name)
    }.csv</code> (the data drawn).</p>`,
  ]);
}

function summarySection(p: PageInput): string {
  const list = (xs: readonly string[]) => [...new Set(xs)].join(", ") || "none";
  const main = p.runs.filter(isMain);
  const others = p.runs.length - main.length;
  const done = main.filter((r) => r.record.status === "completed").length;
  const count = (n: number | null): Cell => (n === null ? null : n);
  const rows: Cell[][] = p.groups.map((g) => [
    g.cell,
    count(g.trainExamples),
    count(g.testExamples),
    g.epochs,
    g.precision,
    g.seeds,
    g.runs,
    g.diverged,
    fmt(g.accMean, 2),
    fmt(g.accStd, 2),
    fmt(g.trainSecondsMean, 3),
  ]);
  return section("summary", "Summary", [
    para(
      `${main.length} run records in the main comparison (${done} completed, ${main.length - done} ` +
        `diverged). Models: ${list(main.map((r) => r.model))}. Precisions: ${
          list(p.groups.map((g) => g.precision))
        }. ` +
        `Engines: ${list(main.map((r) => r.record.config.engine).sort())}.`,
    ),
    ...(others
      ? [para(
        `${others} more record${others === 1 ? "" : "s"} of the pitfall experiments (matrix.json) ` +
          `${others === 1 ? "is" : "are"} left out of this table and of figures 1-5; see figures 7 and 9.`,
        "note",
      )]
      : []),
    para(
      "One row per network (model, dataset and setting: a label in brackets names what differs when a " +
        "model ran with several settings) and precision; rows never average different settings. Accuracy is " +
        "the final epoch's test accuracy in %, mean and sample standard deviation over the completed runs " +
        "of a row; time is training seconds per run, mean over runs.",
      "note",
    ),
    `<div class="scroll">${
      table([
        "network (dataset)",
        "train examples",
        "test examples",
        "epochs",
        "precision",
        "seeds",
        "runs",
        "diverged",
        "acc. %",
        "std",
        "train s",
      ], rows)
    }</div>`,
  ]);
}

/** The number of the determinism section: the one after the last figure. */
const determinismNumber = (p: PageInput) => Math.max(0, ...p.figures.map((f) => f.n)) + 1;

function contents(p: PageInput): string {
  const items = [
    ["scope", "Scope"],
    ["claims", "The paper's claims against our runs"],
    ["summary", "Summary"],
    ...(p.table5 ? [["table5", "Table 5: the paper's CIFAR-10 networks, theirs and ours"]] : []),
    ...p.figures.map((f) => [`fig${f.n}`, `Figure ${f.n}. ${f.title}${isDrawn(f) ? "" : " (not drawn)"}`]),
    ["determinism", `${determinismNumber(p)}. Determinism`],
    ["diverged", "Diverged runs"],
    ["environment", "Environment manifest"],
    ["configs", "Exact configs"],
    ...(p.skipped.length ? [["skipped", "Skipped files"]] : []),
  ];
  return `<nav><ul>${
    items.map(([id, t]) => `<li><a href="#${escapeHtml(id)}">${escapeHtml(t)}</a></li>`).join("")
  }</ul></nav>`;
}

/** Builds the report page. */
export function renderPage(p: PageInput): string {
  const specs = Object.fromEntries(p.figures.flatMap((f) => (isDrawn(f) ? [[f.name, f.spec]] : [])));
  const determinismSkipped = p.skipped.some((s) => s.file === "determinism.json");
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${escapeHtml(CSP)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>f16repro report</title>",
    `<style>${STYLE}</style>`,
    "</head>",
    "<body>",
    "<h1>f16repro: 16-bit training reproduction report</h1>",
    para(
      'Reproduction of "Standalone 16-bit Training: Missing Study for Hardware-Limited Deep Learning ' +
        'Practitioners" (Yun et al., arXiv 2305.10947). Paper numbers are CIFAR-10 Table 5 and are shown ' +
        "beside ours, never mixed with them.",
      "note",
    ),
    para(
      "Figures 1-5 compare precisions on the main runs; figure 6 tests the paper's error/tolerance lemma " +
        "(an fp16 model can only disagree with its fp32 model where Gamma <= 2 delta); figures 7-9 measure " +
        "known pitfalls of standalone fp16 (Adam's epsilon, lost updates, fp16 accumulation). The " +
        "determinism checks, diverged runs, environment and exact configs follow.",
      "note",
    ),
    scopeSection(p.runs, p.matrix),
    claimsSection(p.groups, p.runs.filter(isMain), p.tolerance),
    contents(p),
    summarySection(p),
    ...(p.table5 ? [table5Section(p.table5)] : []),
    ...p.figures.map(figureHtml),
    determinismSection(p.determinism, determinismSkipped, determinismNumber(p)),
    divergedSection(p.runs),
    environmentSection(p.runs),
    configSection(p.runs),
    skippedSection(p.skipped),
    "<footer>",
    para(
      `Figures drawn with vega ${vegaVersion} and vega-lite ${vegaLiteVersion} through vega-embed; ` +
        `inlined: ${p.vendor.map((v) => v.name).join(", ")}.`,
      "note",
    ),
    "</footer>",
    ...p.vendor.map((v) => `<script>${v.code}</script>`),
    `<script type="application/json" id="f16repro-specs">${jsonForScript(specs)}</script>`,
    `<script>${EMBED_SCRIPT}</script>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
