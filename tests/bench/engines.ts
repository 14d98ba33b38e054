/**
 * Engine benchmark: one run on one machine, every figure side by side, medians of repeats.
 *
 * 1. matmul GFLOP/s: the wasm gemm per storage format and thread count (and the --fast build), the ref
 *    engine, and onnxruntime-node's fp32 MatMul as the reference point (skipped with a reason without
 *    --allow-ffi); and the ceiling of any exact wasm gemm on one core (tests/bench/simd_ceiling.ts).
 * 2. Training samples/s: MLP 784-256-10 and the small CNN, batch 128, per policy, on ref, wasm and ort
 *    (fp32 also on wasm-fast; ort skipped with a reason without --allow-ffi). Each step is the graph `train`
 *    runs, update checks included; the wasm MLP is also timed without them.
 * 3. The same MLP trained by PyTorch (tests/bench/torch_peer.py with the Python of tests/bench/peer.ts: the
 *    venv of tests/bench/setup_peer.sh, else Debian's /usr/bin/python3), when installed, in
 *    rounds interleaved with our fp32 MLP on wasm and ort, without the update checks (PyTorch's loop has
 *    none: the same work) and with them; the ratios are taken per round.
 * Then the target ratios. Run: deno task bench:engines [--quick].
 *
 * @module
 */

import { stepFeeds } from "../support/step_feeds.ts";
import type { Engine } from "../../kernels/engine.ts";
import { loadEngine } from "../../kernels/registry.ts";
import { modelByName } from "../../lib/model/zoo.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { PAPER_SGD } from "../../lib/train/optimizer.ts";
import { buildTrainGraph, UPDATE_CHECKS } from "../../lib/train/step.ts";
import { ortAvailable, ortMatmulGflops } from "./ort_matmul.ts";
import { DEBIAN_PYTHON, peerPython, peerVenvPython } from "./peer.ts";
import { exactSimdCeilingGflops } from "./simd_ceiling.ts";
import { gemmGflops as gflops, markdownTable, matmulRunner, median, timeMedian, timeOnce } from "./timing.ts";

const quick = Deno.args.includes("--quick");
const REPEATS = quick ? 3 : 5;
const threadCounts = [1, navigator.hardwareConcurrency ?? 1].filter((t, i, a) => a.indexOf(t) === i);

/** Median seconds per call of `f` over REPEATS timings of at least `minMs` each (after one warm-up call). */
const time = (f: () => Promise<unknown>, minMs: number) => timeMedian(f, minMs, REPEATS);

function table(title: string, head: string[], rows: (string | number)[][]) {
  console.log(`\n${title}\n${markdownTable(head, rows)}`);
}

const engines = new Map<string, Engine>();
async function engine(name: string, threads = 1): Promise<Engine> {
  const key = `${name}/${threads}`;
  if (!engines.has(key)) engines.set(key, await loadEngine(name, { threads }));
  return engines.get(key)!;
}

// ---------------------------------------------------------------- matmul

const SIZES = [[128, 784, 256], [512, 512, 512]];
const mmRows: (string | number)[][] = [];
const mm: Record<string, number> = {};
const ortReason = await ortAvailable();
for (const dims of SIZES) {
  for (const threads of threadCounts) {
    for (const format of ["fp32", "fp16", "bf16"] as const) {
      const g = gflops(dims, await time(matmulRunner(await engine("wasm", threads), dims, format), 200));
      mm[`wasm ${format} ${dims} ${threads}`] = g;
      mmRows.push([`${dims.join("x")}`, `wasm ${format}`, threads, g.toFixed(1)]);
    }
    const fastG = gflops(
      dims,
      await time(matmulRunner(await engine("wasm-fast", threads), dims, "fp32"), 200),
    );
    mmRows.push([`${dims.join("x")}`, "wasm-fast fp32 (FMA, not exact)", threads, fastG.toFixed(1)]);
    if (!ortReason) {
      const g = (await ortMatmulGflops(dims[0], dims[1], dims[2], threads, { repeats: REPEATS })).gflops;
      mm[`ort fp32 ${dims} ${threads}`] = g;
      mmRows.push([`${dims.join("x")}`, "onnxruntime fp32", threads, g.toFixed(1)]);
    }
  }
  const g = gflops(dims, await time(matmulRunner(await engine("ref"), dims, "fp32"), 200));
  mmRows.push([`${dims.join("x")}`, "ref fp32", 1, g.toFixed(2)]);
}
// What no exact wasm gemm can beat on one core of this machine: four-wide multiplies and adds, no FMA.
const ceiling = await exactSimdCeilingGflops(REPEATS);
mmRows.push(["-", "exact wasm SIMD ceiling (mul + add in registers, no memory)", 1, ceiling.toFixed(1)]);
table("matmul (GFLOP/s, median)", ["m x k x n", "engine", "threads", "GFLOP/s"], mmRows);
if (ortReason) console.log(`onnxruntime: skipped (${ortReason})`);

