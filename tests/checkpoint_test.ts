/**
 * Checkpoints and bit-exact resume: `train` processes SIGKILLed at several points and started again end with
 * the weight and metrics hashes of an uninterrupted run, on wasm (bits) and on ort (same thread count); a
 * damaged checkpoint is refused with one warning and the run starts over; the checkpoint is gone once the
 * record is written. Encoding and refusal are also checked in-process.
 */

import assert, { deepStrictEqual as assertEquals, match as assertMatch, rejects } from "node:assert/strict";
import { cliCommand, runCli, TRAIN_PERMS } from "./support/cli.ts";
import {
  type Checkpoint,
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  stateMismatch,
} from "../lib/train/checkpoint.ts";
import { LossScaler } from "../lib/train/loss_scaler.ts";
import { Rng } from "../lib/random.ts";
import { DYNAMIC_LOSS_SCALE } from "../lib/policy/policy.ts";

const ORT_PERMS = [...TRAIN_PERMS, "--allow-ffi"];
// 40 batches an epoch: long enough to be stopped inside one, seconds in all.
const MLP = "--dataset synthetic --model mlp --hidden 32 --train-limit 2000 --test-limit 200 --batch 50"
  .split(" ");

interface Finished {
  readonly id: string;
  readonly weightHash: string;
  readonly metricsHash: string;
  readonly stderr: string;
}

