/**
 * The wasm engine against the ref engine, bit for bit: every intermediate value of real step graphs (the
 * zoo's layers cover every op) in every named policy, hand-built ops on odd shapes and edge values,
 * whole training runs (weight hashes), thread counts 1, 2 and 4, and the --fast build's honesty.
 */

import assert from "node:assert/strict";
import type { Engine, HostTensor } from "../kernels/engine.ts";
import { createEngine as createRef } from "../kernels/ref/mod.ts";
import { createEngine as createWasm, stepProfile } from "../kernels/wasm/mod.ts";
import { type FormatName, rounder } from "../lib/formats/format.ts";
import { type Attr, Graph } from "../lib/graph/graph.ts";
import { modelByName } from "../lib/model/zoo.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { Rng } from "../lib/random.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { buildTrainGraph } from "../lib/train/step.ts";
import { stepFeeds } from "./support/step_feeds.ts";

const ref = createRef();

const covered = new Set<string>();

/** One op on leaves fed with `inputs`; returns [ref output, wasm output]. */
async function both(
  wasm: Engine,
  op: string,
  inputs: HostTensor[],
  attrs: Record<string, Attr>,
  format: FormatName,
  accumulate: FormatName = "fp32",
) {
  const g = new Graph();
  g.accumulate = accumulate;
  const feeds: Record<string, HostTensor> = {};
  const ids = inputs.map((
    t,
    i,
  ) => ((feeds[`in${i}`] = t), g.leaf("input", `in${i}`, t.shape, { format: t.format })));
  g.outputs.y = g.add(op, ids, attrs, { format });
  covered.add(op);
  return [(await ref.compile(g).run(feeds)).y.data, (await wasm.compile(g).run(feeds)).y.data];
}

/** Random values in a format, with edge values mixed in: +-0, subnormals, the largest finite, Infinity, NaN. */
function values(rng: Rng, n: number, f: FormatName, edges: boolean): Float64Array {
  const r = rounder(f);
  const special = [0, -0, 2 ** -24, -(2 ** -20), 65504, -65504, 1e-40, 3e38, Infinity, -Infinity, NaN];
  return Float64Array.from({ length: n }, () => {
    if (edges && rng.uniform() < 0.15) return r(special[rng.below(special.length)]);
    return r((rng.uniform() * 2 - 1) * 2 ** (rng.below(12) - 6));
  });
}

function assertBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  assert.equal(b.length, a.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i]) && !(a[i] !== a[i] && b[i] !== b[i])) {
      assert.fail(`${what}: element ${i}: ref ${a[i]}, wasm ${b[i]}`);
    }
  }
}

