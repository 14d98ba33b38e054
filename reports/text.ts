/**
 * Record text made safe for every place the report puts it. A run record can
 * hold any string JSON can (a model or precision name is whatever the user
 * typed), but not every such string survives every destination: vega-lite
 * copies sort orders into expressions that vega parses as JavaScript source,
 * where U+2028 and U+2029 end a string literal; XML (the SVG files) forbids
 * most control characters; and bidirectional overrides make a label read
 * differently from what it holds. So every string a figure or the page shows
 * passes through {@linkcode visibleText}, which writes those characters as
 * visible `\uXXXX` escapes: the reader sees that they are there, and nothing
 * downstream can trip on them.
 *
 * @module
 */

/**
 * Characters written as escapes: C0 and C1 controls, the JavaScript line
 * separators U+2028/U+2029, bidirectional marks, overrides and isolates, the
 * byte-order mark, the XML non-characters U+FFFE/U+FFFF and lone surrogates
 * (the `u` flag makes the surrogate range match only unpaired ones).
 */
const HIDDEN =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ufffe\uffff\ud800-\udfff]/gu;

/** `text` with every character of {@linkcode HIDDEN} written as a visible `\uXXXX`. */
export function visibleText(text: string): string {
  return text.replace(HIDDEN, (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`);
}

/**
 * A copy of `value` with {@linkcode visibleText} applied to every string in
 * it, at any depth (object keys included, since data rows are keyed by
 * field names only the report chooses, which are left unchanged by it).
 */
export function visibleDeep<T>(value: T): T {
  if (typeof value === "string") return visibleText(value) as T;
  if (Array.isArray(value)) return value.map(visibleDeep) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [visibleText(k), visibleDeep(v)])) as T;
  }
  return value;
}
