/**
 * The zoo profile (the Table 5 networks that fit about 1.5 hours here, offline) through
 * `reproduce --dry-run --json`: its 48 cells on fashion-mnist-32 with the paper's optimizers per network,
 * the chosen subset, epochs and batch, seeds 58 and 59, and descriptions that never call the data CIFAR-10.
 */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import type { DryRunCell } from "../lib/reproduce/dry_run.ts";
import { PROFILES, ZOO } from "../lib/reproduce/profiles.ts";

const REPRODUCE_TASK: string =
  JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks.reproduce;
const PERMS = REPRODUCE_TASK.replaceAll("$(deno eval 'console.log(Deno.execPath())')", Deno.execPath())
  .split(/\s+/).filter((a) => a.startsWith("--allow-") && !a.startsWith("--allow-net"));

Deno.test("reproduce --profile zoo --dry-run --json: 48 cells on fashion-mnist-32, the paper's optimizers", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const r = await runCli([
      ...["reproduce", "--profile", "zoo", "--engine", "ort", "--dry-run", "--json", "--calibrate", "0"],
      ...["--out", `${tmp}/runs`],
    ], PERMS);
    assert.equal(r.code, 0, r.stderr);
    const cells: DryRunCell[] = JSON.parse(r.stdout);
    const models = ["alexnet", "vgg16", "resnet32", "resnet56", "densenet121", "mobilenet", "vit8", "vit12"];
    assert.deepEqual(ZOO.models, models);
    assert.deepEqual(
      cells.map((c) => `${c.model} ${c.precision} ${c.seed}`),
      models.flatMap((m) => ["fp16", "fp32", "mixed"].flatMap((p) => [58, 59].map((s) => `${m} ${p} ${s}`))),
    );
    for (const c of cells) {
      const what = `${c.model} ${c.precision} ${c.seed}`;
      assert.equal(c.dataset, "fashion-mnist-32", what);
      assert.equal(c.trainLimit, 1024, what);
      assert.equal(c.testLimit, 500, what);
      assert.equal(c.epochs, 4, what);
      assert.equal(c.batch, 16, what);
      assert.equal(c.engine, "ort", what);
      assert.equal(c.optimizer.lr, 0.01, what);
      assert.equal(c.optimizer.momentum, c.model.startsWith("vit") ? 0 : 0.9, what);
      assert.equal(c.weightDecay, c.model.startsWith("resnet") ? 2e-4 : 0, what);
    }
    assert.equal(
      await Deno.lstat(`${tmp}/runs`).then(() => true, () => false),
      false,
      "a dry run writes nothing",
    );
    for (const e of PROFILES.zoo.experiments) {
      assert.match(e.description, /fashion-mnist-32 examples \(not CIFAR-10\)/);
    }
    assert.match(PROFILES.zoo.description, /not CIFAR-10/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
