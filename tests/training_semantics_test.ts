import assert from "node:assert/strict";
import { synthetic } from "../datasets/synthetic.ts";
import type { HostTensor } from "../kernels/engine.ts";
import { runGraph } from "../kernels/ref/mod.ts";
import { type FormatName, rounder } from "../lib/formats/format.ts";
import { type Attr, Graph } from "../lib/graph/graph.ts";
import { MODELS } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { Rng } from "../lib/random.ts";
import { initialState } from "../lib/train/init.ts";
import { LossScaler } from "../lib/train/loss_scaler.ts";
import { adamAlpha, PAPER_SGD } from "../lib/train/optimizer.ts";
import { buildTrainGraph } from "../lib/train/step.ts";
import { train, type TrainResult } from "../lib/train/train.ts";
import type { OptimizerConfig } from "../lib/record/schema.ts";

const tensor = (format: FormatName, shape: number[], data: ArrayLike<number>): HostTensor => ({
  shape,
  format,
  data: Float64Array.from(data),
});
const scalar = (v: number, format: FormatName = "fp32") => tensor(format, [], [v]);

const SGD: OptimizerConfig = PAPER_SGD;

// ---------------------------------------------------------------------------------------------------------
// Lost updates: standalone fp16 vs an fp32 master weight.

/** A graph with one plain-SGD update `w' = w - lr * g * inv` of a [n] parameter stored in `fmt`. */
function sgdGraph(fmt: FormatName, n: number, lr: number, stochastic = false): Graph {
  const g = new Graph();
  const w = g.leaf("param", "w", [n], { format: fmt });
  const grad = g.leaf("input", "g", [n], { format: fmt });
  const inv = g.leaf("input", "inv", [], { format: "fp32" });
  const ok = g.leaf("input", "ok", [], { format: "fp32" });
  const seed = g.leaf("input", "seed", [], { format: "fp32" });
  const attrs: Record<string, Attr> = { lr, momentum: 0, wd: 0, stochastic, salt: 0, gated: true };
  const next = g.add("sgd_apply", [w, grad, inv, ok, seed], attrs, { format: fmt, role: "update" });
  g.state.push({ name: "w", current: w, next });
  return g;
}

Deno.test("an update below half an fp16 ulp is lost in fp16 but kept by an fp32 master weight", () => {
  const lr = 2 ** -12, steps = 100; // lr * |g| = 2^-12, a quarter of the fp16 ulp 2^-10 at 1.0
  const run = (fmt: FormatName) => {
    const graph = sgdGraph(fmt, 3, lr);
    let w = tensor(fmt, [3], [1, 1, 1]);
    for (let s = 0; s < steps; s++) {
      const out = runGraph(graph, {
        w,
        g: tensor(fmt, [3], [-1, -1, -1]),
        inv: scalar(1),
        ok: scalar(1),
        seed: scalar(s),
      });
      w = out.w;
    }
    return [...w.data];
  };
  assert.deepEqual(run("fp16"), [1, 1, 1], "fp16: every step rounds back to 1");
  assert.deepEqual(run("bf16"), [1, 1, 1], "bf16: also lost (ulp 2^-7)");
  const fp32 = run("fp32");
  assert.deepEqual(fp32, [1 + steps * 2 ** -12, 1 + steps * 2 ** -12, 1 + steps * 2 ** -12]);
  // The mixed-precision master weight ends where exact arithmetic would, and its fp16 copy has moved too.
  assert.equal(Math.f16round(fp32[0]), Math.f16round(1 + 100 / 4096));
  assert.notEqual(Math.f16round(fp32[0]), 1);
});

Deno.test("the mixed train graph updates fp32 master weights, the fp16 graph fp16 weights", () => {
  const spec = (policy: string) => ({
    model: MODELS.mlp,
    modelOptions: { classes: 10, hidden: [16] },
    policy: parsePolicy(policy),
    optimizer: SGD,
    inputShape: [1, 28, 28],
  });
  for (const [policy, fmt] of [["mixed", "fp32"], ["fp16", "fp16"]] as const) {
    const g = buildTrainGraph(spec(policy), 2).graph;
    const applies = g.nodes.filter((n) => n.op === "sgd_apply");
    assert.equal(applies.length, g.leaves("param").length);
    for (const n of applies) assert.equal(n.format, fmt, `${policy} sgd_apply`);
  }
});

