/**
 * The ort engine against the ref engine: every op of real step graphs lowered alone (the zoo covers every
 * op), whole training runs (loss curves and determinism), refusals, and the run record's statements.
 *
 * Agreement rule for one op's output tensor, against the float64 evaluation of the same op on the same
 * inputs ("exact"): E(engine) = max |engine - exact|, S = max |exact|. ort passes when
 * E(ort) <= max(tol, 2 E(ref)), tol = 1e-6 S for fp32 outputs and one unit in the last place of the
 * output format at S for fp16/bf16 outputs. The 2 E(ref) term covers results that are rounding noise in
 * both engines (a bias gradient in front of batch norm is exactly zero in real arithmetic).
 */

import assert from "node:assert/strict";
import { type StepCase, stepCases } from "./support/step_cases.ts";
import { stepFeeds } from "./support/step_feeds.ts";
import { inFloat64, maxDiff } from "./support/conformance.ts";
import { type HostTensor, policyProblem } from "../kernels/engine.ts";
import { engineLimits } from "../kernels/registry.ts";
import { runGraph } from "../kernels/ref/mod.ts";
import { createEngine as createOrt } from "../kernels/ort/mod.ts";
import { fillMask, lowerGraph } from "../kernels/ort/model.ts";
import { NCHWC_DOMAIN, nchwcBlock } from "../kernels/ort/nchwc.ts";
import { loadOrt, loadOrtC, loadProto, type OrtTensor } from "../kernels/ort/runtime.ts";
import { Graph, sizeOf } from "../lib/graph/graph.ts";
import { modelByName } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { buildTrainGraph, type StepSpec } from "../lib/train/step.ts";
import type { OptimizerConfig } from "../lib/record/schema.ts";

const ADAM: OptimizerConfig = { ...PAPER_SGD, kind: "adam", lr: 0.001, weightDecay: 0.0005 };

const POLICIES = ["fp32", "fp16", "mixed", "bf16", "mixed-bf16"];

/** The step of a small MLP (13 hidden units, 28x28 inputs) in `policy`, with the paper's SGD. */
function smallMlp(policy: string): StepSpec {
  return {
    model: modelByName("mlp"),
    modelOptions: { classes: 10, hidden: [13] },
    policy: parsePolicy(policy),
    optimizer: PAPER_SGD,
    inputShape: [1, 28, 28],
  };
}

/** A test with a fresh ort engine, closed afterwards. */
function ortTest(name: string, body: (ort: Awaited<ReturnType<typeof createOrt>>) => Promise<void>) {
  Deno.test(name, async () => {
    const ort = await createOrt();
    try {
      await body(ort);
    } finally {
      ort.close?.();
    }
  });
}

ortTest(
  "ort: 16-bit casts round to nearest even at the edges (ties, subnormals, 65504, overflow, NaN, -0)",
  async (ort) => {
    const x = [
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      65504,
      65519,
      65520,
      3e-8,
      2 ** -25,
    ];
    const values = Float64Array.from([...x, ...x.map((v) => -v), 0, -0, Infinity, -Infinity, NaN, 1e39]);
    for (const f of ["fp16", "bf16"] as const) {
      const g = new Graph();
      const xs = g.leaf("input", "x", [values.length], { format: "fp32" });
      g.outputs.y = g.add("cast", [xs], {}, { format: f });
      const feeds = {
        x: { shape: [values.length], format: "fp32" as const, data: Float32Array.from(values) },
      };
      const want = runGraph(g, feeds).y.data, got = (await ort.compile(g).run(feeds)).y.data;
      for (let i = 0; i < values.length; i++) {
        assert.ok(Object.is(want[i], got[i]), `${f} cast of ${values[i]}: ref ${want[i]}, ort ${got[i]}`);
      }
    }
  },
);

