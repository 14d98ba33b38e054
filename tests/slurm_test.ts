/**
 * `reproduce --scheduler slurm` on a real single-node Slurm cluster (Debian's slurm-wlm and munge,
 * loopback only), brought up by tests/support/slurm-ci.sh for these tests and torn down afterwards:
 * the smoke profile through Slurm gives the weight hashes of a local run; a failing cell and a cancelled
 * task are written up with Slurm's state and resubmitted by the next run; Ctrl-C leaves the jobs
 * queued (or cancels them with --cancel-on-exit); a rejected submission and a node that cannot see the
 * out folder get one line. The dry run and the missing-sbatch error need no cluster.
 *
 * The cluster tests are skipped, with the reason printed, where Slurm is not installed or the tests do
 * not run as root (the cluster's daemons run as root); .ci/run installs Slurm.
 */

import assert from "node:assert/strict";
import { runCli, TRAIN_PERMS } from "./support/cli.ts";
import { SLURM_PROGRAMS } from "../lib/reproduce/slurm.ts";

const SLURM_CI = new URL("./support/slurm-ci.sh", import.meta.url).pathname;
const SBIN_PATH = `/usr/sbin:/usr/bin:/sbin:/bin:${Deno.env.get("PATH") ?? ""}`;
// What the reproduce task allows: the deno running it and the four Slurm client commands.
const PERMS = [...TRAIN_PERMS, `--allow-run=${Deno.execPath()},${SLURM_PROGRAMS.join(",")}`];

/** Why the cluster tests cannot run here, or null when they can. */
async function missingSlurm(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "Slurm runs on Linux only";
  if (Deno.uid() !== 0) return "the single-node cluster's daemons need root (SlurmUser=root)";
  const need = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "unshare", "ss"];
  const out = await new Deno.Command("sh", {
    args: ["-c", `for b in ${need.join(" ")}; do command -v $b >/dev/null || echo $b; done`],
    env: { PATH: SBIN_PATH },
    stdout: "piped",
  }).output();
  const missing = new TextDecoder().decode(out.stdout).trim().split("\n").filter((l) => l);
  return missing.length
    ? `${missing.join(", ")} not installed (Debian: apt-get install --no-install-recommends slurm-wlm ` +
      `slurmctld slurmd slurm-client munge; .ci/run installs them)`
    : null;
}

const SKIP = await missingSlurm();
if (SKIP) console.log(`slurm_test: skipping the cluster tests: ${SKIP}`);

