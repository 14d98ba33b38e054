/**
 * HTML building blocks for the report page: escaping, tables and JSON that is
 * safe inside a `<script>` element. Every string that comes from a run
 * record (a precision can be any string the user typed) passes through
 * `escapeHtml` before it reaches the page, so the page shows it as text.
 *
 * @module
 */

import { visibleText } from "./text.ts";

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for use in HTML content and quoted attribute values; control
 * and direction characters are shown as `\uXXXX` ({@linkcode visibleText}).
 */
export function escapeHtml(text: string): string {
  return visibleText(text).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/**
 * JSON for a `<script>` element: `<`, `>` and `&` are written as `\u003c`
 * and so on, so no string in the data can close the element or open a
 * comment, and the line separators that old parsers reject are escaped too.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * A table cell: plain text (escaped here), a number, a number already
 * formatted (`num`, right-aligned like numbers), or raw HTML that the caller
 * built safely.
 */
export type Cell = string | number | null | { readonly num: string } | { readonly html: string };

function cellHtml(c: Cell): string {
  if (c === null) return "";
  if (typeof c === "object") return "html" in c ? c.html : escapeHtml(c.num);
  return escapeHtml(String(c));
}

const isNumeric = (c: Cell) => typeof c === "number" || (c !== null && typeof c === "object" && "num" in c);

/** An HTML table with a header row; numeric cells are right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[], cls = ""): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) =>
    "<tr>" + r.map((c) => (isNumeric(c) ? `<td class="num">` : "<td>") + cellHtml(c) + "</td>").join("") +
    "</tr>"
  ).join("\n");
  return `<table${
    cls ? ` class="${escapeHtml(cls)}"` : ""
  }>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** A paragraph of plain text. */
export const para = (text: string, cls = ""): string =>
  `<p${cls ? ` class="${escapeHtml(cls)}"` : ""}>${escapeHtml(text)}</p>`;

/** A section with an id and a heading. */
export const section = (id: string, heading: string, body: readonly string[]): string =>
  `<section id="${escapeHtml(id)}">\n<h2>${escapeHtml(heading)}</h2>\n${body.join("\n")}\n</section>`;

/**
 * The page's content security policy: scripts and styles only from the page
 * itself and nothing from the network, so the browser enforces that the page
 * works offline. Vega compiles its expressions with `Function`, which needs
 * 'unsafe-eval'.
 */
export const CSP =
  "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:";

/** Plain styling with system fonts. */
export const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
  padding: 0 1em; line-height: 1.45; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.9em; }
figure { margin: 1em 0 2em; } figcaption p { margin: 0.3em 0; color: #444; }
.vis { overflow-x: auto; } .note { color: #444; } .warn { color: #8a4b00; }
.bug, figcaption p.bug { color: #c00; font-weight: bold; }
.scroll { overflow-x: auto; }
.scope table { width: 100%; } .scope td:first-child { white-space: nowrap; font-weight: 600; width: 9em; }
.claims li p { margin: 0.2em 0; }
/* A figure never draws past the column: vega's SVG keeps its aspect ratio when the column is narrower. */
.vis svg, noscript svg { max-width: 100%; height: auto; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  nav, .vega-embed details { display: none; }
  figure, tr, .scope { break-inside: avoid; }
  h2 { break-after: avoid; }
  .vis, .scroll { overflow: visible; }
  /* A printed page cannot scroll: wide tables shrink and break long values rather than lose columns. */
  table { font-size: 7pt; max-width: 100%; } th, td { padding: 0.1em 0.3em; }
  td { overflow-wrap: anywhere; } th, td.num { white-space: nowrap; }
}
`;
