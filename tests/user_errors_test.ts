/**
 * A user's situation gives one line and a non-zero exit, never a stack trace, and outputs are checked before
 * the work: run as a user does, in fresh processes (bad numbers for reproduce, HOME unset, a cache that is a
 * file, an empty runs folder, outputs that are files, folders or devices, an output that goes away during
 * training). Also lib/cli/outputs.ts in process, with an injected full disk.
 */

import assert from "node:assert/strict";
import { probeFile, probeFolder, writeOrRescue } from "../lib/cli/outputs.ts";
import { UserError } from "../lib/errors.ts";
import { readWeights } from "../lib/record/weights.ts";
import { runCli } from "./support/cli.ts";

const TINY = [
  ...["--dataset", "synthetic", "--train-limit", "100", "--test-limit", "50", "--hidden", "8"],
  ...["--batch", "50", "--epochs", "1"],
];
const REPRODUCE_PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--allow-run"];

/** Asserts one line of stderr, starting "f16repro: " and matching `re`, with exit code `code`. */
function oneLine(r: { code: number; stderr: string }, code: number, re: RegExp) {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^f16repro: /);
  assert.match(lines[0], re);
}

async function withTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "f16repro_user_errors_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Trains the tiny run once into `dir`; returns the record's path. */
async function tinyRun(dir: string): Promise<string> {
  const r = await runCli(["train", ...TINY, "--out", dir, "--json", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).path;
}

Deno.test("reproduce: bad seeds and jobs are one line and exit 2 before any cell runs", async () => {
  await withTemp(async (dir) => {
    for (
      const [args, re] of [
        [["--seeds", "-1"], /--seeds must be an integer from 0 to 4294967295, got "-1"/],
        [["--seeds", ""], /--seeds needs a value, got ""/],
        [["--seeds", "1,1"], /--seeds lists 1 twice/],
        [["--seeds", "1.5"], /--seeds must be an integer .* got "1\.5"/],
        [["--jobs", "0x2"], /--jobs must be a positive integer, got "0x2"/],
      ] as const
    ) {
      const r = await runCli(["reproduce", "--profile", "smoke", "--out", dir, ...args], REPRODUCE_PERMS);
      oneLine(r, 2, re);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing was run or written");
  });
});

Deno.test("HOME unset: a synthetic run trains; a download set says how to name a cache", async () => {
  await withTemp(async (dir) => {
    const noHome = { HOME: undefined, XDG_CACHE_HOME: undefined, F16REPRO_CACHE: undefined };
    const ok = await runCli(["train", ...TINY, "--out", dir, "--quiet"], undefined, noHome);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await runCli(["train", "--dataset", "mnist", "--offline", "--out", dir], undefined, noHome);
    oneLine(r, 1, /Cannot find a cache folder \(HOME is not set\): set F16REPRO_CACHE or pass --cache-dir/);
  });
});

Deno.test("a dataset cache that is a file is named in one line", async () => {
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/cache`, "");
    const r = await runCli(["train", "--dataset", "mnist", "--offline", "--cache-dir", `${dir}/cache`]);
    oneLine(r, 1, /The dataset cache .*\/cache is a file, not a folder/);
  });
});

Deno.test("train checks --out before training: a file, a path below a file, a device", async () => {
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "");
    for (
      const [out, re] of [
        [`${dir}/file`, /--out ".*\/file" is a file, not a folder/],
        [`${dir}/file/runs`, /--out ".*\/file\/runs": ".*\/file" is a file/],
        ["/dev/null", /--out "\/dev\/null" is a file, not a folder/],
      ] as const
    ) {
      // Without --quiet: a run that started training would print its progress.
      const r = await runCli(["train", ...TINY, "--out", out]);
      oneLine(r, 1, re);
    }
  });
});

Deno.test("train keeps a finished run whose --out goes away during training", async () => {
  await withTemp(async (dir) => {
    const out = `${dir}/runs`, tmp = `${dir}/tmp`;
    await Deno.mkdir(tmp);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...["--allow-read", "--allow-write", "--allow-env", "--allow-sys"],
        new URL("../main.ts", import.meta.url).pathname,
        ...["train", "--engine", "ref", ...TINY, "--train-limit", "2000", "--epochs", "3", "--out", out],
      ],
      env: { NO_COLOR: "1", TMPDIR: tmp },
      stderr: "piped",
      stdout: "null",
    }).spawn();
    let stderr = "";
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      const before = stderr;
      stderr += dec.decode(chunk);
      // Training has started once the run is announced: the folder becomes a file under it.
      if (!before.includes("f16repro train:") && stderr.includes("f16repro train:")) {
        await Deno.writeTextFile(out, "in the way");
      }
    }
    const { code } = await child.status;
    assert.equal(code, 1, stderr);
    const last = stderr.trim().split("\n").at(-1)!;
    const m = /^f16repro: Could not write the finished run to .*\/runs \(.*\); it is kept in (\S+)$/.exec(
      last,
    );
    assert.ok(m, stderr);
    assert.ok(m[1].startsWith(`${tmp}/f16repro-kept-`), m[1]);
    const [json] = [...Deno.readDirSync(m[1])].map((e) => e.name).filter((n) => n.endsWith(".json"));
    const record = JSON.parse(await Deno.readTextFile(`${m[1]}/${json}`));
    assert.equal(record.epochs.length, 3);
    // The kept weights are the run's (readWeights checks their SHA-256 against the record's).
    await readWeights(`${m[1]}/${record.id}.weights`, record.weightHash);
  });
});

Deno.test("report: an empty runs folder and an output that is a file are one line, exit 1", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/empty`);
    oneLine(
      await runCli(["report", `${dir}/empty`, "-o", `${dir}/rep`]),
      1,
      /No run records in .*\/empty: nothing to report/,
    );
    assert.equal(await Deno.stat(`${dir}/rep`).then(() => true, () => false), false, "no report written");
    await tinyRun(`${dir}/runs`);
    await Deno.writeTextFile(`${dir}/file`, "");
    oneLine(await runCli(["report", `${dir}/runs`, "-o", `${dir}/file`]), 1, /-o ".*\/file" is a file/);
  });
});