// ---------------------------------------------------------------- training

const BATCH = 128;
/**
 * One training step of `model` on `e`, as `train` runs it. `bare` leaves out the per-step update checks
 * (lost updates, finite parameters): the work of PyTorch's loop, for the comparisons with it.
 */
function trainRunner(e: Engine, model: string, precision: string, bare = false) {
  const policy = parsePolicy(precision);
  const t = buildTrainGraph({
    model: modelByName(model),
    modelOptions: { classes: 10, hidden: [256] },
    policy,
    optimizer: PAPER_SGD,
    inputShape: [1, 28, 28],
  }, BATCH);
  if (bare) { for (const name of UPDATE_CHECKS) delete t.graph.outputs[name]; }
  let feeds = stepFeeds(t.graph, policy, [1, 28, 28], BATCH);
  const exe = e.compile(t.graph);
  // Each step feeds the state the previous one returned, as training does.
  return async () => (feeds = { ...feeds, ...await exe.run(feeds) });
}

const POLICIES = ["fp32", "fp16", "mixed", "bf16"];
const trainRows: (string | number)[][] = [];
const sps: Record<string, number> = {};
const allThreads = threadCounts.at(-1)!;
const SETUPS: [string, number][] = [["ref", 1], ["wasm", 1], ["wasm", allThreads], ["wasm-fast", allThreads]];
if (ortReason) console.log(`\nort engine: skipped (${ortReason})`);
else for (const t of threadCounts) SETUPS.push(["ort", t]);
for (const model of ["mlp", "cnn"]) {
  // Every configuration of a model is timed once per round, round after round, so drift in the machine's
  // speed hits them all alike and the ratios between them stay fair.
  const runs: { key: string; row: (string | number)[]; run: () => Promise<unknown>; per: number[] }[] = [];
  for (const precision of POLICIES) {
    for (const [name, threads] of SETUPS) {
      if (name === "wasm" && threads === 1 && allThreads === 1) continue;
      if (name === "ort" && precision === "bf16" && model === "cnn" && quick) continue;
      if (name === "wasm-fast" && precision !== "fp32") continue;
      if (name === "ref" && model === "cnn" && quick) continue;
      const run = trainRunner(await engine(name, threads), model, precision);
      await run();
      runs.push({
        key: `${model} ${precision} ${name} ${threads}`,
        row: [model, precision, name, threads],
        run,
        per: [],
      });
      if (model === "mlp" && name === "wasm" && threads === allThreads && precision !== "bf16") {
        // The fp16 and mixed targets are also shown for the step without the update checks.
        const bare = trainRunner(await engine(name, threads), model, precision, true);
        await bare();
        runs.push({
          key: `${model} ${precision} ${name}-bare ${threads}`,
          row: [model, precision, `${name}, no update checks`, threads],
          run: bare,
          per: [],
        });
      }
    }
  }
  const minMs = model === "cnn" ? 1000 : 300;
  for (let r = 0; r < REPEATS; r++) for (const x of runs) x.per.push(await timeOnce(x.run, minMs));
  for (const x of runs) {
    const s = median(x.per);
    sps[x.key] = BATCH / s;
    trainRows.push([...x.row, Math.round(BATCH / s), (s * 1000).toFixed(1)]);
  }
}
table(
  `training step, batch ${BATCH} (MLP 784-256-10; CNN = the LeNet-like model), median of rounds`,
  ["model", "policy", "engine", "threads", "samples/s", "ms/step"],
  trainRows,
);

// ---------------------------------------------------------------- PyTorch peer