Deno.test("wasm: ops on odd shapes and edge values equal ref in fp32, fp16 and bf16", async () => {
  const wasm = await createWasm({ threads: 2 });
  const rng = new Rng(7, "wasm-ops");
  const t = (shape: number[], f: FormatName, edges = false): HostTensor => ({
    shape,
    format: f,
    data: values(rng, shape.reduce((p, d) => p * d, 1), f, edges),
  });
  try {
    for (const f of ["fp32", "fp16", "bf16"] as const) {
      for (const acc of ["fp32", f] as const) {
        // Whole tiles (m % 4 = 0, n % 8 = 0) take the gemm's in-place paths for an f32 B and output; k above
        // 256 runs in chunks, and k % 4 != 0 leaves a tail after the 4 x 4 transposes of A. The last two are
        // large enough for both threads: 33 x 300 x 130 (9 x 17 tiles) splits its column blocks 8 and 9, over
        // groups of column blocks; 130 x 300 x 33 (33 x 5 tiles) splits the tiles mid-row.
        const shapes = [
          [1, 1, 1],
          [5, 7, 11],
          [13, 33, 17],
          [4, 300, 9],
          [8, 300, 16],
          [6, 515, 8],
          [
            12,
            258,
            24,
          ],
          [33, 300, 130],
          [130, 300, 33],
        ];
        for (const [m, k, n] of shapes) {
          for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
            const a = t(ta ? [k, m] : [m, k], f, true), b = t(tb ? [n, k] : [k, n], f);
            const [x, y] = await both(wasm, "matmul", [a, b], { transA: ta, transB: tb }, f, acc);
            assertBits(x, y, `matmul ${f} acc ${acc} ${m}x${k}x${n} ${ta} ${tb}`);
          }
        }
        for (const [m, n] of [[5, 7], [4, 8]]) {
          const [x, y] = await both(wasm, "matmul", [t([3, m, 6], f), t([3, 6, n], f)], {}, f, acc);
          assertBits(x, y, `batched matmul ${f} ${m}x6x${n}`);
        }
        // The last cases' 8-pixel runs reach both ends of the input row (the vector gathers, strides 1 and 2).
        const convs = [
          { c: 3, o: 5, groups: 1, stride: 1, pads: [1, 1, 1, 1], hw: [7, 9], k: [3, 2] },
          { c: 4, o: 4, groups: 4, stride: 2, pads: [0, 0, 1, 1], hw: [7, 9], k: [3, 2] },
          { c: 2, o: 6, groups: 2, stride: 2, pads: [1, 0, 1, 0], hw: [7, 9], k: [3, 2] },
          { c: 3, o: 4, groups: 1, stride: 1, pads: [1, 1, 1, 1], hw: [5, 16], k: [3, 3] },
          { c: 3, o: 4, groups: 1, stride: 2, pads: [0, 0, 1, 1], hw: [6, 16], k: [3, 3] },
          { c: 2, o: 3, groups: 1, stride: 2, pads: [1, 1, 1, 1], hw: [5, 17], k: [3, 3] },
        ];
        for (const { c, o, groups, stride, pads, hw: [h, wd], k: [kh, kw] } of convs) {
          const xs = [2, c, h, wd], ws = [o, c / groups, kh, kw];
          const attrs = { stride: [stride, stride], pads: [...pads], groups };
          const xin = t(xs, f, true), w = t(ws, f);
          const [y1, y2] = await both(wasm, "conv2d", [xin, w], attrs, f, acc);
          assertBits(y1, y2, `conv2d ${f} acc ${acc} groups ${groups}`);
          const out = [[h, kh, 0], [wd, kw, 1]].map(([size, k, a]) =>
            Math.floor((size + pads[a] + pads[a + 2] - k) / stride) + 1
          );
          const gy = t([2, o, ...out], f);
          const [g1, g2] = await both(wasm, "conv2d_grad_input", [gy, w], { ...attrs, inShape: xs }, f, acc);
          assertBits(g1, g2, `conv2d_grad_input ${f} acc ${acc} groups ${groups}`);
          const [h1, h2] = await both(
            wasm,
            "conv2d_grad_weight",
            [t(xs, f), gy],
            { ...attrs, kernel: [kh, kw] },
            f,
            acc,
          );
          assertBits(h1, h2, `conv2d_grad_weight ${f} acc ${acc} groups ${groups} [${xs}]`);
        }
      }
      for (const op of ["relu", "tanh", "gelu", "cast"]) {
        const [x, y] = await both(wasm, op, [t([37], "fp32", true)], {}, f);
        assertBits(x, y, `${op} fp32 -> ${f}`);
      }
      const [r1, r2] = await both(wasm, "relu", [t([37], f, true)], {}, f);
      assertBits(r1, r2, `relu ${f} -> ${f}`);
      const [x, y] = await both(wasm, "scale", [t([37], f, true)], { factor: 0.1 }, f);
      assertBits(x, y, `scale ${f}`);
      for (const op of ["relu_grad", "tanh_grad", "gelu_grad", "add"]) {
        const [a, b] = await both(wasm, op, [t([29], f, true), t([29], f, true)], {}, f);
        assertBits(a, b, `${op} ${f}`);
      }
      // Normalisations large enough to split their groups over both threads (5 channels: 2 and 3; 13: 6 and 7,
      // four at a time in fp32 and the rest one by one; 270 rows; the layer-norm affine gradient sums over rows,
      // so it stays on one thread).
      const norms = [
        ["batchnorm", [3, 5, 48, 48], [5]],
        ["batchnorm", [2, 13, 40, 40], [13]],
        ["layernorm", [270, 130], [130]],
      ] as const;
      for (const [kind, shape, params] of norms) {
        const x = t([...shape], f),
          gy = t([...shape], f),
          gamma = t([...params], f),
          beta = t([...params], f);
        const eps = { eps: 1e-3 };
        const cases = [[kind, [x, gamma, beta]], [`${kind}_grad_x`, [x, gamma, gy]], [`${kind}_grad_affine`, [
          x,
          gy,
        ]]];
        for (const [op, inputs] of cases as [string, HostTensor[]][]) {
          const [n1, n2] = await both(wasm, op, inputs, eps, f);
          assertBits(n1, n2, `${op} ${f} [${shape}]`);
        }
      }
      const parts = [t([2, 3, 5], f), t([2, 1, 5], f)];
      const [c1, c2] = await both(wasm, "concat", parts, { axis: 1 }, f);
      assertBits(c1, c2, `concat ${f}`);
      const finite = [t([9], f), t([4], f)];
      const [z1, z2] = await both(wasm, "all_finite", finite, {}, "fp32");
      assertBits(z1, z2, `all_finite ${f}`);
      // count_lost: equal values, +-0, NaN and zero steps from the edge values; a long tensor after a
      // short one (whole vectors and tails); a step in another format takes the element-by-element path.
      const w0 = t([61], f, true), w1 = t([61], f, true), pick = t([61], f), w2 = t([7], f, true);
      w1.data.forEach((_, i) => pick.data[i] < 0 && (w1.data[i] = w0.data[i]));
      for (const [i, a, b] of [[5, 0, -0], [6, NaN, NaN], [60, -0, 0]]) (w0.data[i] = a), (w1.data[i] = b);
      for (const step of [t([61], f, true), t([61], "fp32", true), t([61], f)]) {
        step.data[3] = 0;
        const [l1, l2] = await both(wasm, "count_lost", [w2, w2, t([7], f, true), w0, w1, step], {}, "fp32");
        assertBits(l1, l2, `count_lost ${f}, step ${step.format}`);
        assert.ok(l2[0] > 10, `count_lost ${f}: too few lost elements to test (${l2[0]})`);
      }
      const long = [t([1029], f)];
      for (const at of [-1, 1000, 1028]) {
        // Finite; Infinity past the first block of 16 vectors; NaN in the tail.
        if (at >= 0) long[0].data[at] = at === 1000 ? Infinity : NaN;
        const [i1, i2] = await both(wasm, "all_finite", long, {}, "fp32");
        assertBits(i1, i2, `all_finite ${f} with a non-finite value at ${at}`);
        assert.equal(i2[0], at < 0 ? 1 : 0);
        if (at >= 0) long[0].data[at] = 1;
      }
      for (const [k, at] of [[0, 3], [1, 2]]) {
        // Within the first tensor's eight-at-a-time block, then in the second's scalar tail.
        const saved = finite[k].data[at];
        finite[k].data[at] = k ? Infinity : NaN;
        const [i1, i2] = await both(wasm, "all_finite", finite, {}, "fp32");
        assertBits(i1, i2, `all_finite with a non-finite value ${f}`);
        assert.equal(i2[0], 0);
        finite[k].data[at] = saved;
      }
    }
  } finally {
    wasm.close?.();
  }
});

