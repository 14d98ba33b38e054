/**
 * `deno task bench:zoo`: one training step of each Table 5 network, per engine, policy, batch and thread
 * count, beside a PyTorch peer running the same architectures (docs/benchmarks.md, "Zoo").
 *
 * For each network, batch and thread count, every round runs the PyTorch peer once and then each engine and
 * policy once, each in a fresh process (tests/bench/zoo_step.ts), so drift in the machine's speed hits them
 * alike and the ratios are taken round by round; a fresh process also makes its peak resident memory its
 * own. Before the steps, each engine's 512^3 fp32 gemm is timed at each thread count: the peak the steps'
 * GFLOP/s are set against. Prints Markdown tables (tests/bench/zoo_tables.ts); --json PATH writes the raw
 * measurements and the tables' inputs too.
 *
 * @module
 */

import { dirname } from "node:path";
import { loadEngine } from "../../kernels/registry.ts";
import { loadOrt, ortVersion } from "../../kernels/ort/runtime.ts";
import { stepProfile } from "../../kernels/wasm/mod.ts";
import { UsageError } from "../../lib/errors.ts";
import { cpuModel, gitState } from "../../lib/record/environment.ts";
import { findPeer, type Peer, runPeer } from "./peer.ts";
import { ortAvailable, ortMatmulGflops } from "./ort_matmul.ts";
import { gemmGflops, matmulRunner, median, timeMedian } from "./timing.ts";
import { parseZooArgs, ZOO_HELP, type ZooOptions } from "./zoo_args.ts";
import { paperOptimizer, runStepChild } from "./zoo_step.ts";
import {
  type ConfigMeasured,
  type Gemm,
  type Group,
  peerMismatches,
  type ZooRun,
  zooTables,
} from "./zoo_tables.ts";

const GEMM = [512, 512, 512];
const ROOT = new URL("../../", import.meta.url);
const progress = (line: string) => console.error(line);

/**
 * The 512^3 fp32 gemm of `engine` at `threads`: onnxruntime's own MatMul for ort, else the engine's one-matmul
 * graph. On wasm only the plan's step is timed (packing and tiles, through the development hook), not the
 * host's conversion of the fed operands and the result, which runs on one thread and would hide the kernel's
 * thread scaling; a training step keeps its tensors in wasm memory and does no such conversion.
 */
async function gemmPeak(engine: string, threads: number): Promise<Gemm> {
  if (engine === "ort") {
    const { gflops } = await ortMatmulGflops(GEMM[0], GEMM[1], GEMM[2], threads, { repeats: 3 });
    return { engine, what: "onnxruntime MatMul", threads, gflops };
  }
  const e = await loadEngine(engine, { threads });
  try {
    const run = matmulRunner(e, GEMM, "fp32");
    if (!engine.startsWith("wasm")) {
      const seconds = await timeMedian(run, 300, 3);
      return { engine, what: `${engine} matmul graph`, threads, gflops: gemmGflops(GEMM, seconds) };
    }
    const seconds = await planSeconds(run, 300, 3);
    return { engine, what: `${engine} matmul kernels`, threads, gflops: gemmGflops(GEMM, seconds) };
  } finally {
    e.close?.();
  }
}

/** Median seconds per call in the wasm plan's steps (stepProfile) over `repeats` timings of `minMs` each. */
async function planSeconds(run: () => Promise<unknown>, minMs: number, repeats: number): Promise<number> {
  await run();
  const per: number[] = [];
  try {
    for (let r = 0; r < repeats; r++) {
      stepProfile.times = new Map();
      let calls = 0;
      for (const t0 = performance.now(); performance.now() - t0 < minMs || calls === 0; calls++) await run();
      per.push([...stepProfile.times.values()].reduce((a, b) => a + b, 0) / 1000 / calls);
    }
  } finally {
    stepProfile.times = undefined;
  }
  return median(per);
}

/** Date, commit, CPU and versions: the header lines of the tables. */
async function header(o: ZooOptions, peer: Peer | string): Promise<Record<string, string>> {
  const rev = await new Deno.Command("git", {
    args: ["rev-parse", "--short", "HEAD"],
    cwd: ROOT,
    stdout: "piped",
  })
    .output().then((x) => new TextDecoder().decode(x.stdout).trim(), () => "unknown");
  const dirty = (await gitState()).dirty;
  return {
    date: new Date().toISOString(),
    commit: `${rev}${dirty === true ? " (with uncommitted changes)" : ""}`,
    CPU: `${cpuModel()}, ${navigator.hardwareConcurrency} logical CPUs`,
    Deno: Deno.version.deno,
    onnxruntime: o.engines.includes("ort") ? ortVersion(await loadOrt()) : "not used",
    PyTorch: typeof peer === "string" ? "none" : `${peer.torch} (${peer.python})`,
    step: `forward, loss, backward, the paper profile's SGD${o.bare ? "" : ", the update checks"}; ` +
      `${o.warmup} warm-up + ${o.steps} timed steps per process, ${o.rounds} round(s)`,
  };
}

