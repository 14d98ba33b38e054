/**
 * The paper profile (Table 5 as the authors ran it) through `reproduce --dry-run`: its 72 cells and their
 * settings, the cuts (--models, --epochs, --train-limit) with calibrated estimates, that a dry run writes
 * nothing and needs no data, that cuts are kept in matrix.json, and the one-line errors of bad cuts; and
 * that weight decay reaches only the parameters the authors decay (ResNet: conv kernels).
 */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { calibrationOrder, type DryRunCell } from "../lib/reproduce/dry_run.ts";
import { modelByName } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { buildTrainGraph } from "../lib/train/step.ts";

// The permissions of `deno task reproduce`, so the dry run is shown to work with them (no network at all here).
const REPRODUCE_TASK: string =
  JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks.reproduce;
const PERMS = REPRODUCE_TASK.replaceAll("$(deno eval 'console.log(Deno.execPath())')", Deno.execPath())
  .split(/\s+/).filter((a) => a.startsWith("--allow-") && !a.startsWith("--allow-net"));
const cli = (args: string[]) => runCli(args, PERMS);

const TABLE5 = [
  "alexnet",
  "vgg16",
  "vgg19",
  "resnet32",
  "resnet56",
  "resnet110",
  "densenet121",
  "densenet169",
  "xception",
  "mobilenet",
  "vit8",
  "vit12",
];
const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

Deno.test("calibration order: settings with cells to run first, each part interleaved by model", () => {
  const run = (model: string) => ({ config: { model } });
  const settings = new Map([
    ["a fp32", run("a")],
    ["a fp16", run("a")],
    ["b fp32", run("b")],
    ["b fp16", run("b")],
    ["c fp32", run("c")],
  ]);
  const keys = (toRun: string[]) => calibrationOrder(settings, new Set(toRun)).map(([k]) => k);
  // Nothing recorded: every model's first precision, then the second.
  assert.deepEqual(keys([...settings.keys()]), ["a fp32", "b fp32", "c fp32", "a fp16", "b fp16"]);
  // A resumed run with two settings left times those first (a short cap then covers what will run).
  assert.deepEqual(keys(["b fp16", "c fp32"]), ["b fp16", "c fp32", "a fp32", "b fp32", "a fp16"]);
});

