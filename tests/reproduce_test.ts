/**
 * The main job end to end on the smoke profile, in fresh processes: the matrix
 * runs, the determinism check passes, the report is written; a killed run
 * resumes with only the remaining cells; verify catches tampered records.
 */

import assert from "node:assert/strict";
import { runCli } from "./support/cli.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

// Exactly the permissions of `deno task reproduce` (its --allow-run names the deno executable running it, which
// the task gets from `deno eval`), so these tests also show that the task can run the whole pipeline with them.
const REPRODUCE_TASK: string =
  JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks.reproduce;
const PERMS = REPRODUCE_TASK.replaceAll("$(deno eval 'console.log(Deno.execPath())')", Deno.execPath())
  .split(/\s+/).filter((a) => a.startsWith("--allow-"));

function command(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

const cli = (args: string[]) => runCli(args, PERMS);

async function recordFiles(dir: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for await (const e of Deno.readDir(dir)) {
    if (/^[0-9a-f]{16}\.json$/.test(e.name)) {
      m.set(e.name, (await Deno.stat(`${dir}/${e.name}`)).mtime!.getTime());
    }
  }
  return m;
}

Deno.test("reproduce --profile smoke: every cell recorded, re-runs bit-identical, report written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await cli(["reproduce", "--profile", "smoke", "--out", dir, "--jobs", "2", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.ran, 6);
    assert.equal(s.skipped, 0);
    assert.deepEqual(s.determinism, { checked: 3, identical: 3 });
    assert.equal((await recordFiles(dir)).size, 6);
    const det = JSON.parse(await Deno.readTextFile(`${dir}/determinism.json`));
    assert.equal(det.schema, "f16repro.determinism/1");
    assert.ok(
      det.checks.every((c: { identical: boolean; kind: string }) => c.identical && c.kind === "rerun"),
    );
    assert.deepEqual(det.checks.map((c: { precision: string }) => c.precision).sort(), [
      "fp16",
      "fp32",
      "mixed",
    ]);
    assert.ok((await Deno.stat(`${dir}/report/report.html`)).size > 100_000);
    // The tolerance analyses ran on the run's engine (wasm, ref's bits) and say so.
    const tolerance = [...Deno.readDirSync(`${dir}/tolerance`)].map((e) => e.name);
    assert.equal(tolerance.length, 3);
    for (const f of tolerance) {
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/tolerance/${f}`)).engine, "wasm", f);
    }
    assert.match(r.stderr, /tolerance: .* on wasm\n/);
    assert.match(r.stderr, /\[1\/6\] mlp synthetic fp32 seed 1: started/);
    assert.match(r.stderr, /epoch 1\/2 .*elapsed/);

    assert.match(r.stderr, /with 6 of 6 cells \(.* in all\)/);
    // Each record says how it was launched (the report's timing captions read it); ids and hashes ignore it.
    for (const f of (await recordFiles(dir)).keys()) {
      const launch = JSON.parse(await Deno.readTextFile(`${dir}/${f}`)).launch;
      assert.deepEqual(launch, {
        command: `f16repro reproduce --profile smoke --out ${dir} --jobs 2 --json`,
        cellsAtOnce: 2,
      });
    }
    assert.equal(s.inReport, 6);

    // A second run finds every record verified, runs nothing and keeps the earlier determinism and
    // tolerance results: no child process starts.
    const again = await cli(["reproduce", "--profile", "smoke", "--out", dir, "--json"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).ran, 0);
    assert.equal(JSON.parse(again.stdout).skipped, 6);
    assert.deepEqual(JSON.parse(again.stdout).determinism, { checked: 3, identical: 3 });
    assert.match(again.stderr, /3 earlier identical re-runs reused/);
    assert.doesNotMatch(again.stderr, /\[verify |re-running|started/);
    assert.match(again.stderr, /earlier result kept/);

    // Damaged cells are not finished: each is rerun, with its reason, and comes back bit-identical.
    const names = [...(await recordFiles(dir)).keys()].sort();
    const hashes = new Map<string, string>();
    for (const f of names) hashes.set(f, JSON.parse(await Deno.readTextFile(`${dir}/${f}`)).weightHash);
    const text = await Deno.readTextFile(`${dir}/${names[0]}`);
    await Deno.writeTextFile(`${dir}/${names[0]}`, text.slice(0, text.length / 2));
    await Deno.copyFile(`${dir}/${names[2]}`, `${dir}/${names[1]}`);
    const w = await Deno.readFile(`${dir}/${names[3].replace(".json", ".weights")}`);
    w[w.length - 1] ^= 0x40;
    await Deno.writeFile(`${dir}/${names[3].replace(".json", ".weights")}`, w);
    const mended = await cli(["reproduce", "--profile", "smoke", "--out", dir, "--no-verify", "--json"]);
    assert.equal(mended.code, 0, mended.stderr);
    const m = JSON.parse(mended.stdout);
    assert.equal(m.ran, 3);
    assert.deepEqual(
      m.reran.map((x: { id: string }) => `${x.id}.json`).sort(),
      names.slice(0, 4).filter((_, i) => i !== 2),
    );
    assert.match(mended.stderr, /rerunning: .*Invalid JSON/);
    assert.match(mended.stderr, /rerunning: .*holds the record of another cell/);
    assert.match(mended.stderr, /rerunning: .*weights: its SHA-256/);
    assert.equal(m.inReport, 6);
    for (const f of names) {
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${f}`)).weightHash, hashes.get(f), f);
    }

    // Tampered records: verify names them and fails.
    const files = [...(await recordFiles(dir)).keys()].sort();
    const tamper = async (f: string, edit: (r: Record<string, unknown>) => void) => {
      const rec = JSON.parse(await Deno.readTextFile(`${dir}/${f}`));
      edit(rec);
      await Deno.writeTextFile(`${dir}/${f}`, JSON.stringify(rec));
    };
    await tamper(files[0], (rec) => (rec.weightHash = "0".repeat(64)));
    await tamper(files[1], (rec) => ((rec.epochs as { testLoss: number }[])[1].testLoss += 1e-9));
    const v = await cli(["verify", dir, "--all", "--json", "--quiet"]);
    assert.equal(v.code, 1);
    const checks = JSON.parse(v.stdout).checks as {
      id: string;
      identical: boolean;
      firstDifferingEpoch: number | null;
    }[];
    assert.equal(checks.length, 6);
    const byId = new Map(checks.map((c) => [`${c.id}.json`, c]));
    assert.equal(byId.get(files[0])!.identical, false);
    assert.equal(byId.get(files[0])!.firstDifferingEpoch, null);
    assert.equal(byId.get(files[1])!.identical, false);
    assert.equal(byId.get(files[1])!.firstDifferingEpoch, 2);
    assert.equal(checks.filter((c) => c.identical).length, 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce killed mid-matrix: the next run finishes only the remaining cells", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = command(["reproduce", "--profile", "smoke", "--out", dir, "--jobs", "1", "--no-verify"])
      .spawn();
    const drain = Promise.all([child.stdout.cancel(), new Response(child.stderr).text()]);
    for (let i = 0; i < 600 && (await recordFiles(dir).catch(() => new Map())).size < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // While it runs, a second reproduce on the same folder is refused in one line, naming the first.
    const second = await cli(["reproduce", "--profile", "smoke", "--out", dir, "--jobs", "1", "--no-verify"]);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /^f16repro: .* is in use by another f16repro reproduce \(pid \d+ on /);
    assert.equal(second.stderr.trim().split("\n").length, 1);
    child.kill("SIGKILL");
    await child.status;
    await drain;
    // The cell that was running may still finish in its orphaned process: wait until the set is stable.
    let before = await recordFiles(dir);
    for (;;) {
      await new Promise((r) => setTimeout(r, 2500));
      const now = await recordFiles(dir);
      if (now.size === before.size) break;
      before = now;
    }
    assert.ok(before.size >= 2 && before.size < 6, `records after the kill: ${before.size}`);
    const r = await cli([
      "reproduce",
      "--profile",
      "smoke",
      "--out",
      dir,
      "--jobs",
      "1",
      "--no-verify",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.skipped, before.size);
    assert.equal(s.ran, 6 - before.size);
    const after = await recordFiles(dir);
    assert.equal(after.size, 6);
    for (const [f, mtime] of before) assert.equal(after.get(f), mtime, `${f} was rewritten`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce, verify and report reject bad input with exit code 2", async () => {
  for (
    const [args, msg] of [
      [["reproduce", "--profile", "huge"], /Unknown profile "huge"/],
      [["reproduce", "--jobs", "0"], /--jobs must be a positive integer/],
      [["reproduce", "--engine", "tpu"], /Unknown engine "tpu"/],
      // `deno task reproduce` has no --allow-ffi: an ort reproduction is sent to reproduce:ort before any work.
      [["reproduce", "--engine", "ort", "--out", "/nonexistent/runs"], /run deno task reproduce:ort\n$/],
      [["verify"], /Name one runs folder/],
      [["verify", "/nonexistent/folder"], /No such folder/],
      [["report", "/nonexistent/folder", "-o", "/tmp/x"], /No such folder/],
      [["report", "somewhere"], /Usage: f16repro report RUNS_DIR -o OUT_DIR/],
    ] as const
  ) {
    const r = await cli([...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
});
