/**
 * Nothing lost, nothing silently dropped: atomic writes that cannot be
 * redirected, leftovers of killed runs cleaned, out folders that hold one
 * reproduction at a time, records and weights that must verify before a
 * cell counts as finished, provenance that means something, and --allow-run
 * scoped to what is really run.
 */

import assert from "node:assert/strict";
import { cpus } from "node:os";
import { removeStaleTemps, writeAtomic, WriteError } from "../lib/record/atomic.ts";
import { tryLockFile } from "../lib/record/lock.ts";
import {
  checkWeights,
  decodeWeights,
  encodeWeights,
  readWeights,
  WeightsError,
} from "../lib/record/weights.ts";
import { hashTensors } from "../lib/record/hash.ts";
import {
  claimOutFolder,
  LOCK_FILE,
  removeStaleScratch,
  VERIFY_SCRATCH,
} from "../lib/reproduce/out_folder.ts";
import { verifiedRecord } from "../lib/reproduce/verified.ts";
import { UserError } from "../lib/errors.ts";
import { ENGINES } from "../kernels/registry.ts";
import { SLURM_PROGRAMS } from "../lib/reproduce/slurm.ts";
import { runCli, TRAIN_PERMS } from "./support/cli.ts";

const TASKS: Record<string, string> = JSON.parse(
  await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
).tasks;

/** A validator for assert.throws/rejects: an instance of `cls` whose message matches `re`. */
const is = (cls: new (...a: never[]) => Error, re: RegExp) => (e: unknown) =>
  e instanceof cls && re.test(e.message);

const old = async (path: string) => await Deno.utime(path, new Date(0), new Date(0));