Deno.test("wasm: depthwise convolutions (their own kernels) equal ref on edge values, strides and widths", async () => {
  // Rows wide enough for the vector paths and their row-end checks, windows of 1 to 5 taps (5: the weight
  // gradient goes to the gemm, wider than a vector), strides 1 to 3, uneven pads; finite values, then edge values with
  // Infinity and NaN in every operand (the kernels skip padding taps, as ref does, instead of adding zeros;
  // the weight gradient's long sums are mostly NaN then, hence the finite pass); one shape for two threads.
  const wasm = await createWasm({ threads: 2 });
  const rng = new Rng(11, "wasm-depthwise");
  const t = (shape: number[], f: FormatName, edges: boolean): HostTensor => ({
    shape,
    format: f,
    data: values(rng, shape.reduce((p, d) => p * d, 1), f, edges),
  });
  const cases = [
    { x: [2, 3, 9, 21], k: [3, 3], stride: 1, pads: [1, 1, 1, 1] },
    { x: [1, 4, 11, 23], k: [3, 3], stride: 2, pads: [1, 1, 1, 1] },
    { x: [2, 2, 7, 19], k: [2, 4], stride: 1, pads: [0, 2, 1, 1] },
    { x: [1, 3, 10, 17], k: [3, 5], stride: 3, pads: [2, 1, 0, 2] },
    { x: [2, 2, 5, 12], k: [1, 1], stride: 1, pads: [0, 0, 0, 0] },
    { x: [2, 24, 26, 34], k: [3, 3], stride: 1, pads: [1, 1, 1, 1] },
    // Rows of 16 and 32: a run of 8 outputs (or input pixels) ends exactly at the row's last column.
    { x: [2, 3, 6, 16], k: [3, 3], stride: 1, pads: [1, 1, 1, 1] },
    { x: [1, 3, 6, 32], k: [3, 3], stride: 2, pads: [0, 0, 1, 1] },
  ];
  const formats = [["fp32", "fp32", "fp32"], ["fp16", "fp16", "fp16"], ["bf16", "bf16", "bf16"], [
    "fp16",
    "fp32",
    "bf16",
  ]] as const;
  try {
    for (const { x: xs, k: [kh, kw], stride, pads } of cases) {
      const c = xs[1], ws = [c, 1, kh, kw];
      const out = [
        xs[0],
        c,
        ...[[xs[2], kh, 0], [xs[3], kw, 1]].map(([size, k, a]) =>
          Math.floor((size + pads[a] + pads[a + 2] - k) / stride) + 1
        ),
      ];
      const attrs = { stride: [stride, stride], pads, groups: c };
      for (const [[fx, fw, fy], edges] of formats.flatMap((f) => [[f, false], [f, true]] as const)) {
        const what = `depthwise [${xs}] ${kh}x${kw} stride ${stride} ${fx}/${fw} -> ${fy}${
          edges ? " edges" : ""
        }`;
        const x = t(xs, fx, edges), w = t(ws, fw, edges), gy = t(out, fx, edges);
        const [y1, y2] = await both(wasm, "conv2d", [x, w], attrs, fy);
        assertBits(y1, y2, `conv2d ${what}`);
        const [g1, g2] = await both(wasm, "conv2d_grad_input", [gy, w], { ...attrs, inShape: xs }, fy);
        assertBits(g1, g2, `conv2d_grad_input ${what}`);
        const [h1, h2] = await both(wasm, "conv2d_grad_weight", [x, gy], { ...attrs, kernel: [kh, kw] }, fy);
        assertBits(h1, h2, `conv2d_grad_weight ${what}`);
      }
    }
  } finally {
    wasm.close?.();
  }
});

