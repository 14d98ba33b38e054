/**
 * The report as an author attaches it: a scope box and one sentence per claim
 * of the paper, both computed from the records; a summary that never
 * averages two settings; figures that fit the page's column, share their
 * scales where panels are compared, and keep overlapping curves apart.
 *
 * @module
 */

import assert from "node:assert/strict";
import { makePitfallRuns, makeRuns, record } from "./support/records.ts";
import { writeReport } from "../reports/write.ts";
import { groupRows, toRuns } from "../reports/aggregate.ts";
import { claimSentences } from "../reports/claims.ts";
import { scopeRows, timingConditions } from "../reports/scope.ts";
import { buildFigures, type Figure } from "../reports/figures.ts";
import { isDrawn, MAX_FIGURE_WIDTH } from "../reports/figure_style.ts";
import { loadRuns } from "../reports/load.ts";
import { renderSvg } from "../reports/svg.ts";
import type { RunRecord } from "../lib/record/schema.ts";

type Rec = RunRecord & Record<string, unknown>;
const loaded = (records: readonly RunRecord[]) => records.map((record, i) => ({ file: `${i}.json`, record }));

/** A record of the given options with an exact wasm engine (as the real wasm engine's manifest says). */
function exact(o: Parameters<typeof record>[0], extra: Partial<Rec> = {}): Rec {
  const r = record({ engine: "wasm", ...o });
  const environment = {
    ...r.environment,
    cpu: "Test CPU 3000",
    gitCommit: "0123456789ab",
    engine: {
      name: "wasm",
      mode: "exact (bit-identical to ref)",
      threads: "1",
      capabilities: { bitExactWithRef: true },
    },
  };
  return { ...r, environment, ...extra } as Rec;
}

async function writeRecords(dir: string, records: readonly RunRecord[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const r of records) await Deno.writeTextFile(`${dir}/${r.id}.json`, JSON.stringify(r));
}

Deno.test("the summary never averages runs of an engine that is not bit-exact with those of one that is", () => {
  const ort = (seed: number) => {
    const r = record({ engine: "ort", seed });
    const engine = { name: "ort", capabilities: { bitExactWithRef: false } };
    return { ...r, id: `ort-${seed}`, environment: { ...r.environment, engine } };
  };
  const runs = toRuns(loaded([exact({ seed: 1 }), exact({ seed: 2 }), ort(1), ort(2)]));
  const rows = groupRows(runs);
  assert.equal(rows.length, 2, JSON.stringify(rows.map((r) => r.cell)));
  assert.deepEqual(rows.map((r) => r.runs), [2, 2]);
  assert.ok(rows.some((r) => r.cell.includes("ort")), "the label says which setting differs");
  // The exact engines (ref, wasm) are one computation: their runs do group together.
  const same = groupRows(toRuns(loaded([exact({ seed: 1 }), { ...exact({ seed: 2 }), id: "ref-2" }])));
  assert.equal(same.length, 1);
  assert.equal(same[0].epochs, 3);
  assert.equal(same[0].trainExamples, 300);
});

