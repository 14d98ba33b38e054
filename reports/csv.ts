/**
 * CSV text for the figure data, so that every number in a figure can be
 * taken into a paper or a spreadsheet. Quoting follows RFC 4180 (a field with
 * a comma, quote or line break is quoted and its quotes doubled); lines end
 * with "\n"; numbers are written as JavaScript prints them (already rounded
 * by the report) and null as an empty field.
 *
 * @module
 */

/** A CSV cell value. */
export type CsvValue = string | number | boolean | null | undefined;

/** Quotes one field when it needs it. */
export function csvField(v: CsvValue): string {
  if (v === null || v === undefined) return "";
  const s = String(v);
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
