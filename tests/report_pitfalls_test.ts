/**
 * Tests of the report's pitfall inputs and figures on a synthetic runs
 * folder: matrix.json keeps the Adam-epsilon and accumulation runs out of the
 * main comparison, tolerance results become figure 6 with their counts in
 * the caption (and a violation flagged as a bug), lost updates become figure
 * 8, and damaged inputs are skipped by name, all byte-identical on a second
 * write.
 *
 * @module
 */

import assert from "node:assert/strict";
import { makePitfallRuns, makeRuns, record } from "./support/records.ts";
import { writeReport } from "../reports/write.ts";
import { matrixProblem, toleranceProblem } from "../reports/inputs.ts";
import { compareVariant } from "../reports/pitfall_data.ts";
import { SCATTER_LIMIT, tolerancePanels } from "../reports/tolerance_data.ts";
import type { ToleranceResult } from "../reports/inputs.ts";
import { toleranceResult } from "./support/records.ts";

const NEW_FIGURES = ["fig6-tolerance", "fig7-adam-epsilon", "fig8-lost-updates", "fig9-accumulation"];

async function readAll(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) out.set(e.name, await Deno.readFile(`${dir}/${e.name}`));
  return out;
}

/** Parses simple CSV (no quoted line breaks) into header-keyed rows. */
function csvRows(text: string): Record<string, string>[] {
  const split = (line: string) =>
    [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)].slice(0, -1).map((m) =>
      m[1].startsWith('"') ? m[1].slice(1, -1).replaceAll('""', '"') : m[1]
    );
  const [head, ...lines] = text.trimEnd().split("\n");
  const cols = split(head);
  return lines.map((l) => Object.fromEntries(split(l).map((v, i) => [cols[i], v])));
}

