/**
 * The parts of `reproduce --scheduler slurm` that need no cluster: reading squeue and scontrol output,
 * the reasons a task ended without a record, the batch script (run by bash as a node would run it), the
 * Slurm flags, the node grouping of the re-runs and the Slurm fields of the environment manifest.
 */

import assert from "node:assert/strict";
import { parseExitCodes, parseSqueue, SlurmError, taskState, UNKNOWN } from "../lib/reproduce/slurm.ts";
import { waitForTasks } from "../lib/reproduce/slurm_wait.ts";
import { batchScript, shellQuote } from "../lib/reproduce/slurm_script.ts";
import { endReason } from "../lib/reproduce/slurm_run.ts";
import { groupByNode } from "../lib/reproduce/slurm_verify.ts";
import { slurmOptions } from "../lib/cli/slurm_flags.ts";
import { slurmPlacement } from "../lib/record/environment.ts";
import type { RunRecord } from "../lib/record/schema.ts";

Deno.test("squeue and scontrol output: task states, reasons, nodes and exit codes", () => {
  const q = parseSqueue("0|COMPLETED|None|n1\n1|FAILED|NonZeroExitCode|n2\n2|PENDING|JobArrayTaskLimit|\n\n");
  assert.deepEqual(q.get(1), { state: "FAILED", reason: "NonZeroExitCode", node: "n2" });
  assert.deepEqual(q.get(2), { state: "PENDING", reason: "JobArrayTaskLimit", node: "" });
  assert.equal(q.size, 3);
  const codes = parseExitCodes(
    "JobId=5 ArrayJobId=5 ArrayTaskId=3-4%1 JobState=PENDING ExitCode=0:0\n" +
      "JobId=6 ArrayJobId=5 ArrayTaskId=0 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0\n" +
      "JobId=7 ArrayJobId=5 ArrayTaskId=1 JobState=CANCELLED Reason=None ExitCode=0:15\n",
  );
  assert.deepEqual([...codes], [[0, "3"], [1, "0 (signal 15)"]]);
  // A task missing from a listed job, and a job Slurm no longer lists, are UNKNOWN with different reasons.
  assert.equal(taskState(q, 7).state, UNKNOWN);
  assert.match(taskState(q, 7).reason, /no longer lists the task/);
  assert.match(taskState(null, 0).reason, /no longer lists the job/);
});

Deno.test("why a task ended without a record", () => {
  const t = { state: "FAILED", reason: "NonZeroExitCode", node: "n3" };
  assert.equal(
    endReason({ ...t, exitCode: "66" }, "/shared/runs"),
    "n3 cannot see the out folder /shared/runs (it must be on a filesystem every node mounts at that path)",
  );
  assert.match(endReason({ ...t, exitCode: "69" }, "/o"), /^n3 has no deno/);
  assert.equal(endReason({ ...t, exitCode: "1" }, "/o"), "NonZeroExitCode");
  assert.equal(endReason({ state: "TIMEOUT", reason: "", node: "", exitCode: "" }, "/o"), "TIMEOUT");
  assert.match(
    endReason({ ...t, state: "COMPLETED", exitCode: "0" }, "/o"),
    /without writing a verified record/,
  );
});

Deno.test("shellQuote gives bash back the exact string", async () => {
  const odd = ["plain", "two words", "it's", '$HOME `x` \\ "q"', "new\nline", "--comment=a,b"];
  const out = await new Deno.Command("bash", {
    args: ["-c", `printf '%s\\0' ${odd.map(shellQuote).join(" ")}`],
    stdout: "piped",
  }).output();
  assert.deepEqual(new TextDecoder().decode(out.stdout).split("\0").slice(0, -1), odd);
});