Deno.test("stochastic rounding keeps sub-ulp fp16 updates on average", () => {
  const n = 4096, lr = 2 ** -12;
  const graph = sgdGraph("fp16", n, lr, true);
  const feeds = (seed: number) => ({
    w: tensor("fp16", [n], new Float64Array(n).fill(1)),
    g: tensor("fp16", [n], new Float64Array(n).fill(-1)),
    inv: scalar(1),
    ok: scalar(1),
    seed: scalar(seed),
  });
  const out = runGraph(graph, feeds(12345)).w.data;
  let up = 0;
  for (const v of out) {
    assert.ok(v === 1 || v === 1 + 2 ** -10, `neighbour ${v}`);
    if (v !== 1) up++;
  }
  // Each element rounds up with probability 1/4 (sd of the count ~ 28).
  assert.ok(Math.abs(up - n / 4) < 6 * Math.sqrt(n * 0.25 * 0.75), `rounded up ${up} of ${n}`);
  // Deterministic for a seed, different for another.
  assert.deepEqual(runGraph(graph, feeds(12345)).w.data, out);
  assert.notDeepEqual(runGraph(graph, feeds(54321)).w.data, out);
});

Deno.test("a gated update with ok = 0 leaves the weight unchanged", () => {
  const graph = sgdGraph("fp32", 2, 0.5);
  const out = runGraph(graph, {
    w: tensor("fp32", [2], [0.25, -3]),
    g: tensor("fp32", [2], [1, 1]),
    inv: scalar(1),
    ok: scalar(0),
    seed: scalar(0),
  });
  assert.deepEqual([...out.w.data], [0.25, -3]);
});

// ---------------------------------------------------------------------------------------------------------
// LossScaler.

Deno.test("LossScaler: dynamic scaling", () => {
  const s = new LossScaler(parsePolicy("mixed").lossScale);
  assert.equal(s.scale, 32768);
  assert.equal(s.gates, true);
  assert.equal(s.skipped, 0);
  assert.equal(s.update(false), false, "a non-finite step is skipped");
  assert.equal(s.scale, 16384);
  assert.equal(s.skipped, 1);
  for (let i = 0; i < 1999; i++) assert.equal(s.update(true), true);
  assert.equal(s.scale, 16384, "no growth after 1999 finite steps");
  assert.equal(s.update(true), true);
  assert.equal(s.scale, 32768, "doubles on the 2000th consecutive finite step");
  // A skip resets the counter.
  for (let i = 0; i < 1999; i++) s.update(true);
  assert.equal(s.update(false), false);
  assert.equal(s.scale, 16384);
  for (let i = 0; i < 1999; i++) s.update(true);
  assert.equal(s.scale, 16384, "the 1999 steps before the skip do not count");
  s.update(true);
  assert.equal(s.scale, 32768);
  // Never below 1.
  for (let i = 0; i < 40; i++) assert.equal(s.update(false), false);
  assert.equal(s.scale, 1);
  assert.equal(s.skipped, 42);
  // And grows again from 1.
  for (let i = 0; i < 2000; i++) s.update(true);
  assert.equal(s.scale, 2);
  for (let i = 0; i < 4000; i++) s.update(true);
  assert.equal(s.scale, 8);
});

Deno.test("LossScaler: static and none never skip", () => {
  const st = new LossScaler(parsePolicy("fp16,loss-scale=static:128").lossScale);
  assert.equal(st.scale, 128);
  assert.equal(st.gates, false);
  const none = new LossScaler(parsePolicy("fp16").lossScale);
  assert.equal(none.scale, 1);
  assert.equal(none.gates, false);
  for (const s of [st, none]) {
    const before = s.scale;
    for (let i = 0; i < 10; i++) assert.equal(s.update(false), true);
    for (let i = 0; i < 5000; i++) assert.equal(s.update(true), true);
    assert.equal(s.scale, before);
    assert.equal(s.skipped, 0);
  }
});

// ---------------------------------------------------------------------------------------------------------
// A skipped step inside a real mixed-precision train graph.