Deno.test("the summary table has epochs and dataset-size columns", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    const withCounts = (seed: number) => {
      const r = exact({ seed });
      return { ...r, dataset: { ...r.dataset, trainCount: 1234, testCount: 567 } };
    };
    await writeRecords(`${root}/runs`, [withCounts(1), withCounts(2)]);
    await writeReport(`${root}/runs`, `${root}/out`);
    const html = await Deno.readTextFile(`${root}/out/report.html`);
    const summary = html.slice(
      html.indexOf('<section id="summary">'),
      html.indexOf("</section>", html.indexOf('<section id="summary">')),
    );
    for (const h of ["train examples", "test examples", "epochs"]) {
      assert.ok(summary.includes(`<th>${h}</th>`), h);
    }
    assert.match(summary, /<td class="num">1234<\/td><td class="num">567<\/td><td class="num">3<\/td>/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the scope box is computed from the records, the launch field included", () => {
  const launch = { command: "f16repro reproduce --profile quick --jobs 2", cellsAtOnce: 2 };
  const runs = toRuns(
    loaded([exact({ seed: 1 }, { launch }), exact({ seed: 2, precision: "fp16" }, { launch })]),
  );
  const rows = Object.fromEntries(scopeRows(runs, null));
  assert.equal(rows.Command, launch.command);
  assert.equal(rows.Epochs, "3");
  assert.equal(rows.Precisions, "fp16, fp32");
  assert.equal(rows.Seeds, "1, 2");
  assert.equal(rows.Engine, "wasm: exact (bit-identical to ref)");
  assert.equal(rows.Machine, "Test CPU 3000, 2 cores, linux x86_64");
  assert.equal(rows.Dates, "2026-01-01 to 2026-01-02");
  assert.equal(rows["f16repro commit"], "0123456789ab");
  assert.match(rows.Networks, /^mlp 784-16-10 \(12730 parameters\)$/);
  assert.match(
    rows.Timing,
    /^Cells trained 2 at a time; engine wasm \(threads per cell: 1\) on the CPU \(Test CPU 3000, 2 cores\); 16-bit arithmetic emulated/,
  );
  // Without the field, the report says what it does not know instead of guessing.
  const bare = toRuns(loaded([exact({ seed: 1 })]));
  assert.match(timingConditions(bare), /^How many cells trained at once is not recorded; /);
  const matrix = { schema: "f16repro.matrix/1", profile: "quick", experiments: [] } as const;
  assert.match(
    Object.fromEntries(scopeRows(bare, matrix)).Command,
    /^f16repro reproduce --profile quick \(profile from matrix\.json/,
  );
  const native = exact({ seed: 1 });
  (native.environment.engine as { capabilities: Record<string, unknown> }).capabilities.native16 = true;
  // Native 16-bit arithmetic on a CPU is still not a GPU (tests/report_device_test.ts covers adapters).
  assert.match(
    timingConditions(toRuns(loaded([native]))),
    /16-bit arithmetic native, so these times cannot speak to GPU speed\.$/,
  );
});

Deno.test("one sentence per claim of the paper, computed from the runs", async () => {
  // fp16 within fp32's spread on mlp; far below it on cnn (its fp16 runs are shifted down by 20 points).
  const shifted = (o: Parameters<typeof record>[0]) => {
    const r = exact(o);
    const epochs = r.epochs.map((e) => ({ ...e, testAccuracy: e.testAccuracy - 0.2 }));
    return { ...r, epochs, final: { ...r.final, testAccuracy: r.final.testAccuracy! - 0.2 } };
  };
  const records = [1, 2].flatMap((seed) => [
    exact({ seed }),
    exact({ seed, precision: "fp16" }),
    exact({ seed, model: "cnn" }),
    shifted({ seed, model: "cnn", precision: "fp16" }),
  ]);
  const runs = toRuns(loaded(records));
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await Deno.mkdir(`${root}/p`);
    await makePitfallRuns(`${root}/p`);
    const { tolerance } = await loadRuns(`${root}/p`);
    const s = claimSentences(groupRows(runs), runs, tolerance);
    assert.equal(s.length, 6);
    assert.match(
      s[0],
      /^Accuracy, fp16 against fp32 \(paper: the same, mean difference -0\.2 points\): fp16's mean final accuracy is within two of fp32's seed standard deviations on 1 of 2 networks; mean difference -9\.50 points over 2 networks\.$/,
    );
    assert.match(
      s[1],
      /^Accuracy, fp16 against mixed .*not testable here; no network has completed fp16 and mixed runs\.$/,
    );
    // Fixture fp32 epochs take 0.5 s longer than fp16 ones: fp32/fp16 = (3*1.65)/(3*1.15) = 1.43.
    assert.match(
      s[2],
      /^Speed, fp32 time \/ fp16 time \(paper: 1\.6x on the authors' GPU\): 1\.43x over 2 networks; fp16 trained faster on 2 of 2\. How many cells .* cannot speak to GPU speed\.$/,
    );
    assert.match(s[4], /^Stability .*: fp32 0 of 4, fp16 0 of 4\.$/);
    // Two usable tolerance files (the other two are damaged); one has a violation, in both output spaces.
    assert.match(
      s[5],
      /held in 2 of 4 comparisons \(2 result files, logits and probabilities each\), with 2 violations/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The width attribute of a rendered SVG. */
const svgWidth = (svg: string) => Number(/^<svg[^>]* width="([\d.]+)"/.exec(svg)?.[1]);

Deno.test("every figure fits the page's 1200 px column with its legend, the paper's panels included", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await Deno.mkdir(`${root}/a`);
    await Deno.mkdir(`${root}/b`);
    await makeRuns(`${root}/a`);
    await makePitfallRuns(`${root}/b`);
    for (const dir of ["a", "b"]) {
      const r = await writeReport(`${root}/${dir}`, `${root}/${dir}-out`);
      for (const f of r.files.filter((f) => f.endsWith(".svg"))) {
        const w = svgWidth(await Deno.readTextFile(f));
        assert.ok(w > 100 && w <= MAX_FIGURE_WIDTH, `${f} is ${w} px wide`);
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("panels that are compared share their scale; curves differ in dash and shape", async () => {
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    await makePitfallRuns(`${root}/runs`);
    const l = await loadRuns(`${root}/runs`);
    const runs = toRuns(l.records, l.matrix);
    const main = runs.filter((r) => r.experiment.kind === "main");
    const figures = buildFigures({
      runs: main,
      groups: groupRows(main),
      paper: true,
      pitfalls: runs.filter((r) => r.experiment.kind !== "main"),
      tolerance: l.tolerance,
    }).filter(isDrawn);
    // deno-lint-ignore no-explicit-any
    type Json = Record<string, any>;
    const spec = (n: number) => (figures.find((f) => f.n === n) as Figure).spec as unknown as Json;
    assert.equal(spec(1).resolve.scale.y, "shared", "ours and the paper's accuracy on one scale");
    assert.equal(spec(3).resolve.scale.y, "shared", "ours and the paper's differences on one scale");
    assert.equal(spec(8).resolve.scale.y, "shared", "lost updates of every model on one scale");
    // Figure 7: each metric's epsilon columns share a scale (a 65-point collapse looks larger than a 1-point gap).
    assert.equal(spec(7).vconcat.length, 2);
    for (const block of spec(7).vconcat) {
      assert.equal(block.resolve.scale.y, "shared");
      assert.ok(block.spec.encoding.strokeDash && block.spec.encoding.shape);
    }
    assert.equal(spec(7).vconcat[1].spec.encoding.y.scale.type, "log", "loss spans orders of magnitude");
    // Figure 4: the mean lines of fp32 and mixed have different dashes, so one cannot hide the other.
    const line = spec(4).vconcat[0].spec.layer[1].encoding;
    const dash = line.strokeDash.scale;
    assert.notDeepEqual(dash.range[dash.domain.indexOf("fp32")], dash.range[dash.domain.indexOf("mixed")]);
    assert.ok(line.shape);
    // Figure 2: ours and the paper's ratios are drawn on one scale.
    const ratioScales = JSON.stringify(spec(2)).match(/"domain":\[0,[\d.]+\],"nice":true/g) ?? [];
    assert.equal(ratioScales.length, 2, "our ratio panel and the paper's share an explicit domain");
    assert.equal(new Set(ratioScales).size, 1);
    for (const f of figures) assert.ok(svgWidth(await renderSvg(f.spec)) <= MAX_FIGURE_WIDTH, f.name);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the scope names each dataset size with how many records used it", () => {
  const sized = (seed: number, trainCount: number) => {
    const r = exact({ seed });
    return { ...r, id: `s${seed}`, dataset: { ...r.dataset, trainCount, testCount: 100 } };
  };
  const runs = toRuns(loaded([sized(1, 8004), sized(2, 8004), sized(3, 1000)]));
  assert.equal(
    Object.fromEntries(scopeRows(runs, null)).Datasets,
    "synthetic (generated): 1000 (1 record) or 8004 (2 records) training and 100 test examples",
  );
});