/** One PyTorch measurement per thread count (one repeat); undefined with a printed reason when unavailable. */
async function torchRound(): Promise<{ version: string; sps: Record<number, number> } | undefined> {
  const python = await peerPython();
  if (!python) {
    return console.log(`\nPyTorch: skipped (no ${peerVenvPython()} and no ${DEBIAN_PYTHON})`), undefined;
  }
  try {
    const out = await new Deno.Command(python, {
      args: [
        new URL("./torch_peer.py", import.meta.url).pathname,
        ...["--threads", threadCounts.join(","), "--repeats", "1"],
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    const res = JSON.parse(new TextDecoder().decode(out.stdout));
    if (!res.available) return console.log(`\nPyTorch: skipped (${res.reason})`), undefined;
    const sps: Record<number, number> = {};
    for (const r of res.results as { threads: number; samples_per_s: number }[]) {
      sps[r.threads] = r.samples_per_s;
    }
    return { version: python === DEBIAN_PYTHON ? `${res.torch} (${python})` : res.torch, sps };
  } catch (e) {
    return console.log(`\nPyTorch: skipped (${e instanceof Error ? e.message : e})`), undefined;
  }
}

// PyTorch runs in its own process, so it cannot join the rounds above. Instead each round times our fp32 MLP
// setups right after PyTorch, and the ratios are taken per round: drift hits both sides alike. Our step is
// timed as PyTorch's loop runs it (no update checks: the same work) and as `train` runs it.
const peerSetups = SETUPS.filter(([n]) => n === "wasm" || n === "ort").flatMap(([n, t]) =>
  [false, true].map((checks) => [n, t, checks] as const)
);
const peerRuns = await Promise.all(
  peerSetups.map(async ([n, t, checks]) => trainRunner(await engine(n, t), "mlp", "fp32", !checks)),
);
const peerKey = (n: string, t: number, checks: boolean) => `${n}${checks ? "+checks" : ""} ${t}`;
const peer: Record<string, number[]> = {};
let torchVersion: string | undefined;
for (let r = 0; r < REPEATS; r++) {
  const tr = await torchRound();
  if (!tr) break;
  torchVersion = tr.version;
  for (const t of threadCounts) (peer[`PyTorch ${t}`] ??= []).push(tr.sps[t]);
  for (const [k, [n, t, checks]] of peerSetups.entries()) {
    (peer[peerKey(n, t, checks)] ??= []).push(BATCH / await timeOnce(peerRuns[k], 300));
  }
}
const peerRatio: Record<string, string> = {};
if (torchVersion) {
  const rows = Object.entries(peer).map(([k, v]) => {
    const [n, t] = k.split(" ");
    const label = n === "PyTorch"
      ? `PyTorch ${torchVersion}`
      : n.endsWith("+checks")
      ? `${n.slice(0, -7)}, with update checks`
      : n;
    return ["mlp", "fp32", label, t, Math.round(median(v))];
  });
  table(`MLP fp32 against PyTorch, interleaved rounds (samples/s, median of ${REPEATS})`, [
    "model",
    "policy",
    "engine",
    "threads",
    "samples/s",
  ], rows);
  for (const name of ["wasm", "ort", "wasm+checks", "ort+checks"]) {
    const keys = Object.keys(peer).filter((k) => k.startsWith(`${name} `));
    if (!keys.length) continue;
    const perRound = peer[keys[0]].map((_, r) =>
      Math.max(...keys.map((k) => peer[k][r])) / Math.max(...threadCounts.map((t) => peer[`PyTorch ${t}`][r]))
    );
    peerRatio[name] = `${median(perRound).toFixed(2)} (rounds ${
      perRound.map((x) => x.toFixed(2)).join(", ")
    })`;
  }
}

// ---------------------------------------------------------------- targets

const ratioRows: (string | number)[][] = [];
for (const threads of threadCounts) {
  const w = mm[`wasm fp32 ${SIZES[1]} ${threads}`], o = mm[`ort fp32 ${SIZES[1]} ${threads}`];
  if (o) {
    ratioRows.push([
      `wasm / onnxruntime fp32 matmul 512^3, ${threads} thread(s)`,
      ">= 0.5",
      (w / o).toFixed(2),
    ]);
    ratioRows.push([
      `  at most (exact SIMD ceiling x ${threads} / onnxruntime)`,
      ">= 0.5",
      (ceiling * threads / o).toFixed(2),
    ]);
  }
}
for (const model of ["mlp", "cnn"]) {
  for (const p of ["fp16", "mixed"]) {
    const f = sps[`${model} fp32 wasm ${allThreads}`] / sps[`${model} ${p} wasm ${allThreads}`];
    ratioRows.push([`${model} ${p} / fp32 step time on wasm`, "<= 1.25", f.toFixed(2)]);
    const bare = sps[`${model} fp32 wasm-bare ${allThreads}`] / sps[`${model} ${p} wasm-bare ${allThreads}`];
    if (bare) ratioRows.push([`  the same without the update checks`, "-", bare.toFixed(2)]);
  }
}
if (torchVersion) {
  for (const [name, target] of [["wasm", ">= 0.4"], ["ort", ">= 1.2"]]) {
    if (!peerRatio[name]) continue;
    ratioRows.push([`${name} fp32 MLP / PyTorch (best settings each, per round)`, target, peerRatio[name]]);
    ratioRows.push([
      `  with the update checks, which PyTorch's loop does not do`,
      "-",
      peerRatio[`${name}+checks`],
    ]);
  }
}
table("targets (ratios from this run)", ["ratio", "target", "measured"], ratioRows);
for (const e of engines.values()) e.close?.();