Deno.test("reproduce checks --out and --report before running a cell", async () => {
  await withTemp(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "");
    const base = ["reproduce", "--profile", "smoke", "--no-verify", "--no-tolerance"];
    oneLine(
      await runCli([...base, "--out", `${dir}/file`], REPRODUCE_PERMS),
      1,
      /--out ".*\/file" is a file, not a folder/,
    );
    oneLine(
      await runCli([...base, "--out", `${dir}/runs`, "--report", `${dir}/file/rep`], REPRODUCE_PERMS),
      1,
      /--report ".*\/file\/rep": ".*\/file" is a file/,
    );
    assert.equal(await Deno.stat(`${dir}/runs`).then(() => true, () => false), false, "no cell ran");
  });
});

Deno.test("export -o: a folder, a device and a missing folder are one line, exit 1", async () => {
  await withTemp(async (dir) => {
    const record = await tinyRun(`${dir}/runs`);
    for (
      const [out, re] of [
        [dir, /-o ".*" is a folder; name a file/],
        ["/dev/null", /-o "\/dev\/null" is not a regular file/],
        [`${dir}/none/m.onnx`, /-o ".*\/none\/m\.onnx": folder ".*\/none" does not exist/],
      ] as const
    ) {
      oneLine(
        await runCli(["export", record, "-o", out], ["--allow-read", "--allow-write", "--allow-env"]),
        1,
        re,
      );
    }
  });
});

Deno.test("probes leave nothing behind and name what is wrong", async () => {
  await withTemp(async (dir) => {
    await probeFolder("--out", `${dir}/a/b/c`);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "the folders made for the probe are removed");
    await probeFile("-o", `${dir}/m.onnx`);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    await assert.rejects(probeFile("-o", `${dir}/x/m.onnx`), UserError);
  });
});

Deno.test("writeOrRescue: a full disk at the end keeps the work under the temp folder, or says it is lost", async () => {
  await withTemp(async (dir) => {
    const full = () => Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
    const write = (target: string) =>
      target === `${dir}/out` ? Promise.reject(full()) : Deno.writeTextFile(`${target}/r.json`, "{}");
    const err = await writeOrRescue("the run", `${dir}/out`, write, { kind: "folder", tempRoot: dir }).then(
      () => assert.fail("the write to the full disk succeeded"),
      (e) => e,
    );
    assert.ok(err instanceof UserError);
    const m =
      /^Could not write the run to .*\/out \(No space left on device \(os error 28\)\); it is kept in (\S+)$/
        .exec(err.message);
    assert.ok(m, err.message);
    assert.equal(await Deno.readTextFile(`${m[1]}/r.json`), "{}");
    await Deno.writeTextFile(`${dir}/notafolder`, "");
    await assert.rejects(
      writeOrRescue("the run", `${dir}/out`, write, { kind: "folder", tempRoot: `${dir}/notafolder` }),
      /^Error: Could not write the run to .*\/out \(No space left.*\) nor to the temp folder \(.*\); it is lost$/,
    );
    // A file target is kept under its own name.
    const kept = await writeOrRescue(
      "the model",
      `${dir}/out/m.onnx`,
      (p) => p.startsWith(`${dir}/out`) ? Promise.reject(full()) : Deno.writeTextFile(p, "onnx"),
      { kind: "file", tempRoot: dir },
    ).catch((e: Error) => e.message);
    assert.match(String(kept), /it is kept in .*\/f16repro-kept-[^/]+\/m\.onnx$/);
  });
});