ortTest(
  "ort: all_finite finds one Infinity or NaN in a tensor of any rank, and finds none in 3e38 or -0",
  async (ort) => {
    const shapes = [[], [5], [3, 7], [4, 3, 2, 2]];
    for (const bad of [undefined, Infinity, -Infinity, NaN]) {
      for (let at = 0; at < shapes.length; at++) {
        const g = new Graph(), feeds: Record<string, HostTensor> = {};
        const xs = shapes.map((shape, k) => {
          const data = Float32Array.from({ length: sizeOf(shape) }, (_, i) => [3e38, -0, -3e38, 1.5][i % 4]);
          if (k === at && bad !== undefined) data[data.length - 1] = bad;
          feeds[`x${k}`] = { shape, format: "fp32", data };
          return g.leaf("input", `x${k}`, shape, { format: "fp32" });
        });
        g.outputs.ok = g.add("all_finite", xs, {}, { format: "fp32" });
        const want = runGraph(g, feeds).ok.data[0], got = (await ort.compile(g).run(feeds)).ok.data[0];
        assert.equal(want, bad === undefined ? 1 : 0, "ref");
        assert.equal(got, want, `all_finite with ${bad} in input ${at}`);
      }
    }
  },
);

Deno.test("ort: refuses fp16 accumulation, stochastic rounding and fp64 before running anything", async () => {
  const ort = await createOrt();
  const m = modelByName("mlp");
  const refusals = [
    ["fp16,accumulate=fp16", /cannot accumulate in fp16/],
    ["bf16,rounding=stochastic", /cannot round stochastically/],
  ] as const;
  for (const [p, why] of refusals) {
    const spec: StepSpec = {
      model: m,
      modelOptions: { classes: 10, hidden: [13] },
      policy: parsePolicy(p),
      optimizer: PAPER_SGD,
      inputShape: [1, 28, 28],
    };
    assert.throws(() => ort.compile(buildTrainGraph(spec, 2).graph), why);
  }
  const g = new Graph();
  g.outputs.y = g.add("relu", [g.leaf("input", "x", [2], { format: "fp64" })], {}, { format: "fp64" });
  assert.throws(() => ort.compile(g), /formats fp64/);
  // reproduce learns the same limits without loading onnxruntime, and leaves such cells out.
  const limits = await engineLimits("ort");
  assert.match(
    policyProblem(limits!, parsePolicy("fp16,accumulate=fp16")) ?? "",
    /cannot accumulate in fp16/,
  );
  assert.match(policyProblem(limits!, parsePolicy("bf16,rounding=stochastic")) ?? "", /stochastically/);
  for (const p of POLICIES) assert.equal(policyProblem(limits!, parsePolicy(p)), undefined);
  assert.equal(await engineLimits("wasm"), undefined);
});

ortTest(
  "ort: state fed back (double-buffered) gives the bits of state passed as fresh copies",
  async (ort) => {
    const spec = smallMlp("mixed");
    const t = buildTrainGraph(spec, 8);
    const start = stepFeeds(t.graph, spec.policy, [1, 28, 28], 8, { seed: 4, lossScale: 1024 });
    const [a, b] = [ort.compile(t.graph), ort.compile(t.graph)];
    let fedBack = start, copied = start;
    const names = t.graph.state.map((s) => s.name);
    for (let step = 0; step < 4; step++) {
      const ra = await a.run(fedBack), rb = await b.run(copied);
      fedBack = { ...fedBack, ...Object.fromEntries(names.map((n) => [n, ra[n]])) };
      copied = {
        ...copied,
        ...Object.fromEntries(names.map((n) => [n, { ...rb[n], data: Float64Array.from(rb[n].data) }])),
      };
      for (const n of names) {
        assert.deepEqual(Array.from(ra[n].data), Array.from(rb[n].data), `${n} at step ${step}`);
      }
    }
  },
);

