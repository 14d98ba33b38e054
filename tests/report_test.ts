/**
 * Tests of the report writer on small synthetic run records made here (so
 * the test needs no training run): byte-identical output, the expected
 * files, well-formed SVG, a page that loads nothing from the network,
 * escaping of record text, and skipping of damaged records.
 *
 * @module
 */

import assert from "node:assert/strict";
import { makeRuns, record, XSS } from "./support/records.ts";
import { writeReport } from "../reports/write.ts";
import { escapeHtml, jsonForScript } from "../reports/html.ts";
import { csvField } from "../reports/csv.ts";
import { modelLabel } from "../reports/aggregate.ts";

const FIGURES = ["fig1-accuracy", "fig2-time", "fig3-accuracy-difference", "fig4-curves", "fig5-memory"];
const AXIS_TITLES: Record<string, string[]> = {
  "fig1-accuracy": ["final test accuracy (%)", "model (dataset)"],
  "fig2-time": ["training time (s)", "time ratio"],
  "fig3-accuracy-difference": ["accuracy difference (points)"],
  "fig4-curves": ["epoch", "train loss"],
  "fig5-memory": ["bytes", "precision"],
};

/** A small XML well-formedness check: balanced tags under one root, which must be <svg>. */
function assertWellFormedSvg(text: string, name: string): void {
  assert.ok(text.startsWith("<svg"), `${name} starts with <svg`);
  const stack: string[] = [];
  let roots = 0;
  for (const m of text.matchAll(/<(\/?)([a-zA-Z][\w:.-]*)((?:[^>"']|"[^"]*"|'[^']*')*?)(\/?)>/g)) {
    const [, close, tag, , selfClose] = m;
    if (close) assert.equal(stack.pop(), tag, `${name}: </${tag}> closes the open element`);
    else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(tag);
    } else if (stack.length === 0) roots++;
  }
  assert.deepEqual(stack, [], `${name}: every element is closed`);
  assert.equal(roots, 1, `${name}: one root element`);
  assert.ok(!/<(?![\/a-zA-Z!?])/.test(text), `${name}: no stray <`);
}

async function readAll(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) out.set(e.name, await Deno.readFile(`${dir}/${e.name}`));
  return out;
}

Deno.test("writeReport writes the same bytes twice, every file, and skips damaged records", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    await makeRuns(`${root}/runs`);
    const a = await writeReport(`${root}/runs`, `${root}/a`);
    const b = await writeReport(`${root}/runs`, `${root}/b/`);
    assert.equal(a.records, 17);
    assert.deepEqual(b.skipped, a.skipped);
    assert.ok(b.files.every((f) => f.startsWith(`${root}/b/`) && !f.includes("//")));

    const skipped = Object.fromEntries(a.skipped.map((s) => [s.file, s.reason]));
    assert.deepEqual(Object.keys(skipped).sort(), [
      "corrupt.json",
      "foreign.json",
      "noseed.json",
      "truncated.json",
    ]);
    assert.match(skipped["truncated.json"], /Invalid JSON/);
    assert.match(skipped["noseed.json"], /config\.seed/);
    assert.match(skipped["foreign.json"], /Schema/);

    const expected = ["report.html", "table5.csv", ...FIGURES.flatMap((f) => [`${f}.svg`, `${f}.csv`])]
      .sort();
    const filesA = await readAll(`${root}/a`), filesB = await readAll(`${root}/b`);
    assert.deepEqual(
      [...filesA.keys()].sort(),
      expected,
      "exactly the expected files, no temporary leftovers",
    );
    assert.deepEqual(a.files.map((f) => f.split("/").at(-1)).sort(), expected);
    for (const [name, bytes] of filesA) {
      assert.deepEqual(filesB.get(name), bytes, `${name} is byte-identical`);
    }

    const text = (name: string) => new TextDecoder().decode(filesA.get(name));
    for (const f of FIGURES) {
      const svg = text(`${f}.svg`);
      assertWellFormedSvg(svg.trimEnd(), f);
      for (const t of AXIS_TITLES[f]) assert.ok(svg.includes(escapeHtml(t)), `${f}.svg has axis title ${t}`);
      assert.ok(!svg.includes(XSS), `${f}.svg escapes record text`);
      assert.ok(text(`${f}.csv`).split("\n").length > 2, `${f}.csv has data rows`);
    }
    assert.ok(
      text("fig2-time.svg").includes("16-bit arithmetic emulated on the CPU"),
      "how times were taken",
    );
    assert.ok(text("fig2-time.svg").includes("How many cells trained at once is not recorded"));
    assert.ok(text("fig5-memory.svg").includes("The paper gives no memory figures"));

    const html = text("report.html");
    assert.ok(!html.includes(XSS), "the precision string never appears raw");
    assert.ok(html.includes(escapeHtml(XSS)), "the precision string appears escaped");
    assert.ok(html.includes("&lt;noise&gt;") && html.includes("CPU &lt;ref&gt;"), "provenance is escaped");
    assert.ok(html.includes("2 of 3 re-runs bit-identical"), "determinism summary");
    assert.ok(html.includes("non-finite loss"), "diverged runs table");
    assert.ok(html.includes("mlp 784-16-10"), "MLP label from the parameter count");
    assert.ok(html.includes("AlexNet"), "paper numbers beside ours");
    assert.equal((html.match(/<noscript id="static-/g) ?? []).length, 5, "a static SVG for every figure");
    assert.equal((html.match(/<svg /g) ?? []).length >= 5, true);
    assert.ok(html.includes("actions: false"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the report page loads nothing from the network", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    await makeRuns(`${root}/runs`);
    await writeReport(`${root}/runs`, `${root}/out`);
    const html = await Deno.readTextFile(`${root}/out/report.html`);
    // Library code may hold URL strings; only markup outside scripts can make the browser load something.
    const markup = html.replace(/(<script\b[^>]*>)[\s\S]*?<\/script>/gi, "$1</script>")
      .replace(/<noscript\b[^>]*>[\s\S]*?<\/noscript>/gi, "");
    assert.ok(!/<script\b[^>]*\bsrc\s*=/i.test(markup), "no script src");
    assert.ok(!/<link\b/i.test(markup), "no link elements");
    assert.ok(!/<(img|iframe|embed|object|source|video|audio)\b/i.test(markup), "no embedded resources");
    assert.ok(
      !/\b(src|href|srcset|action|data|poster)\s*=\s*["']?\s*(https?:)?\/\//i.test(markup),
      "no remote URL",
    );
    assert.ok(!/url\(\s*["']?\s*(https?:)?\/\//i.test(markup), "no remote URL in CSS");
    assert.match(markup, /Content-Security-Policy" content="default-src &#39;none&#39;/);
    assert.equal((html.match(/<script>/g) ?? []).length, 4, "three libraries and the embedding script");
    assert.ok(!/sourceMappingURL/.test(html), "no source map for developer tools to fetch");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("without determinism.json or paper table the report says so", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    await Deno.writeTextFile(`${root}/runs/one.json`, JSON.stringify(record({ precision: "bf16" })));
    const r = await writeReport(`${root}/runs`, `${root}/out`, { paperTable: false });
    assert.deepEqual(r.skipped, []);
    const html = await Deno.readTextFile(`${root}/out/report.html`);
    assert.ok(html.includes("No determinism check in this folder"));
    assert.ok(!html.includes("AlexNet"), "no paper numbers when paperTable is false");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("escaping helpers", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  assert.equal(jsonForScript({ p: "</script><!--" }), '{"p":"\\u003c/script\\u003e\\u003c!--"}');
  assert.deepEqual(JSON.parse(jsonForScript({ p: XSS })), { p: XSS });
  assert.equal(csvField('a,"b"'), '"a,""b"""');
  assert.equal(csvField(null), "");
  assert.equal(csvField(1.5), "1.5");
  assert.equal(modelLabel(record({ model: "mlp", hidden: [16] })), "mlp 784-16-10");
  assert.equal(modelLabel(record({ model: "cnn" })), "cnn");
});

Deno.test("runs of one model with different settings are not averaged together as seeds", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/runs`);
    for (const [seed, epochs] of [[1, 2], [2, 2], [1, 3]]) {
      const r = record({ precision: "fp32", seed });
      const rec = { ...r, id: `${r.id.slice(0, 14)}${epochs}${seed}`, config: { ...r.config, epochs } };
      await Deno.writeTextFile(`${root}/runs/${rec.id}.json`, JSON.stringify(rec));
    }
    await writeReport(`${root}/runs`, `${root}/out`);
    const csv = await Deno.readTextFile(`${root}/out/fig1-accuracy.csv`);
    const ours = csv.split("\n").filter((l) => l.startsWith("ours,"));
    assert.equal(ours.length, 2, csv);
    assert.ok(ours.some((l) => l.includes("[epochs 2]") && l.includes(",2,0,")), csv);
    assert.ok(ours.some((l) => l.includes("[epochs 3]") && l.includes(",1,0,")), csv);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("report: an engine is labelled from its record's own guarantee, never from its name", async () => {
  const { engineLabel } = await import("../reports/engine_label.ts");
  const withEngine = (engine: string, e: Record<string, unknown> | undefined) => {
    const r = record({ seed: 1 });
    return { ...r, config: { ...r.config, engine }, environment: { ...r.environment, engine: e } };
  };
  assert.equal(engineLabel(withEngine("wasm", { capabilities: { bitExactWithRef: true } })), "wasm");
  // A new engine the report has never heard of: its record's statement is what counts.
  assert.equal(
    engineLabel(withEngine("gpu9", { capabilities: { bitExactWithRef: false }, guarantee: "within 1 ulp" })),
    "gpu9 (within 1 ulp)",
  );
  assert.match(
    engineLabel(withEngine("wasm", { capabilities: { bitExactWithRef: false } })),
    /not bit-exact/,
  );
  assert.match(engineLabel(withEngine("ref", undefined)), /not bit-exact/);
});