/** Every round of group `g` (one network at one batch and thread count), with the peer when there is one. */
async function measureGroup(g: Group, { o, peer }: { o: ZooOptions; peer: Peer | undefined }): Promise<void> {
  const opt = paperOptimizer(g.model);
  const at = `${g.model} batch ${g.batch} threads ${g.threads}`;
  for (let r = 0; r < o.rounds; r++) {
    if (peer && !g.peer?.error) {
      g.peer ??= { rounds: [], peakKiB: 0 };
      try {
        const p = await runPeer(peer, {
          ...{ model: g.model, batch: g.batch, threads: g.threads, warmup: o.warmup, steps: o.steps },
          ...{ momentum: opt.momentum, decay: opt.weightDecay },
        });
        g.peer.rounds[r] = median(p.ms);
        Object.assign(g.peer, { params: p.params, forwardFlops: p.forwardFlops });
        g.peer.peakKiB = Math.max(g.peer.peakKiB, p.peakKiB);
        progress(`${at} round ${r + 1}: PyTorch ${g.peer.rounds[r]!.toFixed(1)} ms/step`);
      } catch (e) {
        g.peer.error = (e as Error).message;
        progress(`${at}: PyTorch failed: ${g.peer.error}`);
      }
    }
    for (const c of g.configs) {
      if (c.error) continue;
      const { engine, policy } = c;
      try {
        const m = await runStepChild({
          ...{ model: g.model, engine, policy, batch: g.batch, threads: g.threads },
          ...{ warmup: o.warmup, steps: o.steps, bare: o.bare },
        });
        c.rounds[r] = median(m.ms);
        Object.assign(c, { params: m.params, flops: m.flops, forwardFlops: m.forwardFlops });
        c.peakKiB = Math.max(c.peakKiB, m.peakKiB);
        progress(`${at} round ${r + 1}: ${c.engine} ${c.policy} ${c.rounds[r]!.toFixed(1)} ms/step`);
      } catch (e) {
        c.error = (e as Error).message;
        progress(`${at}: ${c.engine} ${c.policy} failed: ${c.error}`);
      }
    }
  }
}

/** The whole benchmark. */
async function benchZoo(o: ZooOptions): Promise<ZooRun> {
  const found = o.peer ? await findPeer() : "--no-peer";
  const peer = typeof found === "string" ? undefined : found;
  if (!peer) progress(`PyTorch peer: skipped (${found})`);
  const head = await header(o, found);
  const gemms: Gemm[] = [];
  // The wasm gemm's 2-thread speed-up is judged beside a tuned gemm's on the same machine (two vCPUs of a
  // VM may share one core): onnxruntime's MatMul is timed at 1 and 2 threads too when ort is not an engine.
  const yardstick = o.engines.includes("wasm") && !o.engines.includes("ort") && o.threads.includes(1) &&
    o.threads.includes(2) && await ortAvailable() === undefined;
  for (const engine of yardstick ? [...o.engines, "ort"] : o.engines) {
    for (const threads of engine === "ort" && yardstick ? [1, 2] : o.threads) {
      gemms.push(await gemmPeak(engine, threads));
      progress(`512^3 gemm ${engine} ${threads} thread(s): ${gemms.at(-1)!.gflops.toFixed(1)} GFLOP/s`);
    }
  }
  const groups: Group[] = [];
  for (const model of o.models) {
    for (const batch of o.batches) {
      for (const threads of o.threads) {
        const configs: ConfigMeasured[] = o.engines.flatMap((engine) =>
          o.policies.map((policy) => ({ engine, policy, rounds: [], peakKiB: 0 }))
        );
        const g: Group = { model, batch, threads, configs };
        await measureGroup(g, { o, peer });
        groups.push(g);
        // A mismatch means the two sides run different networks: say so at once, not only in the table.
        for (const line of peerMismatches({ groups: [g] })) {
          progress(line);
        }
      }
    }
  }
  return { header: head, gemms, groups, peer: peer ? { label: peer.label } : { skipped: found as string } };
}

if (import.meta.main) {
  let o: ZooOptions | "help";
  try {
    o = parseZooArgs(Deno.args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`bench:zoo: ${e.message}`);
    Deno.exit(2);
  }
  if (o === "help") {
    console.log(ZOO_HELP);
  } else {
    try {
      // Hours of measurements must not end in a path that cannot be written: its folder is checked first.
      const folder = o.json ? dirname(o.json) : undefined;
      if (folder && !(await Deno.stat(folder).catch(() => undefined))?.isDirectory) {
        throw new UsageError(`--json ${o.json}: the folder ${folder} does not exist`);
      }
      const run = await benchZoo(o);
      const tables = zooTables(run);
      console.log(tables);
      if (o.json) await Deno.writeTextFile(o.json, JSON.stringify({ ...run, tables }, null, 2) + "\n");
    } catch (e) {
      // onnxruntime that does not load, a --json path that cannot be written: one line, not a stack trace.
      console.error(`bench:zoo: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
      Deno.exit(e instanceof UsageError ? 2 : 1);
    }
  }
}