Deno.test("ort: the engine's 16-bit inputs are read as float32 without a Cast to 16 bits and back; an exported model rounds them", async () => {
  // HostTensor's contract: the values are exact in the format, so the round trip through 16 bits is the
  // identity, and it would keep a second float32 copy of every fp16 weight for the whole step.
  const spec = smallMlp("fp16");
  const t = buildTrainGraph(spec, 8), proto = await loadProto();
  for (const exactInputs of [true, false]) {
    const lowered = await lowerGraph(t.graph, { exactInputs });
    const m = proto.ModelProto.toObject(proto.ModelProto.decode(lowered.bytes)) as {
      graph: { node: { opType: string; input: string[]; output: string[] }[] };
    };
    const inputs = new Set(lowered.inputs.filter((p) => p.format === "fp16").map((p) => p.name));
    assert.ok(inputs.size >= 4, `fp16 inputs: ${[...inputs]}`);
    const casts = new Map(
      m.graph.node.filter((n) => n.opType === "Cast").map((n) => [n.output[0], n.input[0]]),
    );
    const roundTrips = [...casts].filter(([, from]) => inputs.has(casts.get(from) ?? ""));
    const weight = lowered.inputs.find((p) => p.format === "fp16" && p.shape.length === 2)!;
    const read = m.graph.node.some((n) => n.opType !== "Cast" && n.input.includes(weight.name));
    // An exported model (exactInputs absent) rounds whatever float32 its user feeds.
    assert.equal(
      roundTrips.length === 0,
      exactInputs,
      `exactInputs ${exactInputs}: ${roundTrips.length} round trips`,
    );
    assert.equal(read, exactInputs, `exactInputs ${exactInputs}: ops read ${weight.name} itself`);
  }
});

Deno.test("ort: the engine's C API sessions give onnxruntime-node's own bits, dropout masks included", async () => {
  // The engine calls onnxruntime's C API directly (kernels/ort/capi.ts); onnxruntime-node's JavaScript API
  // runs the same lowered model with the same session options here. Three steps, state fed back.
  const js = await loadOrt();
  const tensor = (data: Float32Array | Uint8Array, shape: readonly number[]) =>
    new js.Tensor(data instanceof Uint8Array ? "bool" : "float32", data, shape);
  for (const threads of [1, 2]) {
    const ort = await createOrt({ threads });
    try {
      const cases: StepCase[] = [["mlp", 16, PAPER_SGD, ["fp32", "bf16"]], ["vit8", 2, ADAM, ["mixed"]]];
      for (const c of stepCases(cases, "ort-capi-test")) {
        const model = await lowerGraph(c.train);
        const session = await js.InferenceSession.create(model.bytes, {
          intraOpNumThreads: threads,
          interOpNumThreads: 1,
          executionMode: "sequential",
          graphOptimizationLevel: "all",
          extra: { session: { use_deterministic_compute: "1" } },
        });
        const exe = ort.compile(c.train);
        let feeds = c.feeds;
        assert.ok(model.masks.length > 0 || !c.label.startsWith("vit8"), "vit8 has dropout masks");
        for (let step = 0; step < 3; step++) {
          feeds = { ...feeds, step_seed: { shape: [], format: "fp32", data: Float64Array.of(100 + step) } };
          const input: Record<string, OrtTensor> = {};
          for (const p of model.inputs) input[p.name] = tensor(Float32Array.from(feeds[p.key].data), p.shape);
          for (const m of model.masks) {
            const seed = feeds[c.train.nodes[m.seed].name!].data[0];
            input[m.name] = tensor(fillMask(m, seed, new Uint8Array(m.size)), [m.size]);
          }
          const want = await session.run(input);
          const got = await exe.run(feeds);
          for (const p of model.outputs) {
            assert.deepEqual(
              new Uint32Array(Float32Array.from(got[p.key].data).buffer),
              new Uint32Array((want[p.name].data as Float32Array).slice().buffer),
              `${c.label} ${p.key} at step ${step}, ${threads} thread(s)`,
            );
          }
          feeds = { ...feeds, ...Object.fromEntries(c.train.state.map((st) => [st.name, got[st.name]])) };
        }
        await session.release();
      }
    } finally {
      ort.close?.();
    }
  }
});

