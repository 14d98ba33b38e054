/**
 * Renders a Vega-Lite spec to a static SVG string inside Deno, with no
 * browser: the spec is compiled to Vega and drawn by a headless Vega View.
 * Without a canvas module Vega estimates text widths from character counts,
 * which is what makes the layout the same on every machine.
 *
 * @module
 */

import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** Renders `spec` to SVG text (starting with `<svg`). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    // The view holds timers and listeners; release them so repeated renders leave nothing behind.
    view.finalize();
  }
}