Deno.test("reproduce --profile paper --dry-run --json: 72 cells with Table 5's settings, nothing written", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = `${tmp}/runs`, cache = `${tmp}/cache`;
    const r = await cli([
      ...["reproduce", "--profile", "paper", "--dry-run", "--json", "--calibrate", "0"],
      ...["--out", out, "--cache-dir", cache],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const cells: DryRunCell[] = JSON.parse(r.stdout);
    assert.equal(cells.length, 72);
    // Model by model in Table 5's order, then fp16/fp32/mixed, then seeds 58 and 59.
    const expected = TABLE5.flatMap((model) =>
      ["fp16", "fp32", "mixed"].flatMap((precision) => [58, 59].map((seed) => ({ model, precision, seed })))
    );
    assert.deepEqual(cells.map((c) => ({ model: c.model, precision: c.precision, seed: c.seed })), expected);
    for (const c of cells) {
      const what = `${c.model} ${c.precision} ${c.seed}`;
      assert.equal(c.dataset, "cifar10", what);
      assert.equal(c.epochs, 100, what);
      assert.equal(c.batch, 256, what);
      assert.equal(c.engine, "wasm", what);
      assert.equal(c.trainLimit, null, what);
      assert.equal(c.testLimit, null, what);
      assert.equal(c.optimizer.kind, "sgd", what);
      assert.equal(c.optimizer.lr, 0.01, what);
      assert.equal(c.optimizer.momentum, c.model.startsWith("vit") ? 0 : 0.9, what);
      // Keras l2(1e-4) adds 1e-4 * w^2 to the loss: weight decay 2e-4 on the gradient.
      assert.equal(c.weightDecay, c.model.startsWith("resnet") ? 2e-4 : 0, what);
      assert.match(c.id, /^[0-9a-f]{16}$/);
      assert.equal(c.verified, false, what);
      assert.equal(c.estimatedSeconds, null, "--calibrate 0 gives no estimates");
    }
    assert.equal(new Set(cells.map((c) => c.id)).size, 72, "every cell is its own run");
    assert.match(r.stderr, /0 of 36 settings timed/);
    assert.equal(await exists(out), false, "a dry run writes nothing into the out folder");
    assert.equal(await exists(cache), false, "a dry run needs no data");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("reproduce --profile paper --models resnet32,vit8 --epochs 1 --train-limit 512 --dry-run: the cut cells, calibrated", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = `${tmp}/runs`;
    const cut = ["--models", "resnet32,vit8", "--epochs", "1", "--train-limit", "512"];
    const r = await cli(["reproduce", "--profile", "paper", ...cut, "--dry-run", "--json", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    const cells: DryRunCell[] = JSON.parse(r.stdout);
    assert.equal(cells.length, 12);
    assert.deepEqual([...new Set(cells.map((c) => c.model))], ["resnet32", "vit8"]);
    for (const c of cells) {
      assert.equal(c.epochs, 1);
      assert.equal(c.trainLimit, 512);
      assert.equal(c.dataset, "cifar10");
      assert.equal(c.batch, 256);
      assert.ok(typeof c.estimatedSeconds === "number" && c.estimatedSeconds > 0, JSON.stringify(c));
    }
    // Two seeds of a setting share its calibration, so their estimates are equal.
    for (let k = 0; k < 12; k += 2) assert.equal(cells[k].estimatedSeconds, cells[k + 1].estimatedSeconds);
    assert.match(r.stderr, /profile paper cut to models resnet32, vit8; 1 epoch; 512 training examples/);
    assert.match(r.stderr, /6 of 6 settings timed/);
    assert.equal(await exists(out), false, "a dry run writes nothing into the out folder");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a cut reproduction keeps its cuts in matrix.json and the summary; the dry run then says recorded", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = `${tmp}/runs`;
    const cut = ["--profile", "smoke", "--epochs", "1", "--train-limit", "100", "--out", out];
    const run = await cli(["reproduce", ...cut, "--no-verify", "--no-tolerance", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    // Before the first cell, the whole run's estimate from the same calibration.
    assert.match(
      run.stderr,
      /\nestimate: 6 cells, 6 to run; estimated \S+ at \d+ at a time for the 6 of them/,
    );
    assert.match(run.stderr, /profile smoke cut to 1 epoch; 100 training examples, 6 cells/);
    const summary = JSON.parse(run.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(summary.cuts, { epochs: 1, trainLimit: 100 });
    const matrix = JSON.parse(await Deno.readTextFile(`${out}/matrix.json`));
    assert.deepEqual(matrix.cuts, { epochs: 1, trainLimit: 100 });
    assert.match(matrix.experiments[0].description, /\(cut to 1 epoch; 100 training examples\)$/);
    const dry = await cli(["reproduce", ...cut, "--dry-run", "--calibrate", "0"]);
    assert.equal(dry.code, 0, dry.stderr);
    const lines = dry.stdout.split("\n").filter((l) => /^[0-9a-f]{16} /.test(l));
    assert.equal(lines.length, 6);
    assert.ok(lines.every((l) => / recorded /.test(l)), dry.stdout);
    assert.match(dry.stdout, /# 6 cells, 0 to run/);
    const forced = await cli(["reproduce", ...cut, "--dry-run", "--calibrate", "0", "--force"]);
    assert.match(forced.stdout, /# 6 cells, 6 to run/, "--force runs recorded cells again");
    // A cell the cut did not run is "to run".
    const other = await cli([
      "reproduce",
      "--profile",
      "smoke",
      "--out",
      out,
      "--dry-run",
      "--calibrate",
      "0",
    ]);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /# 6 cells, 6 to run/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bad cuts: one line naming the bad value, non-zero exit, nothing written", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = `${tmp}/runs`;
    const cases: [string[], RegExp][] = [
      [
        ["--models", "resnet32,resnet99"],
        /^Unknown model "resnet99" in --models: profile paper trains alexnet, /,
      ],
      [["--models", "mlp"], /^Unknown model "mlp" in --models/],
      [["--models", "vit8,vit8"], /^--models lists vit8 twice/],
      [["--epochs", "0"], /^--epochs must be a positive integer/],
      [
        ["--train-limit", "60000"],
        /^--train-limit 60000 is more than the 50000 training examples of cifar10/,
      ],
      [["--calibrate", "5"], /^--calibrate needs --dry-run/],
    ];
    for (const [args, want] of cases) {
      const r = await cli(["reproduce", "--profile", "paper", ...args, "--out", out]);
      assert.notEqual(r.code, 0, args.join(" "));
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0].replace(/^f16repro: (error: )?/i, ""), want);
      assert.equal(await exists(out), false);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** The weight decay each parameter's update uses in `model`'s step graph, by parameter name. */
function decayByParam(model: string): Map<string, number> {
  const g = buildTrainGraph({
    model: modelByName(model),
    modelOptions: { classes: 10, hidden: [] },
    policy: parsePolicy("fp32"),
    optimizer: { ...PAPER_SGD, weightDecay: 1e-4 },
    inputShape: [3, 32, 32],
  }, 2).graph;
  const wd = new Map<string, number>();
  for (const n of g.nodes.filter((n) => n.op === "sgd_velocity")) {
    wd.set(g.node(n.inputs[2]).name!, n.attrs.wd as number);
  }
  return wd;
}

Deno.test("weight decay: ResNet conv kernels only (not Dense, bias or batch norm); other models every kernel", () => {
  const resnet = decayByParam("resnet32");
  const decayed = [...resnet].filter(([, wd]) => wd === 1e-4).map(([n]) => n);
  // 31 3x3 convs and the head's 1x1 conv.
  assert.equal(decayed.length, 32);
  assert.ok(decayed.every((n) => /^conv2d(_\d+)?\/kernel$/.test(n)), decayed.join(" "));
  assert.equal(resnet.get("dense/kernel"), 0, "the Dense(4096) head kernel is not decayed");
  assert.ok([...resnet].every(([n, wd]) => wd === (decayed.includes(n) ? 1e-4 : 0)));
  const alexnet = decayByParam("alexnet");
  assert.equal(alexnet.get("dense/kernel"), 1e-4, "models without a choice decay every kernel");
  assert.equal(alexnet.get("conv2d/kernel"), 1e-4);
  assert.equal(alexnet.get("dense/bias"), 0);
});

Deno.test("one --dry-run for both schedulers: on Slurm the batch script, then the cells; --json keeps stdout JSON", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = `${tmp}/runs`;
    const base = ["reproduce", "--profile", "smoke", "--scheduler", "slurm", "--dry-run", "--out", out];
    const text = await runCli([...base, "--calibrate", "0"], PERMS, { PATH: "/nonexistent" });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^#!\/bin\/bash\n/);
    assert.match(text.stdout, /\n# 6 cells, 6 to run; /);
    const json = await runCli([...base, "--json"], PERMS, { PATH: "/nonexistent" });
    assert.equal(json.code, 0, json.stderr);
    const cells: DryRunCell[] = JSON.parse(json.stdout);
    assert.equal(cells.length, 6);
    assert.ok(
      cells.every((c) => typeof c.estimatedSeconds === "number"),
      "smoke's 3 settings are calibrated",
    );
    assert.match(json.stderr, /^#!\/bin\/bash\n/m);
    assert.equal(await exists(out), false, "a dry run writes nothing");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