ortTest(
  "ort: a cast that is a graph output leaves the float32 view of its input usable by later ops",
  async (ort) => {
    const g = new Graph();
    const x = g.leaf("input", "x", [3], { format: "fp16" });
    g.outputs.y = g.add("cast", [x], {}, { format: "fp32" });
    g.outputs.z = g.add("relu", [x], {}, { format: "fp32" });
    const feeds = { x: { shape: [3], format: "fp16" as const, data: Float32Array.of(-1.5, 0.25, 3) } };
    const got = await ort.compile(g).run(feeds);
    assert.deepEqual(Array.from(got.y.data), [-1.5, 0.25, 3]);
    assert.deepEqual(Array.from(got.z.data), [0, 0.25, 3]);
  },
);

/** Adds fp32 input leaves to `g` whose values are f(0), f(1), ..., and their feeds to `feeds`. */
function fp32Inputs(g: Graph, feeds: Record<string, HostTensor>) {
  return (name: string, shape: number[], f: (i: number) => number) => {
    feeds[name] = {
      shape,
      format: "fp32",
      data: Float32Array.from({ length: sizeOf(shape) }, (_, i) => f(i)),
    };
    return g.leaf("input", name, shape, { format: "fp32" });
  };
}

ortTest(
  "ort: depthwise and dense convolutions on onnxruntime's NCHWc kernel agree with ref; an exported model keeps plain Conv",
  async (ort) => {
    const block = await nchwcBlock(await loadOrtC());
    // x86-64 builds of onnxruntime have the blocked kernels (8 channels with AVX2, 16 with AVX-512).
    if (Deno.build.arch === "x86_64") assert.ok(block === 8 || block === 16, `NCHWc block ${block}`);
    const c = 2 * Math.max(block, 8), g = new Graph(), feeds: Record<string, HostTensor> = {};
    const input = fp32Inputs(g, feeds),
      leaf = (name: string, shape: number[]) =>
        input(name, shape, (i) => Math.sin(i * 1.3) * 2 ** ((i % 7) - 3));
    const x = leaf("x", [2, c, 6, 6]), w = leaf("w", [c, 1, 3, 3]), dy = leaf("dy", [2, c, 6, 6]);
    const wd = leaf("wd", [c, c, 3, 3]);
    const fp32 = { format: "fp32" } as const, same = { stride: [1, 1], pads: [1, 1, 1, 1], groups: c };
    g.outputs.y = g.add("conv2d", [x, w], same, fp32);
    g.outputs.strided = g.add("conv2d", [x, w], { ...same, stride: [2, 2], pads: [0, 0, 1, 1] }, fp32);
    g.outputs.dx = g.add("conv2d_grad_input", [dy, w], { ...same, inShape: [2, c, 6, 6] }, fp32);
    // Strided depthwise input gradients (zeros spread into the output gradient): [input size, pads, output
    // size]; pads past the kernel make the spread gradient longer than the input (its tail is cut).
    for (const [h, pads, oh] of [[6, [0, 0, 1, 1], 3], [6, [1, 1, 1, 1], 3], [4, [0, 0, 3, 3], 3]] as const) {
      const key = `Strided${h}${pads[0]}${pads[2]}`, dyS = leaf(`dy${key}`, [2, c, oh, oh]);
      const at = { stride: [2, 2], pads: [...pads], groups: c, inShape: [2, c, h, h] };
      g.outputs[`dx${key}`] = g.add("conv2d_grad_input", [dyS, w], at, fp32);
    }
    const dense = { ...same, groups: 1 };
    g.outputs.yDense = g.add("conv2d", [x, wd], dense, fp32);
    g.outputs.dxDense = g.add("conv2d_grad_input", [dy, wd], { ...dense, inShape: [2, c, 6, 6] }, fp32);
    const want = runGraph(g, feeds), got = await ort.compile(g).run(feeds);
    for (const key of Object.keys(g.outputs)) {
      const a = Array.from(want[key].data), b = got[key].data;
      const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
      assert.ok(worst <= 2e-6 * scale, `${key}: ort differs from ref by ${worst} (scale ${scale})`);
    }
    const model = async (nchwc?: number) => new TextDecoder().decode((await lowerGraph(g, { nchwc })).bytes);
    const engines = await model(block);
    assert.equal(engines.includes(NCHWC_DOMAIN), block > 0, "the engine's lowering uses the NCHWc kernel");
    assert.equal(engines.includes("ConvTranspose"), block === 0, "no ConvTranspose on the NCHWc kernel");
    assert.equal((await model()).includes(NCHWC_DOMAIN), false, "an exported model is plain ONNX");
  },
);

