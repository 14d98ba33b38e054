/**
 * The browser builds of vega, vega-lite and vega-embed, read from the npm
 * packages this project pins, for inlining into the report page so that it
 * works offline. The packages do not export their `build/*.min.js` files, so
 * each file is found next to the module that the package does export.
 *
 * @module
 */

/** One library to inline. */
export interface VendorScript {
  /** Package name and the file inside it, e.g. "vega/build/vega.min.js". */
  readonly name: string;
  /** Script text, safe to place inside a `<script>` element. */
  readonly code: string;
}

/** The builds in load order (vega-lite needs vega; vega-embed needs both). */
const BUILDS = [
  ["vega", "vega.min.js", import.meta.resolve("vega")],
  ["vega-lite", "vega-lite.min.js", import.meta.resolve("vega-lite")],
  ["vega-embed", "vega-embed.min.js", import.meta.resolve("vega-embed")],
] as const;

/**
 * Makes script text safe inside an HTML `<script>` element: `</script` would
 * end the element and `<!--` can change how the parser reads the rest. Both
 * only occur inside strings or comments of minified code, where `<\/` and
 * `<\!--` mean the same. The source map comment is dropped because a browser
 * with developer tools open would try to fetch the map.
 */
export function scriptSafe(code: string): string {
  return code
    .replace(/<\/(script)/gi, "<\\/$1")
    .replace(/<!--/g, "<\\!--")
    .replace(/^\/\/# sourceMappingURL=.*$/gm, "");
}

let cache: Promise<VendorScript[]> | undefined;

/** Reads the three builds once per process. */
export function vendorScripts(): Promise<VendorScript[]> {
  cache ??= Promise.all(BUILDS.map(async ([pkg, file, entry]) => {
    const url = new URL(file, entry);
    if (url.protocol !== "file:") {
      throw new Error(`Cannot read ${pkg}/build/${file}: the package resolves to ${entry}, not a local file`);
    }
    return { name: `${pkg}/build/${file}`, code: scriptSafe(await Deno.readTextFile(url)) };
  })).catch((e) => {
    // A failed read is not remembered, so that a later report can try again.
    cache = undefined;
    throw e;
  });
  return cache;
}
