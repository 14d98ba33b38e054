/**
 * Writes the reproduction report of a runs folder: one self-contained HTML
 * page, and every figure as SVG with its data as CSV for use in a paper.
 * Besides the run records it reads the optional `determinism.json`,
 * `matrix.json` (which keeps the pitfall experiments out of the main
 * comparison) and `tolerance/*.json` (the error/tolerance lemma).
 *
 * The output depends only on the run records (no dates, no random ids, a
 * fixed order and number format), so a report can be regenerated and
 * compared byte for byte. A record that cannot be read is listed, not fatal:
 * a long reproduction should still get its report when one file is damaged.
 *
 * @example
 * ```ts
 * import { writeReport } from "./reports/write.ts";
 * const result = await writeReport("runs", "runs/report");
 * console.log(result.files, result.skipped);
 * ```
 *
 * @module
 */

import { groupRows, isMain, toRuns } from "./aggregate.ts";
import { buildFigures } from "./figures.ts";
import { type Figure, isDrawn, type OmittedFigure } from "./figure_style.ts";
import { loadRuns, type SkippedFile } from "./load.ts";
import { replaceFolder } from "./out_dir.ts";
import { renderPage } from "./page.ts";
import { TABLE5_COLUMNS, table5Csv, table5View } from "./table5.ts";
import { renderSvg } from "./svg.ts";
import { toCsv } from "./csv.ts";
import { vendorScripts } from "./vendor.ts";

export type { SkippedFile } from "./load.ts";
export { ReportFolderError } from "./out_dir.ts";

/** Options of {@linkcode writeReport}. */
export interface ReportOptions {
  /** Show the paper's Table 5 numbers beside ours (default true). */
  readonly paperTable?: boolean;
}

/** What {@linkcode writeReport} did. */
export interface ReportResult {
  /** Paths of the files written, in writing order (the page last). */
  readonly files: readonly string[];
  /** Files of the runs folder that were not used, with the reason. */
  readonly skipped: readonly SkippedFile[];
  /** How many run records the report covers. */
  readonly records: number;
  /** The ids of the run records the report covers. */
  readonly ids: readonly string[];
}

/**
 * Renders each drawn figure's static SVG. A figure that vega cannot draw becomes an omitted figure whose
 * sentence gives vega's reason, so one figure (or one record's odd value in it) never stops the report.
 */
export async function drawFigures(
  figures: readonly (Figure | OmittedFigure)[],
): Promise<((Figure & { readonly svg: string }) | OmittedFigure)[]> {
  const out: ((Figure & { readonly svg: string }) | OmittedFigure)[] = [];
  // One at a time: the views share vega's module state, and the order of writes stays fixed.
  for (const f of figures) {
    if (!isDrawn(f)) {
      out.push(f);
      continue;
    }
    try {
      out.push({ ...f, svg: await renderSvg(f.spec) });
    } catch (e) {
      const why = (e as Error).message.split("\n")[0];
      out.push({
        n: f.n,
        name: f.name,
        title: f.title,
        omitted: `Figure ${f.n} could not be drawn: ${why}.`,
      });
    }
  }
  return out;
}

/**
 * Reads the run records (and `determinism.json`, `matrix.json` and
 * `tolerance/*.json`, if present) of `runsDir` and writes `report.html`,
 * `figN-name.svg` and `figN-name.csv` into `outDir`; a figure with nothing
 * to draw gets no files, and the page says why. The folder is replaced as a
 * whole ({@linkcode replaceFolder}): it never holds half a report or files
 * of an earlier one, and a folder that holds anything but report files is
 * refused with a {@linkcode ReportFolderError} before anything is written.
 */
export async function writeReport(
  runsDir: string,
  outDir: string,
  o: ReportOptions = {},
): Promise<ReportResult> {
  const dir = outDir.replace(/\/+$/, "") || "/";
  const files: string[] = [];
  let result: ReportResult | null = null;
  // Everything happens inside replaceFolder, so a folder that cannot be replaced is refused before the work.
  await replaceFolder(outDir, async (fresh) => {
    const loaded = await loadRuns(runsDir);
    const runs = toRuns(loaded.records, loaded.matrix);
    // The pitfall experiments use other optimizers or policies; mixed into the main comparison they would
    // skew it.
    const main = runs.filter(isMain), pitfalls = runs.filter((r) => !isMain(r));
    const groups = groupRows(main);
    const figures = buildFigures({
      runs: main,
      groups,
      paper: o.paperTable !== false,
      pitfalls,
      tolerance: loaded.tolerance,
    });
    const rendered = await drawFigures(figures);
    const table5 = o.paperTable !== false ? table5View(main) : undefined;
    const page = renderPage({
      runs,
      groups,
      figures: rendered,
      determinism: loaded.determinism,
      skipped: loaded.skipped,
      vendor: await vendorScripts(),
      matrix: loaded.matrix,
      tolerance: loaded.tolerance,
      table5,
    });
    // The fresh folder is this process's own (created exclusively), so plain writes cannot be redirected.
    const put = async (name: string, text: string) => {
      await Deno.writeTextFile(`${fresh}/${name}`, text, { createNew: true });
      files.push(`${dir === "/" ? "" : dir}/${name}`);
    };
    for (const f of rendered) {
      if (!("svg" in f)) continue;
      await put(`${f.name}.svg`, f.svg + "\n");
      await put(`${f.name}.csv`, toCsv(f.data, f.columns));
    }
    if (table5) await put("table5.csv", toCsv(table5Csv(table5), TABLE5_COLUMNS));
    await put("report.html", page);
    result = { files, skipped: loaded.skipped, records: runs.length, ids: runs.map((r) => r.record.id) };
  });
  return result!;
}