ortTest(
  "ort: dense and depthwise weight gradients on onnxruntime's NCHWc kernel pass the conformance rule (strides 1 and 2, windows that leave rows unused); no im2col",
  async (ort) => {
    const b = await nchwcBlock(await loadOrtC()), n = Math.max(b, 8), c = 2 * n;
    const g = new Graph(), feeds: Record<string, HostTensor> = {};
    const input = fp32Inputs(g, feeds),
      leaf = (name: string, shape: number[]) =>
        input(name, shape, (i) => Math.sin(i * 0.37) * 2 ** ((i % 5) - 2));
    // [input size, output gradient size, stride, pads]: 8 with stride 2 and no pads leaves the last row
    // and column out of every window (the lowering cuts them off).
    const cases = [[6, 6, 1, [1, 1, 1, 1]], [8, 3, 2, [0, 0, 0, 0]], [7, 3, 2, [0, 0, 1, 1]]] as const;
    const fp32 = { format: "fp32" } as const, keys: string[] = [];
    for (const [h, oh, s, pads] of cases) {
      const x = leaf(`x${h}`, [n, c, h, h]), dy = leaf(`dy${h}`, [n, c, oh, oh]);
      for (const groups of [1, c]) {
        const key = `${groups === 1 ? "dense" : "depthwise"}${h}`;
        g.outputs[key] = g.add("conv2d_grad_weight", [x, dy], {
          stride: [s, s],
          pads: [...pads],
          groups,
          kernel: [3, 3],
        }, fp32);
        keys.push(key);
      }
    }
    const exact = inFloat64(g, feeds), want = runGraph(g, feeds), got = await ort.compile(g).run(feeds);
    for (const key of keys) {
      const e = exact[key].data, scale = Array.from(e).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const bound = Math.max(1e-6 * scale, 2 * maxDiff(want[key].data, e)), err = maxDiff(got[key].data, e);
      assert.ok(err <= bound, `${key}: ort's error ${err} exceeds ${bound} (scale ${scale})`);
    }
    if (b > 0) {
      const model = new TextDecoder().decode((await lowerGraph(g, { nchwc: b })).bytes);
      assert.ok(model.includes(NCHWC_DOMAIN) && !model.includes("Concat"), "no im2col on the NCHWc kernel");
    }
  },
);

ortTest(
  "ort: average-pool gradients of windows that tile the input are ref's bits (a broadcast); overlapping ones agree",
  async (ort) => {
    const g = new Graph(), feeds: Record<string, HostTensor> = {};
    const leaf = fp32Inputs(g, feeds), fp32 = { format: "fp32" } as const;
    // [input size, kernel, stride, pads, output size]: 2x2 windows of a 4x4 map, one 3x3 window (global), and
    // overlapping padded windows (ConvTranspose).
    const none = [0, 0, 0, 0], one = [1, 1, 1, 1];
    const cases = [[4, 2, 2, none, 2], [3, 3, 3, none, 1], [5, 3, 2, one, 3]] as const;
    for (const [h, k, s, pads, oh] of cases) {
      const dy = leaf(`dy${h}${k}`, [2, 8, oh, oh], (i) => Math.sin(i * 0.9) * 3);
      g.outputs[`dx${h}${k}`] = g.add("avgpool_grad", [dy], {
        kernel: [k, k],
        stride: [s, s],
        pads: [...pads],
        inShape: [2, 8, h, h],
      }, fp32);
    }
    const want = runGraph(g, feeds), got = await ort.compile(g).run(feeds);
    for (const key of ["dx42", "dx33"]) {
      assert.deepEqual(Array.from(got[key].data), Array.from(want[key].data), key);
    }
    const scale = Math.max(...Array.from(want.dx53.data, Math.abs));
    assert.ok(maxDiff(got.dx53.data, want.dx53.data) <= 1e-6 * scale, "overlapping windows (ConvTranspose)");
  },
);

