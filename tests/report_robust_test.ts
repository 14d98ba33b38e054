/**
 * The report against hostile or odd input: record text that JavaScript
 * source, XML or a spreadsheet would trip on, and a report folder that is
 * rewritten, killed half-way or not a report folder at all.
 *
 * @module
 */

import assert from "node:assert/strict";
import { record } from "./support/records.ts";
import { drawFigures, writeReport } from "../reports/write.ts";
import type { Figure } from "../reports/figure_style.ts";
import { csvField, toCsv } from "../reports/csv.ts";
import { visibleText } from "../reports/text.ts";
import { runCli } from "./support/cli.ts";

/** The permissions of `deno task report`. */
const REPORT_PERMS = ["--allow-read", "--allow-write", "--allow-env"];

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

/** Every file of `dir` by name (sorted), with its bytes as text. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  names.sort();
  const out: Record<string, string> = {};
  for (const n of names) out[n] = await Deno.readTextFile(`${dir}/${n}`);
  return out;
}

/** Names in `parent` that are leftovers of a report write. */
async function leftovers(parent: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(parent)) if (/\.(partial|old)-/.test(e.name)) out.push(e.name);
  return out.sort();
}

Deno.test("a rewritten report folder holds no file of a figure that is no longer drawn", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await writeRecords(`${root}/runs`, [record({ seed: 1 }), record({ seed: 2 })]);
    await writeReport(`${root}/runs`, `${root}/out`);
    const first = await snapshot(`${root}/out`);
    // As an earlier report with lost-update records would have left it.
    await Deno.writeTextFile(`${root}/out/fig8-lost-updates.svg`, "<svg/>");
    await Deno.writeTextFile(`${root}/out/fig8-lost-updates.csv`, "a\n");
    const r = await writeReport(`${root}/runs`, `${root}/out/`);
    assert.deepEqual(await snapshot(`${root}/out`), first);
    assert.deepEqual(
      r.files.map((f) => f.slice(root.length)).sort(),
      Object.keys(first).map((n) => `/out/${n}`),
    );
    assert.deepEqual(await leftovers(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a folder that holds anything but report files is refused before anything is written", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await writeRecords(`${root}/runs`, [record({ seed: 1 })]);
    // The runs folder itself, as a mistyped -o would give.
    const before = await snapshot(`${root}/runs`);
    await assert.rejects(
      writeReport(`${root}/runs`, `${root}/runs`),
      (e: Error) =>
        e.name === "Error" &&
        /^Output folder .*runs holds .*\.json, which is not a report file/.test(e.message),
    );
    assert.deepEqual(await snapshot(`${root}/runs`), before);
    const cli = await runCli(["report", `${root}/runs`, "-o", `${root}/runs`], REPORT_PERMS);
    assert.equal(cli.code, 2);
    assert.match(
      cli.stderr,
      /^f16repro: Output folder .*runs holds .*\.json, which is not a report file; [^\n]*\n$/,
    );
    assert.deepEqual(await snapshot(`${root}/runs`), before);
    await Deno.writeTextFile(`${root}/file`, "x");
    await assert.rejects(
      writeReport(`${root}/runs`, `${root}/file`),
      /Output .*file exists and is not a folder/,
    );
    assert.deepEqual(await leftovers(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("leftovers of a killed report write are removed by the next one; other folders' are kept", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await writeRecords(`${root}/runs`, [record({ seed: 1 })]);
    // Process 999999999 is above Linux's pid limit, so it is not running.
    for (
      const n of [".out.partial-999999999-0a1b", ".out.old-999999999-2c3d", `.out.partial-${Deno.pid}-4e5f`]
    ) {
      await Deno.mkdir(`${root}/${n}`);
      await Deno.writeTextFile(`${root}/${n}/report.html`, "half");
    }
    await Deno.mkdir(`${root}/.other.partial-999999999-0a1b`);
    await writeReport(`${root}/runs`, `${root}/out`);
    assert.deepEqual(await leftovers(root), [".other.partial-999999999-0a1b"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("report killed at any moment leaves the old report or the new one, never a mix", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await writeRecords(`${root}/old`, [record({ seed: 1 }), record({ seed: 2 })]);
    await writeRecords(
      `${root}/new`,
      ["fp32", "fp16"].flatMap((precision) =>
        [1, 2].map((seed) => record({ precision, seed, model: "cnn" }))
      ),
    );
    await writeReport(`${root}/new`, `${root}/expected`);
    const expected = await snapshot(`${root}/expected`);
    await writeReport(`${root}/old`, `${root}/out`);
    const old = await snapshot(`${root}/out`);
    const main = new URL("../main.ts", import.meta.url).pathname;
    // Kills spread over start-up, drawing and writing; each leaves one whole report.
    for (const ms of [1500, 3000, 4500]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          main,
          "report",
          `${root}/new`,
          "-o",
          `${root}/out`,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), ms);
      await child.status;
      clearTimeout(timer);
      const now = await Deno.stat(`${root}/out`).then(() => snapshot(`${root}/out`), () => null);
      // Between the two renames the folder is briefly absent, with the new report complete beside it.
      assert.ok(
        now === null || JSON.stringify(now) === JSON.stringify(old) ||
          JSON.stringify(now) === JSON.stringify(expected),
        `after a kill at ${ms} ms: ${now ? Object.keys(now).join(" ") : "absent"}`,
      );
      if (now && JSON.stringify(now) === JSON.stringify(expected)) {
        await writeReport(`${root}/old`, `${root}/out`);
      }
    }
    await writeReport(`${root}/new`, `${root}/out`);
    assert.deepEqual(await snapshot(`${root}/out`), expected);
    assert.deepEqual(await leftovers(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a figure vega cannot draw is omitted with vega's reason; the other figures are drawn", async () => {
  const good = {
    n: 1,
    name: "fig1-ok",
    title: "ok",
    caption: [],
    spec: {
      data: { values: [{ a: 1 }] },
      mark: "point",
      encoding: { x: { field: "a", type: "quantitative" } },
    },
    data: [{ a: 1 }],
    columns: ["a"],
  };
  const bad = { ...good, n: 2, name: "fig2-bad", title: "bad", spec: { ...good.spec, mark: "no-such-mark" } };
  const out = await drawFigures([good, bad] as unknown as Figure[]);
  assert.ok("svg" in out[0] && out[0].svg.startsWith("<svg"));
  assert.ok("omitted" in out[1]);
  assert.match((out[1] as { omitted: string }).omitted, /^Figure 2 could not be drawn: .+\.$/);
});