Deno.test("wasm: a cast of a leaf read only as matmul B is fused into the packing, with ref's bits", async () => {
  const wasm = await createWasm({ threads: 2 });
  const rng = new Rng(11, "wasm-fused-cast");
  try {
    for (
      const [from, to] of [["fp32", "fp16"], ["fp32", "bf16"], ["bf16", "fp16"], ["fp16", "fp32"]] as const
    ) {
      for (const [m, k, n] of [[5, 7, 11], [8, 33, 16]]) {
        // Values beyond fp16's range, ties and subnormals in the cast: w spans 2^-30 .. 2^20.
        const wv = Float64Array.from({ length: k * n }, () => {
          const v = (rng.uniform() * 2 - 1) * 2 ** (rng.below(50) - 30);
          return rounder(from)(rng.uniform() < 0.1 ? Math.f16round(v) * (1 + 2 ** -11) : v);
        });
        const g = new Graph();
        // y = a w (a forward pass), z = d w^T (the input gradient), both through the one cast.
        const a = g.leaf("input", "a", [m, k], { format: to }),
          d = g.leaf("input", "d", [m, n], { format: to });
        const w = g.leaf("param", "w", [k, n], { format: from });
        const cw = g.add("cast", [w], {}, { format: to });
        g.outputs.y = g.add("matmul", [a, cw], {}, { format: to });
        g.outputs.z = g.add("matmul", [d, cw], { transB: true }, { format: to });
        const feeds: Record<string, HostTensor> = {
          a: { shape: [m, k], format: to, data: values(rng, m * k, to, false) },
          d: { shape: [m, n], format: to, data: values(rng, m * n, to, false) },
          w: { shape: [k, n], format: from, data: wv },
        };
        const [r, x] = [await ref.compile(g).run(feeds), await wasm.compile(g).run(feeds)];
        for (const o of Object.keys(g.outputs)) {
          assertBits(r[o].data, x[o].data, `${from} -> ${to} ${m}x${k}x${n} ${o}`);
        }
      }
    }
  } finally {
    wasm.close?.();
  }
});