Deno.test("pitfall inputs: matrix, tolerance and lost updates give figures 6-9, the same bytes twice", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-pitfalls-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    const { main, other } = await makePitfallRuns(`${root}/runs`);
    const a = await writeReport(`${root}/runs`, `${root}/a`);
    const b = await writeReport(`${root}/runs`, `${root}/b`);
    assert.deepEqual(b.skipped, a.skipped);
    assert.equal(a.records, main.length + other.length);
    const skipped = Object.fromEntries(a.skipped.map((s) => [s.file, s.reason]));
    assert.deepEqual(Object.keys(skipped), ["tolerance/c-short.json", "tolerance/d-broken.json"]);
    assert.match(skipped["tolerance/c-short.json"], /points has 199 entries, count is 200/);
    assert.match(skipped["tolerance/d-broken.json"], /Invalid JSON/);

    const filesA = await readAll(`${root}/a`), filesB = await readAll(`${root}/b`);
    for (const f of NEW_FIGURES) {
      assert.ok(filesA.has(`${f}.svg`) && filesA.has(`${f}.csv`), `${f} files exist`);
    }
    for (const [name, bytes] of filesA) {
      assert.deepEqual(filesB.get(name), bytes, `${name} is byte-identical`);
    }
    const text = (name: string) => new TextDecoder().decode(filesA.get(name));

    // Figure 1 and the summary count only the main runs.
    const acc = csvRows(text("fig1-accuracy.csv")).filter((r) => r.source === "ours");
    assert.deepEqual(acc.map((r) => `${r.cell} ${r.precision} ${r.runs}`), [
      "cnn (synthetic) fp16 1",
      "mlp 784-16-10 (synthetic) fp32 2",
      "mlp 784-16-10 (synthetic) fp16 2",
      "mlp 784-16-10 (synthetic) mixed 2",
    ]);
    for (const f of ["fig1-accuracy", "fig2-time", "fig4-curves", "fig5-memory"]) {
      assert.ok(!text(`${f}.csv`).includes("accumulate=fp16"), `${f} has no accumulation run`);
    }
    const html = text("report.html");
    assert.ok(html.includes("7 run records in the main comparison"));
    assert.ok(html.includes("6 more records of the pitfall experiments"));

    // Figure 6: every input in the CSV, disagreements marked, counts in the caption, a violation flagged.
    const tol = csvRows(text("fig6-tolerance.csv"));
    assert.equal(tol.length, 400);
    assert.equal(tol.filter((r) => r.panel === "1" && r.category === "disagreement").length, 2);
    assert.equal(tol.filter((r) => r.panel === "2" && r.category.startsWith("violation")).length, 1);
    assert.equal(tol.find((r) => r.panel === "1" && r.i === "0")!.delta, "0");
    assert.ok(html.includes("Panel 1 (tolerance/a-fp16.json): Gamma &gt; 2 delta on 195 of 200 inputs"));
    assert.ok(html.includes("2 disagreements; 0 violations"));
    assert.ok(html.includes("4 disagreements; 1 violation;"));
    assert.ok(html.includes("panel 1: 1 input at the floor"));
    assert.match(html, /<p class="bug">Bug: panel 2 \(tolerance\/b-bf16\.json\) has 1 lemma violation/);
    assert.ok(!html.includes('<p class="bug">Bug: panel 1'));
    assert.ok(text("fig6-tolerance.svg").includes("Gamma = 2 delta"));

    // Figure 7: one line per variant and precision; the diverged run in the table.
    const eps = csvRows(text("fig7-adam-epsilon.csv"));
    assert.deepEqual([...new Set(eps.map((r) => `${r.variant} ${r.precision}`))], [
      "epsilon 1e-7 fp32",
      "epsilon 1e-7 fp16",
      "epsilon 0.0001 fp32",
      "epsilon 0.0001 fp16",
    ]);
    assert.ok(html.includes("diverged at epoch 2, step 9: non-finite loss"));
    // Figure 8: lost updates of the main runs only, where recorded (the cnn record has none).
    const lost = csvRows(text("fig8-lost-updates.csv"));
    assert.deepEqual([...new Set(lost.map((r) => r.precision))], ["fp32", "fp16", "mixed"]);
    assert.ok(lost.every((r) => r.cell.startsWith("mlp") && r.runs === "2"));
    assert.equal(lost.find((r) => r.precision === "fp16" && r.epoch === "1")!.mean, "5.15");
    // Figure 9: both precision strings.
    const accu = csvRows(text("fig9-accumulation.csv"));
    assert.deepEqual(accu.map((r) => r.precision), ["fp16", "params=fp16,compute=fp16,accumulate=fp16"]);
    assert.ok(html.includes("10. Determinism"));
    assert.equal((html.match(/<noscript id="static-/g) ?? []).length, 9);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a corrupt matrix.json is skipped and every record counts as main", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-pitfalls-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    const { main, other } = await makePitfallRuns(`${root}/runs`);
    await Deno.writeTextFile(`${root}/runs/matrix.json`, JSON.stringify({ schema: "f16repro.matrix/1" }));
    const r = await writeReport(`${root}/runs`, `${root}/out`);
    const reason = r.skipped.find((s) => s.file === "matrix.json")?.reason ?? "";
    assert.match(reason, /profile.*every record counts as main/);
    const html = await Deno.readTextFile(`${root}/out/report.html`);
    assert.ok(html.includes(`${main.length + other.length} run records in the main comparison`));
    assert.ok(html.includes("no records of an Adam-epsilon experiment"), "figure 7 omitted, and said so");
    assert.ok(html.includes("no records of an accumulation experiment"), "figure 9 omitted, and said so");
    const files = [...(await readAll(`${root}/out`)).keys()];
    assert.ok(!files.includes("fig7-adam-epsilon.svg") && !files.includes("fig9-accumulation.csv"));
    assert.ok((await Deno.readTextFile(`${root}/out/fig1-accuracy.csv`)).includes("accumulate=fp16"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("without the new inputs, figures 6-9 are omitted with a sentence each", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-pitfalls-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    await makeRuns(`${root}/runs`);
    await writeReport(`${root}/runs`, `${root}/out`);
    const html = await Deno.readTextFile(`${root}/out/report.html`);
    for (const n of [6, 7, 8, 9]) {
      assert.match(html, new RegExp(`<h2>Figure ${n}\\. [^<]*</h2>\\n<p class="note">`));
    }
    assert.ok(html.includes("no usable tolerance results"));
    assert.ok(html.includes("No main run record has lost-update counts"));
    assert.ok(html.includes("(not drawn)"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("input validation names the problem", () => {
  assert.equal(matrixProblem({ schema: "f16repro.matrix/1", profile: "p", experiments: [] }), null);
  assert.match(
    matrixProblem({
      schema: "f16repro.matrix/1",
      profile: "p",
      experiments: [{ name: "x", kind: "other", description: "", cells: [] }],
    })!,
    /experiments\[0\]\.kind/,
  );
  assert.match(matrixProblem([])!, /Not a JSON object/);
  assert.match(toleranceProblem({ schema: "f16repro.tolerance/0" })!, /Schema/);
  const bad = JSON.parse(JSON.stringify(record()));
  assert.match(toleranceProblem(bad)!, /Schema/);
  assert.ok(compareVariant("epsilon 1e-7", "epsilon 1e-4") < 0);
  assert.ok(compareVariant("a", "b") < 0);
});

Deno.test("a large tolerance file is thinned for the scatter, keeping every disagreement", () => {
  const result = toleranceResult({ n: 12_000, disagreements: 40 }) as unknown as ToleranceResult;
  const [p] = tolerancePanels([{ file: "tolerance/big.json", result }], []);
  assert.equal(p.rows.length, 12_000, "the CSV keeps every input");
  assert.ok(p.thinning > 1 && p.drawn.length <= SCATTER_LIMIT, `${p.drawn.length} drawn`);
  assert.equal(p.drawn.filter((r) => r.category === "disagreement").length, 40);
  assert.equal(p.rows.filter((r) => r.drawn === "yes").length, p.drawn.length);
  assert.equal(p.clamped, 1, "the input with delta 0 is drawn at the floor");
});
