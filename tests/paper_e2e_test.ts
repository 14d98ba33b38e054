/**
 * The paper profile end to end, cut down, on a CIFAR-10 tarball served from 127.0.0.1: a small valid
 * `cifar-10-binary.tar.gz` (4 records per batch file: 20 training and 4 test images) stands in for the
 * publisher's through `$F16REPRO_SOURCES`, which the reproduction's child processes inherit. Two networks,
 * one epoch, one seed, 8 training examples, fp16/fp32/mixed, then the determinism check and the report: the
 * cells download the file once into a fresh cache, train, say in their provenance that the data came from
 * the override, and the report's Table 5 view shows both networks as cut runs beside the paper's rows and
 * the other ten as not run.
 */

import assert from "node:assert/strict";
import { SOURCES_ENV } from "../datasets/source_override.ts";
import { runCli } from "./support/cli.ts";
import { makeCifarTarGz, sha256Hex } from "./support/fixtures.ts";
import { FaultServer } from "./support/http_server.ts";

const REPRODUCE_TASK: string =
  JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks.reproduce;
// The reproduce task's own permissions: the parent needs no network (its children download).
const PERMS = REPRODUCE_TASK.replaceAll("$(deno eval 'console.log(Deno.execPath())')", Deno.execPath())
  .split(/\s+/).filter((a) => a.startsWith("--allow-"));

Deno.test("reproduce --profile paper, cut to 2 networks x 1 epoch, on a CIFAR-10 tarball from 127.0.0.1, through the report", async () => {
  const server = new FaultServer();
  const root = await Deno.makeTempDir();
  try {
    const tgz = await makeCifarTarGz(4);
    const url = server.route("/cifar-10-binary.tar.gz", tgz);
    const sources = `${root}/sources.json`;
    await Deno.writeTextFile(
      sources,
      JSON.stringify({
        "cifar10/cifar-10-binary.tar.gz": {
          urls: [url],
          checksum: { algorithm: "sha256", hex: sha256Hex(tgz) },
          size: tgz.length,
        },
      }),
    );
    const out = `${root}/runs`;
    const r = await runCli(
      [
        "reproduce",
        "--profile",
        "paper",
        "--models",
        "alexnet,resnet32",
        "--epochs",
        "1",
        "--train-limit",
        "8",
        "--seeds",
        "58",
        "--cache-dir",
        `${root}/cache`,
        "--out",
        out,
        "--jobs",
        "2",
        "--json",
      ],
      PERMS,
      { [SOURCES_ENV]: sources },
    );
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.inReport, 6, "2 networks x 3 precisions x 1 seed");
    assert.equal(server.requests("/cifar-10-binary.tar.gz").filter((q) => q.range === null).length, 1);

    const records = [];
    for await (const e of Deno.readDir(out)) {
      if (/^[0-9a-f]{16}\.json$/.test(e.name)) {
        records.push(JSON.parse(await Deno.readTextFile(`${out}/${e.name}`)));
      }
    }
    assert.equal(records.length, 6);
    for (const rec of records) {
      assert.equal(rec.status, "completed", rec.id);
      assert.equal(rec.config.dataset, "cifar10");
      assert.equal(rec.config.epochs, 1);
      assert.equal(rec.config.batch, 256);
      assert.equal(rec.dataset.trainCount, 8);
      assert.equal(rec.dataset.testCount, 4);
      assert.equal(rec.dataset.sourcesOverride, `$${SOURCES_ENV}=${sources}`);
      assert.equal(rec.dataset.checksums, `sha256:${sha256Hex(tgz)}`);
    }
    assert.deepEqual([...new Set(records.map((x) => x.config.model))].sort(), ["alexnet", "resnet32"]);
    assert.deepEqual([...new Set(records.map((x) => x.config.precision))].sort(), ["fp16", "fp32", "mixed"]);

    const page = await Deno.readTextFile(`${out}/report/report.html`);
    assert.match(page, /2 of 12 Table 5 networks have runs here/);
    assert.equal((page.match(/ours: not run/g) ?? []).length, 10);
    const csv = (await Deno.readTextFile(`${out}/report/table5.csv`)).trim().split("\n");
    const ours = csv.filter((l) => l.includes(",ours,") && !l.includes("not run"));
    assert.equal(ours.length, 2, csv.join("\n"));
    for (const l of ours) {
      assert.match(
        l,
        /cifar10, 1 epoch, 8\/4 examples, batch 256, wasm \(cut: 1 epoch, not 100; 8 training examples; 4 test examples\)/,
      );
    }
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});