Deno.test("the batch script, run as a node runs it: out-folder check, task dispatch, its log", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/runs`, path = `${out}/slurm/cells-1.sh`;
    await Deno.mkdir(`${out}/slurm`, { recursive: true });
    const tasks = [{ label: "first", args: ["--version"] }, { label: "second", args: ["--help"] }];
    const script = batchScript({ out, path, tasks, sbatch: ["--array=0-1"] });
    await Deno.writeTextFile(path, script);
    const run = (task: string, file = path) =>
      new Deno.Command("bash", {
        args: [file],
        env: { SLURM_ARRAY_JOB_ID: "41", SLURM_ARRAY_TASK_ID: task },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const ok = await run("0");
    assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
    assert.match(await Deno.readTextFile(`${out}/slurm/41_0.log`), /job 41_0 on node .*\nf16repro 0\.1\.0\n/);
    assert.equal((await run("5")).code, 64);
    // A node that does not see the out folder says so and exits 66, writing nothing.
    await Deno.writeTextFile(`${dir}/copy.sh`, script);
    await Deno.rename(out, `${dir}/elsewhere`);
    const blind = await run("1", `${dir}/copy.sh`);
    assert.equal(blind.code, 66);
    assert.match(new TextDecoder().decode(blind.stderr), /cannot see the out folder /);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "copy.sh",
      "elsewhere",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Slurm flags become sbatch options; local runs refuse them", () => {
  const o = slurmOptions({
    scheduler: "slurm",
    partition: "gpu",
    time: "1:00:00",
    gpus: "1",
    "cpus-per-task": "4",
    "array-throttle": "3",
    "sbatch-arg": ["--account=lab", "--qos=long"],
    poll: "0.5",
  })!;
  assert.deepEqual(o.sbatch, [
    "--partition=gpu",
    "--time=1:00:00",
    "--cpus-per-task=4",
    "--gpus=1",
    "--account=lab",
    "--qos=long",
  ]);
  assert.deepEqual([o.throttle, o.poll, o.cpus, o.noWait, o.dryRun], [3, 0.5, 4, false, false]);
  assert.equal(slurmOptions({ scheduler: "local" }), undefined);
  assert.throws(
    () => slurmOptions({ scheduler: "local", "no-wait": true }),
    /--no-wait needs --scheduler slurm/,
  );
  assert.throws(
    () => slurmOptions({ scheduler: "slurm", poll: "0" }),
    /--poll must be a number greater than 0/,
  );
});

Deno.test("re-runs avoid their record's node only where the partition has several", () => {
  const rec = (node?: string) => ({ environment: node ? { slurm: { node } } : {} }) as unknown as RunRecord;
  const records = [rec("a"), rec("b"), rec("a"), rec()];
  assert.deepEqual([...groupByNode(records, 1)], [["", [0, 1, 2, 3]]]);
  assert.deepEqual([...groupByNode(records, 4)], [["a", [0, 2]], ["b", [1]], ["", [3]]]);
});

Deno.test("the environment manifest names the Slurm node, job and array task inside a job", () => {
  const vars = {
    SLURM_JOB_ID: "12",
    SLURM_ARRAY_JOB_ID: "10",
    SLURM_ARRAY_TASK_ID: "2",
    SLURMD_NODENAME: "n7",
    SLURM_CLUSTER_NAME: "lab",
  };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  try {
    for (const k of Object.keys(vars)) Deno.env.delete(k);
    assert.equal(slurmPlacement(), undefined);
    for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
    assert.deepEqual(slurmPlacement(), {
      node: "n7",
      jobId: "12",
      arrayJobId: "10",
      arrayTaskId: "2",
      cluster: "lab",
    });
  } finally {
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
});

Deno.test("waiting looks at the queue again after a failed look, and gives up after ten in a row", async () => {
  // A stand-in controller: its Nth look gives the Nth answer ("fail" = controller down, as squeue says it).
  let n = 0;
  const controller = (answers: string[]) => {
    n = 0;
    return (_job: string) => {
      const r = answers[n++] ?? "fail";
      if (r === "fail") {
        return Promise.reject(
          new SlurmError("squeue failed: slurm_load_jobs error: Unable to contact slurm controller"),
        );
      }
      return Promise.resolve(parseSqueue(r));
    };
  };
  const lines: string[] = [], ended: string[] = [];
  const task = { job: "7", task: 0, label: "cell" };
  const o = { poll: 0.01, cancelOnExit: false, log: (l: string) => lines.push(l) };
  await waitForTasks([task], {
    ...o,
    look: controller(["fail", "fail", "0|RUNNING|None|n1", "0|COMPLETED|None|n1"]),
    onEnd: (t) => Promise.resolve(void ended.push(`${t.state} ${t.node} ${t.exitCode}`)),
  });
  assert.deepEqual(ended.map((e) => e.split(" ").slice(0, 2).join(" ")), ["COMPLETED n1"]);
  assert.equal(lines.filter((l) => /Unable to contact slurm controller; looking again/.test(l)).length, 2);
  assert.ok(lines.includes("cell (job 7_0): RUNNING on n1"));

  await assert.rejects(
    waitForTasks([task], { ...o, look: controller([]), onEnd: () => Promise.resolve() }),
    (e) => e instanceof SlurmError && /Unable to contact slurm controller/.test(e.message),
  );
  assert.equal(n, 10);
});