async function trainTo(dir: string, args: readonly string[], perms = TRAIN_PERMS): Promise<Finished> {
  const r = await runCli(["train", ...args, "--out", dir, "--json"], perms);
  assertEquals(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  return { id: j.id, weightHash: j.weightHash, metricsHash: j.metricsHash, stderr: r.stderr };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `train` and SIGKILLs it at the first moment `when` accepts the checkpoint on disk (null: none yet).
 * The process is stopped (SIGSTOP) while the file is read, so the checkpoint judged is the one it leaves.
 */
async function killWhen(
  dir: string,
  id: string,
  args: readonly string[],
  when: (c: Checkpoint | null) => boolean,
  perms = TRAIN_PERMS,
): Promise<Checkpoint | null> {
  const child = cliCommand(["train", ...args, "--out", dir, "--quiet"], perms).spawn();
  const drained = Promise.all([child.stdout.cancel(), child.stderr.cancel()]);
  const status = child.status;
  let done = false;
  status.then(() => (done = true));
  let seen: Checkpoint | null = null, last = "";
  while (!done) {
    // A checkpoint is replaced by a rename: a new inode or time means a new one to judge.
    const st = await Deno.stat(`${dir}/${id}.ckpt`).catch(() => null);
    const now = st ? `${st.ino}/${st.mtime?.getTime()}` : "";
    if (now !== last || !st) {
      // The run may end between the loop's test and this signal; then it was not killed in time.
      if (!signal(child, "SIGSTOP")) break;
      seen = await readCheckpoint(`${dir}/${id}.ckpt`, id);
      if (when(seen)) break;
      child.kill("SIGCONT");
      const again = await Deno.stat(`${dir}/${id}.ckpt`).catch(() => null);
      last = again ? `${again.ino}/${again.mtime?.getTime()}` : "";
    }
    await sleep(3);
  }
  assert(!done && signal(child, "SIGKILL"), "the run finished before it could be killed");
  child.kill("SIGCONT");
  assertEquals((await status).signal, "SIGKILL");
  await drained;
  return seen;
}

/** Sends `sig` to `child`; false when the process has already ended. */
function signal(child: Deno.ChildProcess, sig: Deno.Signal): boolean {
  try {
    child.kill(sig);
    return true;
  } catch (e) {
    if (e instanceof TypeError) return false;
    throw e;
  }
}

/** Kills a run at `when`, starts it again and checks it ends with `base`'s hashes and leaves no checkpoint. */
async function resumeMatches(
  base: Finished,
  args: readonly string[],
  when: (c: Checkpoint | null) => boolean,
  perms = TRAIN_PERMS,
): Promise<Checkpoint | null> {
  const dir = await Deno.makeTempDir();
  try {
    const left = await killWhen(dir, base.id, args, when, perms);
    assertEquals(await Deno.stat(`${dir}/${base.id}.json`).then(() => true, () => false), false);
    const again = await trainTo(dir, args, perms);
    if (left) {
      assertMatch(
        again.stderr,
        new RegExp(
          `resuming ${base.id} from epoch ${left.epoch}, step ${left.step} \\(checkpoint of ${left.writtenAt}\\)`,
        ),
      );
    } else {
      assert(!again.stderr.includes("resuming"), again.stderr);
    }
    assertEquals([again.weightHash, again.metricsHash], [base.weightHash, base.metricsHash]);
    assertEquals(await Deno.stat(`${dir}/${base.id}.ckpt`).then(() => true, () => false), false);
    return left;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A checkpoint inside an epoch after the first, of an epoch of `batches` batches. */
const midEpoch = (batches: number) => (c: Checkpoint | null) =>
  c !== null && c.batch > 0 && c.batch < batches && c.epoch > 1;
/**
 * An epoch-end checkpoint before the last epoch. On ort an MLP epoch takes milliseconds and its checkpoint is
 * replaced as fast, so a poll on a busy machine may miss one: any of them will do.
 */
const atAnEpochEnd = (c: Checkpoint | null) => c !== null && c.epoch >= 2 && c.batch === 0;

for (
  const [engine, perms, threads] of [["wasm", TRAIN_PERMS, []], ["ort", ORT_PERMS, [
    "--threads",
    "1",
  ]]] as const
) {
  Deno.test(`${engine}: a SIGKILLed train started again ends with the uninterrupted run's hashes`, async () => {
    // More epochs on ort: more epoch-end checkpoints for the poll to catch.
    const args = [...MLP, "--engine", engine, ...threads, "--epochs", engine === "ort" ? "6" : "3"];
    const dir = await Deno.makeTempDir();
    const base = await trainTo(dir, args, perms);
    await Deno.remove(dir, { recursive: true });
    assert(!base.stderr.includes("resuming"));
    await resumeMatches(base, args, atAnEpochEnd, perms);
    await resumeMatches(base, [...args, "--checkpoint-every", "0"], midEpoch(40), perms);
    if (engine === "wasm") await resumeMatches(base, args, (c) => c === null, perms);
  });
}

Deno.test("mixed precision: the loss scaler's state is resumed (skipped steps and scale as uninterrupted)", async () => {
  const args = [
    ...MLP,
    "--engine",
    "wasm",
    "--precision",
    "mixed",
    "--lr",
    "0.3",
    "--epochs",
    "2",
    "--checkpoint-every",
    "0",
  ];
  const dir = await Deno.makeTempDir();
  const base = await trainTo(dir, args);
  const record = JSON.parse(await Deno.readTextFile(`${dir}/${base.id}.json`));
  await Deno.remove(dir, { recursive: true });
  // The scaler's state matters only if it changes: at this learning rate gradients overflow in fp16 at 2^15.
  assert(record.epochs[0].skippedSteps > 0 && record.epochs[0].lossScale < 32768);
  const left = await resumeMatches(base, args, (c) => c !== null && c.scaler.skipped > 0 && c.batch > 0);
  assert(left!.scaler.scale < 32768);
});

Deno.test("adam: a run resumed inside an epoch continues Adam's step count", async () => {
  const args = [...MLP, "--engine", "wasm", "--optimizer", "adam", "--lr", "0.001", "--epochs", "2"];
  const dir = await Deno.makeTempDir();
  const base = await trainTo(dir, args);
  await Deno.remove(dir, { recursive: true });
  await resumeMatches(base, [...args, "--checkpoint-every", "0"], midEpoch(40));
});

Deno.test("dropout: a ViT resumed at an epoch end draws the uninterrupted run's dropout masks", async () => {
  // vit8 is the zoo's smallest model with dropout (0.1 after attention and in the MLP); its masks in epoch 2
  // come from the step count the checkpoint restores. Mid-epoch positions are covered by the MLP above.
  const args = "--dataset fashion-mnist-32 --offline --model vit8 --train-limit 20 --test-limit 5 --batch 5"
    .split(" ").concat("--engine", "wasm", "--epochs", "2");
  const dir = await Deno.makeTempDir();
  const base = await trainTo(dir, args);
  await Deno.remove(dir, { recursive: true });
  await resumeMatches(base, args, atAnEpochEnd);
});

Deno.test("a damaged checkpoint is refused with one warning and the run starts over", async () => {
  const args = [...MLP, "--engine", "wasm", "--epochs", "2"];
  const dir = await Deno.makeTempDir();
  const damages: [string, (bytes: Uint8Array, c: Checkpoint) => Promise<Uint8Array>][] = [
    ["its SHA-256 does not match its content", (b) => {
      b[b.length - 5] ^= 1; // a bit of the last tensor
      return Promise.resolve(b);
    }],
    // A checkpoint whose hash is right but whose stream position no generator can have.
    ["Not a stream position: [0,0,0,0]", (_b, c) => encodeCheckpoint({ ...c, shuffle: [0, 0, 0, 0] })],
  ];
  try {
    const base = await trainTo(dir, args);
    const path = `${dir}/${base.id}.ckpt`;
    for (const [why, damage] of damages) {
      await Deno.remove(`${dir}/${base.id}.json`);
      const left = await killWhen(dir, base.id, args, atAnEpochEnd);
      await Deno.writeFile(path, await damage(await Deno.readFile(path), left!));
      const again = await trainTo(dir, args);
      const warnings = again.stderr.split("\n").filter((l) => l.startsWith("warning:"));
      assertEquals(warnings, [
        `warning: checkpoint ${path} not used (${why}); training ${base.id} from the beginning`,
      ]);
      assert(!again.stderr.includes("resuming"));
      assertEquals([again.weightHash, again.metricsHash], [base.weightHash, base.metricsHash]);
      assertEquals(await Deno.stat(path).then(() => true, () => false), false);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a checkpoint that cannot be read or written is warned about once and the run still finishes", async () => {
  const args = [...MLP, "--engine", "wasm", "--epochs", "2"];
  const dir = await Deno.makeTempDir();
  try {
    const base = await trainTo(dir, args);
    await Deno.remove(`${dir}/${base.id}.json`);
    // A folder (not empty) where the checkpoint goes: it can be neither read nor replaced, nor removed.
    const path = `${dir}/${base.id}.ckpt`;
    await Deno.mkdir(path);
    await Deno.writeTextFile(`${path}/keep`, "");
    const again = await trainTo(dir, [...args, "--checkpoint-every", "0"]);
    const warnings = again.stderr.split("\n").filter((l) => l.startsWith("warning:"));
    assertEquals(warnings.length, 2, again.stderr);
    assertMatch(
      warnings[0],
      new RegExp(`^warning: checkpoint ${path} not used \\(cannot be read \\(.+\\)\\); `),
    );
    assertMatch(
      warnings[1],
      new RegExp(`^warning: Cannot write ${path}: .+; training goes on without checkpoints$`),
    );
    assertEquals([again.weightHash, again.metricsHash], [base.weightHash, base.metricsHash]);
    assertEquals(await Deno.readTextFile(`${path}/keep`), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bad --checkpoint-every is refused in one line before anything runs", async () => {
  for (const v of ["-1", "soon", ""]) {
    const r = await runCli(["train", ...MLP, "--checkpoint-every", v, "--out", "/nonexistent/never"]);
    assertEquals(r.code, 2, r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assertMatch(
      r.stderr,
      new RegExp(`--checkpoint-every (must be a number at least 0|needs a value), got "${v}"`),
    );
  }
});

function sample(): Checkpoint {
  const shuffle = new Rng(7, "shuffle"), scaler = new LossScaler(DYNAMIC_LOSS_SCALE);
  shuffle.permutation(10);
  scaler.update(false);
  return {
    configId: "0123456789abcdef",
    writtenAt: "2026-12-07T01:02:03.000Z",
    epoch: 1,
    batch: 3,
    step: 13,
    adamT: 0,
    shuffle: shuffle.position(),
    scaler: scaler.snapshot(),
    epochs: [],
    sums: {
      lossSum: Infinity,
      correct: 5,
      seen: 150,
      lostSum: -0,
      applied: 3,
      skippedBefore: 1,
      trainSeconds: 0.5,
    },
    elapsedSeconds: 2,
    state: {
      w: { shape: [2, 2], format: "fp16", data: Float64Array.of(1, -2, 0.5, 65504) },
      m: { shape: [3], format: "fp32", data: Float64Array.of(Math.fround(0.1), -0, 3) },
    },
  };
}

Deno.test("a checkpoint decodes to what was encoded, streams and scaler included", async () => {
  const c = { ...sample(), epochs: [] };
  const back = await decodeCheckpoint(await encodeCheckpoint(c), c.configId);
  assertEquals({ ...back, state: null }, { ...c, state: null });
  assert(Object.is(back.sums.lostSum, -0) && back.sums.lossSum === Infinity);
  assertEquals(stateMismatch(back.state, c.state), null);
  for (const n of ["w", "m"]) assertEquals([...back.state[n].data], [...c.state[n].data]);
  const rng = new Rng(1, "x");
  rng.seek(back.shuffle);
  const original = new Rng(7, "shuffle");
  original.permutation(10);
  assertEquals(rng.nextU32(), original.nextU32());
  const scaler = new LossScaler(DYNAMIC_LOSS_SCALE);
  scaler.restore(back.scaler);
  assertEquals([scaler.scale, scaler.skipped], [16384, 1]);
});

Deno.test("a checkpoint that is truncated, altered or another run's is refused", async () => {
  const c = sample(), bytes = await encodeCheckpoint(c);
  const refused = (b: Uint8Array, id = c.configId) => rejects(() => decodeCheckpoint(b, id), CheckpointError);
  for (const n of [0, 10, 90, bytes.length - 1]) await refused(bytes.slice(0, n));
  const flipped = bytes.slice();
  flipped[200] ^= 0x10;
  await refused(flipped);
  await rejects(() => decodeCheckpoint(bytes, "fedcba9876543210"), /belongs to run/);
  assert.throws(() => new Rng(0, "x").seek([0, 0, 0, 0]), RangeError);
  assertMatch(stateMismatch({ w: c.state.w }, c.state) ?? "", /tensor m is missing/);
  assertMatch(
    stateMismatch({ ...c.state, w: { ...c.state.w, format: "fp32" } }, c.state) ?? "",
    /tensor w is \[2,2\] fp32/,
  );
});
