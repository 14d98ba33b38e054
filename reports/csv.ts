/**
 * CSV text for the figure data, so that every number in a figure can be
 * taken into a paper or a spreadsheet. Quoting follows RFC 4180 (a field with
 * a comma, quote or line break is quoted and its quotes doubled); lines end
 * with "\n"; numbers are written as JavaScript prints them (already rounded
 * by the report) and null as an empty field.
 *
 * Text from a run record can be anything the user typed, and spreadsheets run
 * a cell that starts with `=`, `+`, `-`, `@` (or a tab or carriage return) as
 * a formula. Such text cells get a leading `'`, which spreadsheets read as
 * "this is text" (the OWASP advice for CSV injection). Number cells are
 * numbers, not text: a negative number stays `-0.5` and is read as the number
 * it is, and so is text that is exactly a plain decimal number.
 *
 * @module
 */

/** A CSV cell value. */
export type CsvValue = string | number | boolean | null | undefined;

/** Text that a spreadsheet could run as a formula: its first character starts one. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** Text that is only a decimal number, such as "-3" or "+1.5e-7": a spreadsheet reads it as that number. */
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Quotes one field when it needs it, and defuses text that a spreadsheet would run as a formula. */
export function csvField(v: CsvValue): string {
  if (v === null || v === undefined) return "";
  let s = String(v);
  if (typeof v === "string" && FORMULA_START.test(s) && !PLAIN_NUMBER.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * Writes `rows` as CSV with a header line. The columns are `columns` when
 * given, otherwise the keys of the first row in their order.
 */
export function toCsv(
  rows: readonly Readonly<Record<string, CsvValue>>[],
  columns?: readonly string[],
): string {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const lines = [cols.map(csvField).join(",")];
  for (const r of rows) lines.push(cols.map((c) => csvField(r[c])).join(","));
  return lines.join("\n") + "\n";
}