Deno.test("mixed: an overflowing loss scale gives finite = 0 and leaves every parameter and slot unchanged", () => {
  const tg = buildTrainGraph({
    model: MODELS.mlp,
    modelOptions: { classes: 10, hidden: [16] },
    policy: parsePolicy("mixed"),
    optimizer: SGD,
    inputShape: [1, 28, 28],
  }, 4);
  const g = tg.graph;
  tg.grads.forEach((id, i) => (g.outputs[`grad_${i}`] = id));
  const rng = new Rng(5, "training_semantics/x");
  const x = tensor(
    "fp16",
    [4, 1, 28, 28],
    Array.from({ length: 4 * 784 }, () => Math.f16round(2 * rng.uniform() - 1)),
  );
  const labels = tensor("fp32", [4], [0, 3, 7, 9]);
  const feeds = (state: Record<string, HostTensor>, scale: number) => ({
    ...state,
    x,
    labels,
    loss_scale: scalar(scale),
    inv_loss_scale: scalar(1 / scale),
    step_seed: scalar(1),
  });
  const pick = (out: Record<string, HostTensor>, names: string[]) =>
    Object.fromEntries(names.map((n) => [n, out[n]]));
  const names = g.state.map((s) => s.name);
  assert.equal(names.length, 2 * g.leaves("param").length, "every parameter and its momentum slot");

  // One ordinary step so the momentum slots are non-zero.
  const s0 = initialState(g, 3);
  const out1 = runGraph(g, feeds(s0, 32768));
  assert.equal(out1.finite.data[0], 1);
  const s1 = pick(out1, names);
  for (const n of names) {
    assert.notDeepEqual([...s1[n].data], [...s0[n].data], `${n} moved in the good step`);
    assert.ok(s1[n].data.every((v) => Number.isFinite(v)), `${n} finite`);
  }

  // 2^40 overflows the fp16 gradients.
  const out2 = runGraph(g, feeds(s1, 2 ** 40));
  assert.equal(out2.finite.data[0], 0);
  const nonFinite = tg.grads.some((_, i) => out2[`grad_${i}`].data.some((v) => !Number.isFinite(v)));
  assert.ok(nonFinite, "some fp32 master gradient is really non-finite");
  for (const n of names) {
    const a = s1[n].data, b = out2[n].data;
    assert.equal(out2[n].format, s1[n].format);
    assert.equal(b.length, a.length);
    for (let i = 0; i < a.length; i++) {
      if (!Object.is(a[i], b[i])) assert.fail(`${n}[${i}] changed in a skipped step: ${a[i]} -> ${b[i]}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------------
// Short training runs.

const data = synthetic({ train: 600, test: 200 });

const runs = new Map<string, Promise<TrainResult>>();

/** Trains (once per policy and seed; later calls with the same key share the result). */
function run(policy: string, seed: number, fresh = false): Promise<TrainResult> {
  const key = `${policy}/${seed}`;
  if (fresh || !runs.has(key)) runs.set(key, trainOnce(policy, seed));
  return runs.get(key)!;
}

async function trainOnce(policy: string, seed: number): Promise<TrainResult> {
  const { createEngine } = await import("../kernels/ref/mod.ts");
  return train({
    model: MODELS.mlp,
    modelOptions: { classes: 10, hidden: [32] },
    policy: parsePolicy(policy),
    optimizer: { ...SGD, lr: 0.05 },
    batch: 50,
    epochs: 2,
    seed,
    data,
    engine: createEngine(),
  });
}

for (const policy of ["fp32", "fp16", "mixed"]) {
  Deno.test(`train(): ${policy} learns the synthetic task and is deterministic per seed`, async () => {
    const a = await run(policy, 1);
    assert.equal(a.divergence, null);
    assert.equal(a.epochs.length, 2);
    for (const e of a.epochs) assert.ok(Number.isFinite(e.trainLoss) && Number.isFinite(e.testLoss));
    const acc = a.epochs.at(-1)!.testAccuracy;
    assert.ok(acc > 0.3, `${policy} test accuracy ${acc}`);
    assert.equal(a.parameterCount, 784 * 32 + 32 + 32 * 10 + 10);
    assert.match(a.weightHash, /^[0-9a-f]{16,}$/);
    const fmt = policy === "fp16" ? "fp16" : "fp32";
    for (const [name, t] of Object.entries(a.state)) assert.equal(t.format, fmt, name);
    if (policy === "mixed") {
      assert.equal(a.epochs.at(-1)!.lossScale, 32768);
    } else {
      assert.equal(a.epochs.at(-1)!.lossScale, 1);
    }
    if (policy === "fp32") {
      const b = await run(policy, 1, true);
      assert.notEqual(b, a, "a second, independent run");
      assert.equal(b.weightHash, a.weightHash, "same seed, same weights");
      assert.deepEqual(b.epochs.map((e) => e.testAccuracy), a.epochs.map((e) => e.testAccuracy));
      const c = await run(policy, 2);
      assert.notEqual(c.weightHash, a.weightHash, "another seed, other weights");
    } else {
      const b = await run(policy, 1, true);
      assert.equal(b.weightHash, a.weightHash, "same seed, same weights");
    }
  });
}

Deno.test("train(): fp32, fp16 and mixed give different weights from the same seed", async () => {
  const hashes = await Promise.all(["fp32", "fp16", "mixed"].map(async (p) => (await run(p, 1)).weightHash));
  assert.equal(new Set(hashes).size, 3);
});

// ---------------------------------------------------------------------------------------------------------
// fp16 Adam epsilon.

/** One Adam step on a [n] parameter, all in `fmt`, from zero moments. */
function adamStep(fmt: FormatName, eps: number, w0: number[], grad: number[]): number[] {
  const n = w0.length, o: OptimizerConfig = { ...SGD, kind: "adam", lr: 0.001, epsilon: eps };
  const g = new Graph();
  const w = g.leaf("param", "w", [n], { format: fmt });
  const m = g.leaf("state", "m", [n], { format: fmt });
  const v = g.leaf("state", "v", [n], { format: fmt });
  const gr = g.leaf("input", "g", [n], { format: fmt });
  const inv = g.leaf("input", "inv", [], { format: "fp32" });
  const ok = g.leaf("input", "ok", [], { format: "fp32" });
  const alpha = g.leaf("input", "alpha", [], { format: "fp32" });
  const seed = g.leaf("input", "seed", [], { format: "fp32" });
  const common = { wd: 0, gated: false };
  const m2 = g.add("adam_moment", [m, gr, w, inv, ok], { ...common, beta: o.beta1, power: 1 }, {
    format: fmt,
  });
  const v2 = g.add("adam_moment", [v, gr, w, inv, ok], { ...common, beta: o.beta2, power: 2 }, {
    format: fmt,
  });
  const w2 = g.add("adam_apply", [w, m2, v2, alpha, ok, seed], {
    eps: o.epsilon,
    stochastic: false,
    salt: 0,
    gated: false,
  }, {
    format: fmt,
  });
  g.state.push({ name: "w", current: w, next: w2 });
  const r = rounder(fmt);
  const out = runGraph(g, {
    w: tensor(fmt, [n], w0.map(r)),
    m: tensor(fmt, [n], new Float64Array(n)),
    v: tensor(fmt, [n], new Float64Array(n)),
    g: tensor(fmt, [n], grad.map(r)),
    inv: scalar(1),
    ok: scalar(1),
    alpha: scalar(Math.fround(adamAlpha(o, 1))),
    seed: scalar(0),
  });
  return [...out.w.data];
}

Deno.test("fp16 Adam: epsilon 1e-7 (an fp16 subnormal) blows up tiny-gradient steps, 1e-3 does not", () => {
  // g = 2^-10: v = 0.001 g^2 ~ 9.3e-10 underflows to 0 in fp16, so the denominator is eps alone.
  const g = 2 ** -10, w0 = 0.5;
  const fp32 = adamStep("fp32", 1e-7, [w0], [g])[0];
  const small = adamStep("fp16", 1e-7, [w0], [g])[0];
  const large = adamStep("fp16", 1e-3, [w0], [g])[0];
  // fp32: the Adam step is about lr (1e-3), since sqrt(v) >> eps.
  assert.ok(Math.abs(w0 - fp32 - 1e-3) < 1e-4, `fp32 step ${w0 - fp32}`);
  // fp16 with eps 1e-7: alpha*m ~ 3.1e-8 -> 2^-24 (subnormal), divided by eps = fp16(1e-7) = 2^-23 -> 0.5.
  assert.equal(Math.f16round(1e-7), 2 ** -23);
  assert.equal(small, 0, `fp16 eps 1e-7 step: w = ${small}`);
  // fp16 with eps 1e-3: 2^-24 / 1e-3 ~ 6e-5, below half an ulp of 0.5 (2^-12), so the weight stays.
  assert.equal(large, 0.5, `fp16 eps 1e-3: w = ${large}`);
});
