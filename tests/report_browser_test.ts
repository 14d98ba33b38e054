/**
 * The report as a reader sees it: opened in headless Chromium (Debian's
 * chromium package), every figure is rendered by vega-embed, the console has
 * no error, the page makes no network request, and a screenshot is saved.
 * CI installs Chromium (.ci/run); elsewhere the test is skipped with a note
 * when Chromium is missing.
 */

import assert from "node:assert/strict";
import { writeReport } from "../reports/write.ts";
import { Browser, CHROMIUM } from "./support/cdp.ts";
import { makeRuns, record } from "./support/records.ts";

const inCi = (() => {
  try {
    return !!Deno.env.get("CI");
  } catch {
    return false;
  }
})();
if (!CHROMIUM && !inCi) console.warn("report_browser_test: Chromium not installed, test skipped");

Deno.test({
  name: "the report renders every figure in headless Chromium, offline, without console errors",
  ignore: !CHROMIUM && !inCi,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const root = await Deno.makeTempDir();
    const browser = await Browser.launch();
    try {
      await Deno.mkdir(`${root}/runs`);
      await makeRuns(`${root}/runs`);
      // A Table 5 network too, so figures 1-3 draw their side-by-side panels (ours beside the paper's).
      for (const precision of ["fp16", "fp32", "mixed"]) {
        for (const seed of [1, 2]) {
          const r = record({ model: "alexnet", precision, seed });
          await Deno.writeTextFile(`${root}/runs/${r.id}.json`, JSON.stringify(r));
        }
      }
      await writeReport(`${root}/runs`, `${root}/out`);
      const page = `file://${root}/out/report.html`;
      await browser.send("Page.navigate", { url: page });
      let rendered = 0;
      for (let i = 0; i < 150 && rendered < 5; i++) {
        await new Promise((r) => setTimeout(r, 200));
        rendered = await browser.evaluate(
          `[...document.querySelectorAll(".vega-embed")].filter((e) => e.querySelector("svg.marks, canvas.marks")).length`,
        ) as number;
      }
      assert.equal(rendered, 5, "every figure is drawn by vega-embed");
      const figureIds = await browser.evaluate(
        `[...document.querySelectorAll(".vega-embed")].map((e) => e.id)`,
      );
      assert.deepEqual(figureIds, [
        "vis-fig1-accuracy",
        "vis-fig2-time",
        "vis-fig3-accuracy-difference",
        "vis-fig4-curves",
        "vis-fig5-memory",
      ]);
      assert.equal(
        await browser.evaluate(
          `document.getElementById("vis-fig1-accuracy").textContent.includes("Ours: Table 5 networks")`,
        ),
        true,
        "figure 1 draws the Table 5 networks' panel",
      );
      // The script tag in a record's precision name is shown as text and never runs (no alert dialog).
      assert.equal(
        await browser.evaluate(`document.body.innerText.includes("<script>alert(1)</script>")`),
        true,
      );
      assert.equal(browser.events.filter((e) => e.method === "Page.javascriptDialogOpening").length, 0);

      const requests = browser.events.filter((e) => e.method === "Network.requestWillBeSent")
        .map((e) => (e.params!.request as { url: string }).url);
      assert.deepEqual(requests.filter((u) => !u.startsWith("file:") && !u.startsWith("data:")), []);
      assert.ok(requests.includes(page), "the page itself was loaded");
      const errors = browser.events.filter((e) =>
        e.method === "Runtime.exceptionThrown" ||
        (e.method === "Runtime.consoleAPICalled" && ["error", "assert"].includes(e.params!.type as string)) ||
        (e.method === "Log.entryAdded" && (e.params!.entry as { level: string }).level === "error")
      );
      assert.deepEqual(errors, [], "no console errors");

      // Every figure fits the 1200 px column at 1280 px, by its own size (not only scaled down by CSS),
      // and every legend (which colour is which precision) is inside the window.
      const layout = () =>
        browser.evaluate(`(() => {
          const col = document.querySelector("section").getBoundingClientRect();
          const figs = [...document.querySelectorAll(".vis svg.marks")].map((s) => {
            const r = s.getBoundingClientRect();
            return { id: s.closest(".vis").id, width: r.width, natural: Number(s.getAttribute("width")),
              left: r.left, right: r.right };
          });
          const legends = [...document.querySelectorAll(".vis g.role-legend")].map((g) => {
            const r = g.getBoundingClientRect();
            return { id: g.closest(".vis").id, left: r.left, right: r.right };
          });
          const tables = Math.max(...[...document.querySelectorAll("table")].map((t) => t.getBoundingClientRect().right));
          return { col: { left: col.left, right: col.right, width: col.width }, view: innerWidth, figs, legends, tables };
        })()`) as Promise<{
          col: { left: number; right: number; width: number };
          view: number;
          figs: { id: string; width: number; natural: number; left: number; right: number }[];
          legends: { id: string; left: number; right: number }[];
          tables: number;
        }>;
      const screen = await layout();
      assert.equal(screen.view, 1280);
      assert.ok(screen.col.width <= 1200, `the column is ${screen.col.width} px`);
      assert.equal(screen.figs.length, 5);
      for (const f of screen.figs) {
        assert.ok(f.natural <= 1200, `${f.id} is drawn ${f.natural} px wide`);
        assert.ok(
          f.left >= screen.col.left - 1 && f.right <= screen.col.right + 1,
          `${f.id} inside the column`,
        );
      }
      assert.ok(screen.legends.length >= 5, "a legend in every figure");
      for (const l of screen.legends) {
        assert.ok(l.left >= 0 && l.right <= screen.view, `${l.id}'s legend is visible`);
      }
      // Printed on A4 (210 mm less Chromium's default margins: about 718 CSS px), figures and legends
      // are scaled into the page.
      await browser.send("Emulation.setEmulatedMedia", { media: "print" });
      await browser.send("Emulation.setDeviceMetricsOverride", {
        width: 718,
        height: 1000,
        deviceScaleFactor: 1,
        mobile: false,
      });
      const print = await layout();
      for (const f of print.figs) assert.ok(f.left >= 0 && f.right <= print.view + 1, `${f.id} fits A4`);
      for (const l of print.legends) {
        assert.ok(l.left >= 0 && l.right <= print.view + 1, `${l.id}'s legend on A4`);
      }
      // A printed page cannot scroll, so every column of every table (the exact configs are the widest) is on it.
      assert.ok(
        print.tables <= print.view + 1,
        `tables end at ${print.tables} px on a ${print.view} px page`,
      );
      await browser.send("Emulation.setEmulatedMedia", { media: "" });
      await browser.send("Emulation.clearDeviceMetricsOverride");

      const shot = await browser.send("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
      }) as {
        data: string;
      };
      const png = Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0));
      assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
      // Kept for a person to look at: test-output/ is git-ignored.
      const keep = new URL("../test-output/", import.meta.url);
      await Deno.mkdir(keep, { recursive: true });
      await Deno.writeFile(new URL("report-screenshot.png", keep), png);
      assert.ok(png.length > 20_000);
    } finally {
      await browser.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