ortTest("ort: gated updates keep their state where ok = 0 and give ref's bits where ok = 1", async (ort) => {
  for (const ok of [0, 1]) {
    const g = new Graph(), feeds: Record<string, HostTensor> = {};
    const leaf = fp32Inputs(g, feeds), shape = [4, 3, 2, 2], fp32 = { format: "fp32" } as const;
    const v = leaf("v", shape, (i) => Math.sin(i) / 8), grad = leaf("g", shape, (i) => Math.cos(i * 3));
    const w = leaf("w", shape, (i) => Math.sin(i * 0.5)), inv = leaf("inv", [], () => 0.25);
    const flag = leaf("ok", [], () => ok);
    const sgd = { lr: 0.1, momentum: 0.9, wd: 5e-4, gated: true };
    const v2 = g.add("sgd_velocity", [v, grad, w, inv, flag], sgd, fp32);
    g.outputs.v = v2;
    g.outputs.w = g.add("sgd_apply", [w, v2, inv, flag, inv], { ...sgd, stochastic: false, salt: 0 }, fp32);
    const want = runGraph(g, feeds), got = await ort.compile(g).run(feeds);
    for (const key of ["v", "w"]) {
      assert.deepEqual(Array.from(got[key].data), Array.from(want[key].data), `ok ${ok}: ${key}`);
      if (ok === 0) {
        assert.deepEqual(Array.from(got[key].data), Array.from(feeds[key].data), `ok 0 keeps ${key}`);
      }
    }
  }
});

ortTest(
  "ort: batch norm and its gradients on onnxruntime's BatchNormalization agree with ref under the tolerance rule, at mean 0 and 1000",
  async (ort) => {
    for (const mean of [0, 1000]) {
      const g = new Graph(), feeds: Record<string, HostTensor> = {};
      const leaf = fp32Inputs(g, feeds);
      const x = leaf("x", [4, 8, 3, 3], (i) => mean + Math.sin(i * 0.7) * 2);
      const gamma = leaf("gamma", [8], (i) => 0.5 + i / 8), beta = leaf("beta", [8], (i) => i - 4);
      const dy = leaf("dy", [4, 8, 3, 3], (i) => Math.cos(i * 1.9));
      const fp32 = { format: "fp32" } as const, eps = { eps: 1e-3 };
      g.outputs.y = g.add("batchnorm", [x, gamma, beta], eps, fp32);
      g.outputs.dx = g.add("batchnorm_grad_x", [x, gamma, dy], eps, fp32);
      g.outputs.affine = g.add("batchnorm_grad_affine", [x, dy], eps, fp32);
      // The conformance suite's rule: within 1e-6 of the scale of the exact (float64) result, or within
      // twice ref's own error (a mean of 1000 leaves x - mean only a few bits in float32).
      const exact = inFloat64(g, feeds), want = runGraph(g, feeds), got = await ort.compile(g).run(feeds);
      for (const key of ["y", "dx", "affine"]) {
        const e = exact[key].data, scale = Array.from(e).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const bound = Math.max(1e-6 * scale, 2 * maxDiff(want[key].data, e)), err = maxDiff(got[key].data, e);
        assert.ok(err <= bound, `mean ${mean}, ${key}: ort's error ${err} exceeds ${bound} (scale ${scale})`);
      }
    }
  },
);