/** An MLP training step graph (batch 16) and feeds for its first run. */
function mlpStep(precision: string, hidden: number) {
  const policy = parsePolicy(precision), inputShape = [1, 28, 28];
  const spec = {
    model: modelByName("mlp"),
    modelOptions: { classes: 10, hidden: [hidden] },
    policy,
    optimizer: PAPER_SGD,
    inputShape,
  };
  const graph = buildTrainGraph(spec, 16).graph;
  return { graph, start: stepFeeds(graph, policy, inputShape, 16) };
}

Deno.test("wasm: state stays in wasm memory until read, is copied out before a run that does not consume it, survives a failed run, and reading it after a run consumed it unread throws", async () => {
  const wasm = await createWasm({ threads: 2 });
  try {
    const { graph, start } = mlpStep("fp16", 24);
    const stateOf = (out: Record<string, HostTensor>) =>
      Object.fromEntries(graph.state.map((s) => [s.name, out[s.name]]));
    const same = (a: Record<string, HostTensor>, b: Record<string, HostTensor>, what: string) => {
      for (const s of graph.state) assertBits(a[s.name].data, b[s.name].data, `${what} ${s.name}`);
    };
    const exe = wasm.compile(graph), refExe = ref.compile(graph);
    const [one, oneRef] = [await exe.run(start), await refExe.run(start)];
    // A second run from the start feeds does not consume the first run's state, which is copied out first.
    const again = await exe.run(start);
    same(oneRef, one, "first run, read after a second run");
    const [two, twoRef] = [
      await exe.run({ ...start, ...stateOf(again) }),
      await refExe.run({ ...start, ...stateOf(oneRef) }),
    ];
    assert.throws(() => again[graph.state[0].name].data, /consumed/);
    same(twoRef, two, "second step, from state fed back unread");
    // A run that fails consumes nothing: the same unread state fed again gives the next step.
    const [three, threeRef] = [
      await exe.run({ ...start, ...stateOf(two) }),
      await refExe.run({ ...start, ...stateOf(twoRef) }),
    ];
    const bad = { ...start.labels, data: start.labels.data.map((v, i) => i === 3 ? 10 : v) };
    await assert.rejects(async () => await exe.run({ ...start, ...stateOf(three), labels: bad }), /Label 10/);
    const [four, fourRef] = [
      await exe.run({ ...start, ...stateOf(three) }),
      await refExe.run({ ...start, ...stateOf(threeRef) }),
    ];
    same(fourRef, four, "fourth step, from unread state after a failed run");
  } finally {
    wasm.close?.();
  }
});