Deno.test("writeAtomic: a symlink planted at a temp name is never followed; errors name the target", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const victim = `${dir}/victim`, target = `${dir}/out.json`;
    await Deno.writeTextFile(victim, "precious");
    // The name an older writer used ("<path>.tmp-<pid>") is predictable: plant a link there.
    await Deno.symlink(victim, `${target}.tmp-${Deno.pid}`);
    await writeAtomic(target, "new content");
    assert.equal(await Deno.readTextFile(victim), "precious");
    assert.equal(await Deno.readTextFile(target), "new content");
    const left = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assert.deepEqual(left.sort(), ["out.json", `out.json.tmp-${Deno.pid}`, "victim"]);

    // A target that cannot be replaced (a folder is in the way): the error names it, not a temp file.
    await Deno.mkdir(`${dir}/blocked.json/inner`, { recursive: true });
    const e = await writeAtomic(`${dir}/blocked.json`, "x").then(() => null, (e) => e);
    assert.ok(e instanceof WriteError && e instanceof UserError, String(e));
    assert.match(e.message, /^Cannot write .*blocked\.json: /);
    assert.doesNotMatch(e.message, /\.tmp-/);
    for await (const f of Deno.readDir(dir)) assert.doesNotMatch(f.name, /^blocked\.json\.tmp-/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeStaleTemps: a killed writer's temp file goes, a live writer's stays", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dead = `${dir}/a.json.tmp-4242-0123456789abcdef`, live = `${dir}/b.json.tmp-4243-fedcba9876543210`;
    await Deno.writeTextFile(dead, "half");
    await Deno.writeTextFile(live, "half");
    await Deno.writeTextFile(`${dir}/c.json`, "{}");
    await old(dead), await old(live);
    const held = await tryLockFile(live);
    assert.ok(held);
    try {
      assert.deepEqual(await removeStaleTemps(dir), ["a.json.tmp-4242-0123456789abcdef"]);
      assert.ok(await Deno.stat(live));
    } finally {
      held.release();
    }
    assert.deepEqual(await removeStaleTemps(dir), ["b.json.tmp-4243-fedcba9876543210"]);
    assert.ok(await Deno.stat(`${dir}/c.json`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("claimOutFolder: one reproduce at a time, one profile per folder, orphans removed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/0123456789abcdef.weights`, "orphan");
    await old(`${dir}/0123456789abcdef.weights`);
    // A young weights file without a record may belong to a cell still running elsewhere: it stays.
    await Deno.writeTextFile(`${dir}/00000000000000aa.weights`, "running");
    await Deno.writeTextFile(`${dir}/fedcba9876543210.weights`, "kept");
    await Deno.writeTextFile(`${dir}/fedcba9876543210.json`, "{}");
    await Deno.writeTextFile(`${dir}/x.json.tmp-7-0000000000000000`, "half");
    await old(`${dir}/x.json.tmp-7-0000000000000000`);
    const claim = await claimOutFolder(dir, "smoke");
    assert.deepEqual(claim.removed, ["x.json.tmp-7-0000000000000000", "0123456789abcdef.weights"]);
    assert.ok(await Deno.stat(`${dir}/fedcba9876543210.weights`));
    assert.ok(await Deno.stat(`${dir}/00000000000000aa.weights`));
    // A second claim (as a second process would try) is refused while the first holds the folder.
    const second = await claimOutFolder(dir, "smoke").then(() => null, (e) => e);
    assert.ok(second instanceof UserError);
    assert.match(second.message, /is in use by another f16repro reproduce \(pid \d+ on .*profile smoke/);
    claim.lock.release();
    (await claimOutFolder(dir, "smoke")).lock.release();

    await Deno.writeTextFile(
      `${dir}/matrix.json`,
      JSON.stringify({ schema: "f16repro.matrix/1", profile: "quick", experiments: [] }),
    );
    const other = await claimOutFolder(dir, "smoke").then(() => null, (e) => e);
    assert.ok(other instanceof UserError);
    assert.match(other.message, /holds a reproduction of profile quick; profile smoke needs its own folder/);
    // The refused claim gave the lock back.
    (await claimOutFolder(dir, "quick")).lock.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("claimOutFolder: a link planted at the lock file's name is refused, never written through", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/victim`, "precious");
    await Deno.mkdir(`${dir}/out`);
    await Deno.symlink(`${dir}/victim`, `${dir}/out/${LOCK_FILE}`);
    const e = await claimOutFolder(`${dir}/out`, "smoke").then(() => null, (e) => e);
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /\.f16repro\.lock is not a regular file/);
    assert.equal(await Deno.readTextFile(`${dir}/victim`), "precious");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeStaleScratch: a killed check's scratch folder goes, a live one's stays", async () => {
  const tmp = await Deno.makeTempDir(), before = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmp);
  try {
    const dead = `${tmp}/${VERIFY_SCRATCH}4242-abc`, live = `${tmp}/${VERIFY_SCRATCH}4243-def`;
    await Deno.mkdir(`${dead}/0`, { recursive: true });
    await Deno.mkdir(live);
    await Deno.writeTextFile(`${dead}/${LOCK_FILE}`, "pid 4242\n");
    const held = await tryLockFile(`${live}/${LOCK_FILE}`);
    try {
      assert.deepEqual(await removeStaleScratch(), [dead]);
      assert.ok(await Deno.stat(live));
    } finally {
      held!.release();
    }
  } finally {
    if (before === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", before);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("weights: damage and mismatches are WeightsErrors naming the file", async () => {
  const tensors = {
    w: { shape: [2, 2], format: "fp16" as const, data: Float64Array.of(1, 2, 3, 0.5) },
    b: { shape: [2], format: "fp32" as const, data: Float64Array.of(-1, 0.25) },
  };
  const bytes = encodeWeights(tensors), hash = await hashTensors(tensors);
  await checkWeights(bytes, "f.weights", hash);
  assert.deepEqual(decodeWeights(bytes, "f.weights").w.data, tensors.w.data);
  const flipped = bytes.slice();
  flipped[flipped.length - 1] ^= 1;
  await assert.rejects(
    () => checkWeights(flipped, "f.weights", hash),
    is(WeightsError, /f\.weights: its SHA-256/),
  );
  // A header that is JSON but not a tensor list ("header.tensors is not iterable" before).
  const head = new TextEncoder().encode('{"nope":1}'),
    magic = new TextEncoder().encode("f16repro-weights/1\n");
  const odd = new Uint8Array([...magic, ...new Uint8Array(Uint32Array.of(head.length).buffer), ...head]);
  assert.throws(() => decodeWeights(odd, "g.weights"), is(WeightsError, /g\.weights: corrupt header/));
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/h.weights`, flipped);
    await assert.rejects(
      () => readWeights(`${dir}/h.weights`, hash),
      is(WeightsError, /h\.weights: its SHA-256/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Trains a seconds-long synthetic run into `dir` and returns its record id. */
async function train(dir: string, seed: number, perms = [...TRAIN_PERMS, "--allow-run=git"]) {
  const r = await runCli([
    "train",
    ..."--dataset synthetic --model mlp --hidden 8 --train-limit 100 --test-limit 50 --epochs 1 --batch 50"
      .split(" "),
    ...["--seed", String(seed), "--out", dir, "--json", "--quiet"],
  ], perms);
  assert.equal(r.code, 0, r.stderr);
  const { id } = JSON.parse(r.stdout) as { id: string };
  const record = JSON.parse(await Deno.readTextFile(`${dir}/${id}.json`));
  return { id, environment: record.environment as Record<string, unknown> };
}

Deno.test("verifiedRecord: a cell is finished only when record and weights verify", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { id } = await train(dir, 1), { id: other } = await train(dir, 2);
    assert.equal((await verifiedRecord(dir, id)).ok, true);
    const reason = async (edit: () => Promise<void>) => {
      const json = await Deno.readFile(`${dir}/${id}.json`), w = await Deno.readFile(`${dir}/${id}.weights`);
      await edit();
      const v = await verifiedRecord(dir, id);
      await Deno.writeFile(`${dir}/${id}.json`, json), await Deno.writeFile(`${dir}/${id}.weights`, w);
      assert.equal(v.ok, false);
      return v.ok ? "" : v.reason;
    };
    const text = await Deno.readTextFile(`${dir}/${id}.json`);
    assert.match(
      await reason(() => Deno.writeTextFile(`${dir}/${id}.json`, text.slice(0, 200))),
      /Invalid JSON/,
    );
    assert.match(
      await reason(() =>
        Deno.writeTextFile(`${dir}/${id}.json`, text.replace("f16repro.run/1", "f16repro.run/0"))
      ),
      /Schema is "f16repro.run\/0"/,
    );
    assert.match(
      await reason(() => Deno.copyFile(`${dir}/${other}.json`, `${dir}/${id}.json`)),
      new RegExp(`holds the record of another cell \\(${other}\\)`),
    );
    assert.match(
      await reason(() =>
        Deno.writeTextFile(
          `${dir}/${id}.json`,
          text.replaceAll(`"${id}"`, `"${id}"`).replace('"seed": 1', '"seed": 3'),
        )
      ),
      /holds a config whose id is/,
    );
    assert.match(
      await reason(() => Deno.copyFile(`${dir}/${other}.weights`, `${dir}/${id}.weights`)),
      /weights: its SHA-256 .* does not match/,
    );
    assert.match(await reason(() => Deno.remove(`${dir}/${id}.weights`)), /weights is missing/);
    assert.deepEqual(await verifiedRecord(dir, "0000000000000000"), {
      ok: false,
      missing: true,
      reason: "no record",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("provenance: the CPU model and the checkout's state under train's own permissions", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const env = (await train(dir, 1)).environment;
    assert.equal(env.cpu, cpus()[0].model.trim());
    assert.notEqual(env.cpu, "unknown");
    assert.equal(env.cpuCores, cpus().length);
    // A checkout (CI clones one) knows whether it is dirty; a dirty one hashes its difference.
    assert.equal(typeof env.gitDirty, "boolean");
    assert.equal(env.gitDirty === true, typeof env.gitDiffHash === "string");
    // Without permission to run git the state is said to be unknown, never guessed.
    const none = (await train(dir, 2, TRAIN_PERMS)).environment;
    assert.equal(none.gitDirty, "unknown");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("permissions: reproduce, verify and test run only deno itself and the commands they name", () => {
  // The deno running the task names itself: deno task runs `deno` as its own executable.
  const self = "$(deno eval 'console.log(Deno.execPath())')";
  for (const task of ["reproduce", "verify", "test"]) {
    const flags = TASKS[task].replaceAll(self, "DENO").split(/\s+/).filter((f) =>
      f.startsWith("--allow-run")
    );
    const slurm = SLURM_PROGRAMS.join(",");
    const expected = { reproduce: `${slurm}`, verify: "", test: `git,chromium,sh,bash,${slurm}` }[task];
    assert.deepEqual(flags, [`--allow-run=DENO${expected ? `,${expected}` : ""}`], task);
  }
  for (const task of ["train", "train:ort"]) assert.match(TASKS[task], /--allow-run=git /);
});

Deno.test("export and tolerance: weights that do not match their record fail in one line naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { id } = await train(dir, 1);
    const wpath = `${dir}/${id}.weights`, w = await Deno.readFile(wpath);
    w[w.length - 1] ^= 0x40;
    await Deno.writeFile(wpath, w);
    for (
      const args of [
        ["export", `${dir}/${id}.json`, "-o", `${dir}/m.onnx`],
        ["tolerance", `${dir}/${id}.json`, "--format", "fp16"],
      ]
    ) {
      const r = await runCli(args, TRAIN_PERMS);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^f16repro: .*${id}\\.weights: its SHA-256 .* does not match`));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("permissions: engine flags come from the engines' specs (train:<engine> and reproduce:<engine> tasks, the test task)", () => {
  const root = new URL("../", import.meta.url).pathname;
  // deno.json names the lockfile relative to the project; a spec names it absolutely.
  const rel = (f: string) => f.replace(`=${root}`, "=");
  // Deno's own flags: those before the script.
  const flags = (task: string) =>
    TASKS[task].split(" main.ts")[0].split(/\s+/).filter((f) => f.startsWith("--"));
  for (const e of ENGINES) {
    if (!e.denoFlags.length) continue;
    const task = `train:${e.name}`;
    assert.ok(TASKS[task], `deno.json has a ${task} task`);
    assert.deepEqual(flags(task).sort(), [...flags("train"), ...e.denoFlags.map(rel)].sort(), task);
    for (const f of e.denoFlags.map(rel)) assert.ok(flags("test").includes(f), `test task has ${f}`);
    // An engine's reproduce task, where there is one, is reproduce plus the same flags.
    const again = `reproduce:${e.name}`;
    if (TASKS[again]) {
      assert.deepEqual(flags(again).sort(), [...flags("reproduce"), ...e.denoFlags.map(rel)].sort(), again);
    }
  }
  // Nothing else in deno.json asks for an engine's flags: a new engine's come from its spec.
  for (const [name, task] of Object.entries(TASKS)) {
    const perEngine = /^(train|reproduce):/.test(name);
    if (perEngine || name === "test" || name.startsWith("bench")) continue;
    assert.ok(!task.includes("--allow-ffi"), `${name} asks for --allow-ffi`);
  }
});
