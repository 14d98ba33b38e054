/**
 * The report against hostile or odd input: record text that JavaScript
 * source, XML or a spreadsheet would trip on, and a report folder that is
 * rewritten, killed half-way or not a report folder at all.
 *
 * @module
 */

import assert from "node:assert/strict";
import { record } from "./support/records.ts";
import { writeReport } from "../reports/write.ts";
import { csvField, toCsv } from "../reports/csv.ts";
import { visibleText } from "../reports/text.ts";

const FIGURES = ["fig1-accuracy", "fig2-time", "fig3-accuracy-difference", "fig4-curves", "fig5-memory"];

async function writeRecords(dir: string, records: ReturnType<typeof record>[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const r of records) await Deno.writeTextFile(`${dir}/${r.id}.json`, JSON.stringify(r));
}

Deno.test("record text with line separators, controls and bidi overrides renders escaped", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    // U+2028 in a model name once stopped the report inside vega's expression parser.
    const odd = "cnn\u2028x\u0001\u202e";
    const records = ["fp32", "fp16", "mixed\u2029"].flatMap((precision) =>
      [1, 2].flatMap((seed) => [record({ precision, seed }), record({ model: odd, precision, seed })])
    );
    await writeRecords(`${root}/runs`, records);
    const r = await writeReport(`${root}/runs`, `${root}/out`);
    assert.deepEqual(r.skipped, []);
    assert.equal(r.records, 12);
    for (const f of FIGURES) {
      for (const ext of ["svg", "csv"]) {
        const text = await Deno.readTextFile(`${root}/out/${f}.${ext}`);
        // deno-lint-ignore no-control-regex -- no raw control character may reach a file
        assert.ok(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u2028\u2029\u202e]/.test(text), `${f}.${ext}`);
      }
    }
    const svg = await Deno.readTextFile(`${root}/out/fig1-accuracy.svg`);
    assert.ok(svg.includes("cnn\\u2028x\\u0001\\u202E"), "the model name is shown with visible escapes");
    const html = await Deno.readTextFile(`${root}/out/report.html`);
    assert.ok(html.includes("cnn\\u2028x\\u0001\\u202E"), "the page shows the escapes too");
    // deno-lint-ignore no-control-regex -- the page outside its scripts holds none either
    assert.ok(!/[\u0001\u2028\u202e]/.test(html.replace(/<script>[\s\S]*?<\/script>/g, "")));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("visibleText escapes what JavaScript source, XML and bidi rendering trip on, and nothing else", () => {
  assert.equal(visibleText("a\u2028b\u2029c"), "a\\u2028b\\u2029c");
  assert.equal(visibleText("\u0000\t\n\u007f\u0085"), "\\u0000\\u0009\\u000A\\u007F\\u0085");
  assert.equal(visibleText("\u202e\u2066\ufeff\uffff"), "\\u202E\\u2066\\uFEFF\\uFFFF");
  assert.equal(visibleText("lone \ud800 high"), "lone \\uD800 high");
  assert.equal(
    visibleText("pair \ud83d\ude00 ok, ünïcödé, 中文, <&>"),
    "pair \ud83d\ude00 ok, ünïcödé, 中文, <&>",
  );
});

Deno.test("CSV text that a spreadsheet would run as a formula is defused; numbers stay numbers", () => {
  assert.equal(csvField("=1+1"), "'=1+1");
  assert.equal(csvField("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
  assert.equal(csvField("-2+3"), "'-2+3");
  assert.equal(csvField("@SUM(A1:A9)"), "'@SUM(A1:A9)");
  assert.equal(csvField("\t=1"), "'\t=1");
  assert.equal(csvField('=HYPERLINK("http://x","y")'), `"'=HYPERLINK(""http://x"",""y"")"`);
  // A number cell is a number: a spreadsheet reads -0.5 as minus a half, not as a formula.
  assert.equal(csvField(-0.5), "-0.5");
  assert.equal(csvField(-1e-7), "-1e-7");
  assert.equal(csvField("-3"), "-3");
  assert.equal(csvField("+1.5e-7"), "+1.5e-7");
  assert.equal(csvField("fp16 - fp32"), "fp16 - fp32");
  assert.equal(toCsv([{ model: "=2*3", diff: -1.25 }]), "model,diff\n'=2*3,-1.25\n");
});

Deno.test("a model named like a formula reaches the figure CSV defused", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await writeRecords(`${root}/runs`, [record({ model: "=cmd()" }), record({ model: "=cmd()", seed: 2 })]);
    await writeReport(`${root}/runs`, `${root}/out`);
    const csv = await Deno.readTextFile(`${root}/out/fig1-accuracy.csv`);
    assert.ok(!/(^|,)=cmd/m.test(csv), csv);
    assert.match(csv, /(^|,)'=cmd\(\) \(synthetic\)/m);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