async function sh(args: string[], env: Record<string, string> = {}) {
  const o = await new Deno.Command(args[0], {
    args: args.slice(1),
    env: { PATH: SBIN_PATH, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("reproduce --scheduler slurm --dry-run prints the batch script and the cells, writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/runs`;
    const r = await runCli(
      [
        "reproduce",
        ...["--profile", "smoke", "--scheduler", "slurm", "--dry-run", "--out", out, "--time", "5:00"],
        ...["--array-throttle", "2", "--sbatch-arg=--comment=two words", "--cpus-per-task", "2"],
      ],
      PERMS,
      { PATH: "/nonexistent" },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^#!\/bin\/bash\n/);
    assert.match(
      r.stdout,
      /# Submitted with: sbatch --array=0-5%2 .*--time=5:00 --cpus-per-task=2 '--comment=two words' /,
    );
    // Task k runs cell k; the wasm engine gets the cell's CPUs as threads.
    assert.match(
      r.stdout,
      /\n {2}0\) # mlp synthetic fp32 seed 1\n .* train --model mlp .*--seed 1 .*--threads 2 ;;/,
    );
    assert.match(r.stdout, /\n {2}5\) # mlp synthetic mixed seed 2\n/);
    assert.match(r.stdout, new RegExp(`--out ${out} `));
    assert.match(r.stdout, /exit 66\n/);
    assert.equal((r.stdout.match(/^# {3}[0-9a-f]{16} {2}array task \d/gm) ?? []).length, 6);
    assert.equal(await exists(out), false, "a dry run writes nothing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reproduce --scheduler slurm: one-line errors for flags and a machine without sbatch", async () => {
  const bad: [string[], RegExp][] = [
    [["--partition", "cpu"], /^f16repro: --partition needs --scheduler slurm$/],
    [["--scheduler", "pbs"], /^f16repro: Unknown scheduler "pbs": expected local or slurm$/],
    [
      ["--scheduler", "slurm", "--sbatch-arg=--comment=a\necho hi"],
      /^f16repro: --sbatch-arg must be one non-empty line/,
    ],
    [
      ["--scheduler", "slurm", "--array-throttle", "0"],
      /^f16repro: --array-throttle must be a positive integer/,
    ],
    [["--scheduler", "slurm", "--jobs", "2"], /^f16repro: --jobs is for --scheduler local/],
    [["--scheduler", "slurm"], /^f16repro: sbatch is not on PATH: .*apt-get install slurm-client/],
  ];
  for (const [args, want] of bad) {
    const r = await runCli(["reproduce", "--profile", "smoke", "--out", "/nonexistent/x", ...args], PERMS, {
      PATH: "/nonexistent",
    });
    assert.notEqual(r.code, 0);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("f16repro:"));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], want);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
});

/** A running single-node cluster: the environment its client commands need. */
interface Cluster {
  readonly env: Record<string, string>;
  readonly dir: string;
}

async function clusterUp(): Promise<Cluster> {
  const r = await sh(["bash", SLURM_CI, "up"]);
  const conf = /SLURM_CONF=(\S+)/.exec(r.stdout)?.[1], dir = /SLURM_CI_DIR=(\S+)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || !conf || !dir) throw new Error(`slurm-ci.sh up failed:\n${r.stderr}`);
  return { env: { SLURM_CONF: conf }, dir };
}

/** The states of job `job`'s tasks, by task index. */
async function taskStates(c: Cluster, job: string): Promise<Map<number, string>> {
  const r = await sh(["squeue", "-h", "-r", "-t", "all", "-j", job, "-o", "%K %T"], c.env);
  return new Map(
    r.stdout.trim().split("\n").filter((l) => l).map((l) => l.split(" ")).map(([k, s]) => [Number(k), s]),
  );
}

/** Waits (polling) until no task of `job` is pending or running. */
async function jobEnded(c: Cluster, job: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const r = await sh(["squeue", "-h", "-r", "-j", job, "-t", "PD,R,CG,CF", "-o", "%K"], c.env);
    if (!r.stdout.trim()) return;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  throw new Error(`job ${job} did not end`);
}

/** The ids of the records in `dir` and their weight and metrics hashes. */
async function hashes(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    if (!/^[0-9a-f]{16}\.json$/.test(e.name)) continue;
    const r = JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`));
    m.set(r.id, `${r.weightHash} ${r.metricsHash}`);
  }
  return m;
}

/** Runs reproduce on the smoke profile and returns once `until` matches its stderr, with the process still running. */
async function startUntil(args: string[], env: Record<string, string>, until: RegExp) {
  const p = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMS,
      new URL("../main.ts", import.meta.url).pathname,
      "reproduce",
      "--profile",
      "smoke",
      ...args,
    ],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reader = p.stderr.pipeThrough(new TextDecoderStream()).getReader();
  while (!until.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`reproduce ended before ${until}:\n${text}`);
    text += value;
  }
  const rest = (async () => {
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
    await p.stdout.cancel();
    return { code: (await p.status).code, stderr: text };
  })();
  return { p, rest };
}

Deno.test({
  name: "reproduce --scheduler slurm on a single-node cluster",
  ignore: SKIP !== null,
  sanitizeResources: false,
  fn: async (t) => {
    const tmp = await Deno.makeTempDir({ prefix: "f16repro-slurm-test-" });
    const c = await clusterUp();
    const cli = (args: string[]) => runCli(["reproduce", "--profile", "smoke", ...args], PERMS, c.env);
    try {
      await t.step("the smoke profile through Slurm gives the weight hashes of a local run", async () => {
        const local = await cli(["--out", `${tmp}/local`, "--jobs", "2", "--no-verify"]);
        assert.equal(local.code, 0, local.stderr);
        const r = await cli(["--scheduler", "slurm", "--out", `${tmp}/slurm`, "--poll", "0.5", "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const s = JSON.parse(r.stdout);
        assert.equal(s.ran, 6);
        assert.deepEqual(s.determinism, { checked: 3, identical: 3 });
        const want = await hashes(`${tmp}/local`), got = await hashes(`${tmp}/slurm`);
        assert.equal(want.size, 6);
        assert.deepEqual(got, want);
        // The figures' data is the same (timings aside).
        for (
          const f of [
            "fig1-accuracy.csv",
            "fig3-accuracy-difference.csv",
            "fig5-memory.csv",
            "fig6-tolerance.csv",
          ]
        ) {
          assert.equal(
            await Deno.readTextFile(`${tmp}/slurm/report/${f}`),
            await Deno.readTextFile(`${tmp}/local/report/${f}`),
            f,
          );
        }
        // Each record names its node, job and array task; the batch script and task logs are in the out folder.
        const jobs = JSON.parse(await Deno.readTextFile(`${tmp}/slurm/slurm/jobs.json`)).submissions;
        assert.equal(jobs.length, 1);
        for (const [task, id] of (jobs[0].cells as string[]).entries()) {
          const env = JSON.parse(await Deno.readTextFile(`${tmp}/slurm/${id}.json`)).environment.slurm;
          assert.equal(env.node, "localhost");
          assert.equal(env.arrayJobId, jobs[0].job);
          assert.equal(env.arrayTaskId, String(task));
          assert.match(env.jobId, /^\d+$/);
          assert.match(await Deno.readTextFile(`${tmp}/slurm/slurm/${jobs[0].job}_${task}.log`), /wrote /);
        }
        assert.ok(await exists(`${tmp}/slurm/slurm/cells-1.sh`));
        assert.match(r.stderr, /bit-identical \(re-run on localhost, record from localhost\)/);
      });
      await t.step("a failing cell and a cancelled task are written up and resubmitted", async () => {
        const out = `${tmp}/fail`;
        const args = ["--seeds", "1", "--scheduler", "slurm", "--out", out, "--poll", "0.5"];
        // Cell 1 (fp16) fails: a folder stands where its record goes. Cell 2 (mixed) is cancelled while held.
        const dry = await cli([...args, "--dry-run"]);
        const ids = [...dry.stdout.matchAll(/^# {3}([0-9a-f]{16}) /gm)].map((m) => m[1]);
        assert.equal(ids.length, 3, dry.stdout);
        await Deno.mkdir(`${out}/${ids[1]}.json`, { recursive: true });
        const first = await cli([...args, "--no-wait", "--sbatch-arg=--hold", "--json"]);
        assert.equal(first.code, 0, first.stderr);
        const [job] = JSON.parse(first.stdout).jobs;
        // Slurm drops a task cancelled while its array is pending altogether; once the task has a job record
        // of its own (which any update of the task gives it, as starting it does) it stays, CANCELLED.
        assert.equal((await sh(["scontrol", "update", `jobid=${job}_2`, "comment=split"], c.env)).code, 0);
        assert.equal((await sh(["scancel", `${job}_2`], c.env)).code, 0);
        // (release says task 2 has already finished, and exits 1)
        await sh(["scontrol", "release", job], c.env);
        await jobEnded(c, job);
        assert.deepEqual(
          await taskStates(c, job),
          new Map([[0, "COMPLETED"], [1, "FAILED"], [2, "CANCELLED"]]),
        );
        const fp32 = (await Deno.stat(`${out}/${ids[0]}.json`)).mtime!.getTime();
        await Deno.remove(`${out}/${ids[1]}.json`);

        // The next run writes both up with Slurm's state and resubmits exactly those two (held again).
        const second = await cli([...args, "--no-wait", "--sbatch-arg=--hold", "--json"]);
        assert.equal(second.code, 0, second.stderr);
        const s2 = JSON.parse(second.stdout);
        assert.deepEqual(
          s2.failed.map((f: { id: string; state: string; code: number }) => [f.id, f.state, f.code]),
          [[ids[1], "FAILED", 1], [ids[2], "CANCELLED", 1]],
        );
        const failed = await Deno.readTextFile(`${out}/${ids[1]}.failed.txt`);
        assert.match(
          failed,
          new RegExp(
            `slurm job: ${job}_1\nslurm state: FAILED\nslurm reason: NonZeroExitCode\nexit code: 1\nnode: localhost\n`,
          ),
        );
        assert.match(failed, /EISDIR|Is a directory/);
        assert.match(await Deno.readTextFile(`${out}/${ids[2]}.failed.txt`), /slurm state: CANCELLED\n/);
        const [job2] = s2.jobs;
        assert.notEqual(job2, job);
        const subs = JSON.parse(await Deno.readTextFile(`${out}/slurm/jobs.json`)).submissions;
        assert.deepEqual(subs.map((x: { cells: string[] }) => x.cells), [ids, [ids[1], ids[2]]]);

        // Ctrl-C while waiting leaves the (held) job queued and says how to cancel it.
        const wait = ["--no-verify", "--no-tolerance", ...args];
        const a = await startUntil(wait, c.env, /PENDING/);
        a.p.kill("SIGINT");
        const ra = await a.rest;
        assert.equal(ra.code, 130, ra.stderr);
        assert.match(ra.stderr, new RegExp(`keeps running .*scancel ${job2}\n`));
        assert.deepEqual([...(await taskStates(c, job2)).values()], ["PENDING", "PENDING"]);
        // ... unless --cancel-on-exit.
        const b = await startUntil([...wait, "--cancel-on-exit"], c.env, /PENDING/);
        b.p.kill("SIGINT");
        const rb = await b.rest;
        assert.equal(rb.code, 130, rb.stderr);
        assert.match(rb.stderr, new RegExp(`cancelled Slurm job ${job2}\n`));
        await jobEnded(c, job2);
        assert.deepEqual([...(await taskStates(c, job2)).values()], ["CANCELLED", "CANCELLED"]);

        // The last run resubmits the two cancelled cells, waits, and leaves every cell recorded.
        const last = await cli([...wait, "--json"]);
        assert.equal(last.code, 0, last.stderr);
        const s3 = JSON.parse(last.stdout);
        assert.deepEqual([s3.ran, s3.skipped, s3.failed], [2, 1, []]);
        assert.match(last.stderr, /\nmlp synthetic fp16 seed 1: CANCELLED \(/);
        assert.match(last.stderr, /\nsubmitted 2 cells as Slurm job \d+ /);
        assert.equal((await hashes(out)).size, 3);
        assert.equal(
          (await Deno.stat(`${out}/${ids[0]}.json`)).mtime!.getTime(),
          fp32,
          "cell 0 did not run again",
        );
        assert.equal(await exists(`${out}/${ids[1]}.failed.txt`), false);
        assert.equal(await exists(`${out}/${ids[2]}.failed.txt`), false);
      });

      await t.step(
        "a node that cannot see the out folder, and a rejected submission, get one line",
        async () => {
          const out = `${tmp}/moved`;
          const args = ["--seeds", "1", "--scheduler", "slurm", "--out", out, "--poll", "0.5"];
          const first = await cli([...args, "--no-wait", "--sbatch-arg=--hold", "--json"]);
          assert.equal(first.code, 0, first.stderr);
          const [job] = JSON.parse(first.stdout).jobs;
          // The folder is gone when the tasks start, as on a node that does not mount it.
          await Deno.rename(out, `${out}-away`);
          await sh(["scontrol", "release", job], c.env);
          await jobEnded(c, job);
          await Deno.rename(`${out}-away`, out);
          const r = await cli([
            ...args,
            "--no-wait",
            "--array-throttle",
            "1",
            "--sbatch-arg=--hold",
            "--json",
          ]);
          assert.equal(r.code, 0, r.stderr);
          const s = JSON.parse(r.stdout);
          assert.equal(s.failed.length, 3);
          for (const f of s.failed) {
            assert.equal(f.state, "FAILED");
            assert.equal(f.code, 66);
            assert.equal(
              f.reason,
              `localhost cannot see the out folder ${out} (it must be on a filesystem every node mounts at that path)`,
            );
          }
          await sh(["scancel", ...s.jobs], c.env);

          const rejected = await cli([...args, "--out", `${tmp}/rejected`, "--partition", "nosuch"]);
          assert.equal(rejected.code, 1);
          assert.match(
            rejected.stderr,
            /\nf16repro: Slurm rejected the job: Batch job submission failed: Invalid partition name specified\n$/,
          );
          // Nothing half-written: no batch script and no submission for the job Slurm refused.
          assert.deepEqual([...Deno.readDirSync(`${tmp}/rejected/slurm`)], []);
        },
      );
    } finally {
      const d = await sh(["bash", SLURM_CI, "down", c.dir]);
      await Deno.remove(tmp, { recursive: true });
      assert.equal(d.code, 0, d.stderr);
    }
  },
});