Deno.test("wasm: state fed back, fed anew, or fed after a failed run gives ref's bits", async () => {
  const wasm = await createWasm({ threads: 2 });
  try {
    for (const precision of ["fp32", "fp16"]) {
      const { graph, start } = mlpStep(precision, 256);
      const bad = { ...start.labels, data: start.labels.data.map((v, i) => i === 3 ? 10 : v) };
      const engines = [ref.compile(graph), wasm.compile(graph)], feeds = [{ ...start }, { ...start }];
      // Fed back (in place, both plans), then fed as copies, then a run that fails, then fed back again.
      for (const how of ["back", "back", "back", "copy", "back", "fail", "back", "back"]) {
        const outs: Record<string, HostTensor>[] = [];
        for (const e of [0, 1]) {
          if (how === "copy") {
            for (const s of graph.state) {
              feeds[e][s.name] = { ...feeds[e][s.name], data: feeds[e][s.name].data.slice() };
            }
          }
          if (how === "fail") {
            await assert.rejects(
              async () => await engines[e].run({ ...feeds[e], labels: bad }),
              /Label 10 at row 3/,
            );
            continue;
          }
          outs.push(await engines[e].run(feeds[e]));
          Object.assign(feeds[e], Object.fromEntries(graph.state.map((s) => [s.name, outs[e][s.name]])));
        }
        for (const s of how === "fail" ? [] : graph.state) {
          const x = outs[0][s.name].data, y = outs[1][s.name].data;
          const i = x.findIndex((v, i) => !Object.is(v, y[i]));
          assert.equal(i, -1, `${precision} ${how} ${s.name}: element ${i}: ref ${x[i]}, wasm ${y[i]}`);
        }
      }
    }
  } finally {
    wasm.close?.();
  }
});

Deno.test("wasm --fast: says it is not bit-exact, and stays close to ref", async () => {
  const fast = await createWasm({ threads: 1, fast: true });
  try {
    assert.equal(fast.name, "wasm-fast");
    assert.equal(fast.capabilities.bitExactWithRef, false);
    assert.match(fast.environment().mode, /not bit-exact/);
    const [a, b] = await both(
      fast,
      "matmul",
      [
        { shape: [16, 64], format: "fp32", data: values(new Rng(1, "a"), 1024, "fp32", false) },
        { shape: [64, 16], format: "fp32", data: values(new Rng(2, "b"), 1024, "fp32", false) },
      ],
      {},
      "fp32",
    );
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(a[i])));
  } finally {
    fast.close?.();
  }
});

Deno.test("wasm: the development step profile times every step of a run by op and shape and every parallel kernel call, and changes no bit", async () => {
  const wasm = await createWasm({ threads: 1 });
  try {
    const spec = {
      model: modelByName("mlp"),
      modelOptions: { classes: 10, hidden: [13] },
      policy: parsePolicy("mixed"),
      optimizer: PAPER_SGD,
      inputShape: [1, 28, 28],
    };
    const t = buildTrainGraph(spec, 8), feeds = stepFeeds(t.graph, spec.policy, [1, 28, 28], 8);
    const plain = await wasm.compile(t.graph).run(feeds);
    const times = stepProfile.times = new Map<string, number>();
    const calls = stepProfile.kernels = new Map<string, number>();
    let timed;
    try {
      timed = await wasm.compile(t.graph).run(feeds);
    } finally {
      stepProfile.times = stepProfile.kernels = undefined;
    }
    for (const k of Object.keys(plain)) {
      assert.deepEqual(Array.from(timed[k].data), Array.from(plain[k].data), k);
    }
    assert.ok(times.has("matmul fp16 [8,13]"), [...times.keys()].join("; "));
    assert.ok(
      [...times.keys()].some((k) => k.startsWith("sgd_velocity (fused pair) fp32")),
      "the fused update",
    );
    assert.ok([...times.values()].every((ms) => ms >= 0));
    // The parallel kernels' calls: the matmuls' packing and tiles.
    for (const kernel of ["packA", "packB", "gemmTiles"]) {
      assert.ok(calls.has(kernel), [...calls.keys()].join("; "));
    }
    assert.ok([...calls.values()].every((ms) => ms >= 0));
  } finally {
    wasm.close?.();
  }
});
