/**
 * The webgpu engine's window and norm kernels against ref, op by op on small odd shapes (strides, pads,
 * groups, depthwise, overlapping pools, NaN and infinity where ref defines what happens), in fp32, fp16 and
 * bf16, and on the CNN step graph: on lavapipe every value must be ref's bits, and a second run must repeat
 * them. On another adapter the bits are not claimed (kernels/webgpu/spec.ts); the conformance suite holds the
 * tolerance there.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Engine, HostTensor } from "../kernels/engine.ts";
import { runGraph } from "../kernels/ref/mod.ts";
import { loadEngine } from "../kernels/registry.ts";
import { type FormatName, rounder } from "../lib/formats/format.ts";
import { type Attr, Graph } from "../lib/graph/graph.ts";
import { isolateOps } from "./support/isolate_ops.ts";
import { stepCases } from "./support/step_cases.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";

type Case = [op: string, inputs: number[][], attrs: Record<string, Attr>];

const conv = (stride: number[], pads: number[], groups: number) => ({ stride, pads, groups });
const pool = { kernel: [3, 2], stride: [2, 1], pads: [1, 0, 1, 1] };

/** Each op on shapes that reach its edge cases: padding on every side, strides, groups, overlapping windows. */
// conv2d runs tiled on planes of 32 outputs or more (the first and fourth cases), directly below.
const CASES: Case[] = [
  ["conv2d", [[2, 3, 7, 6], [4, 3, 3, 3]], conv([1, 1], [1, 1, 1, 1], 1)],
  ["conv2d", [[2, 4, 7, 6], [4, 1, 3, 3]], conv([2, 2], [1, 1, 1, 1], 4)],
  ["conv2d", [[2, 4, 7, 6], [6, 2, 5, 3]], conv([2, 1], [2, 0, 2, 1], 2)],
  ["conv2d", [[1, 70, 6, 6], [8, 70, 3, 3]], conv([1, 1], [1, 1, 1, 1], 1)], // tiled, two chunks of channels
  ["conv2d_grad_input", [[2, 4, 4, 6], [4, 3, 3, 3]], {
    ...conv([2, 1], [1, 1, 1, 1], 1),
    inShape: [2, 3, 7, 6],
  }],
  ["conv2d_grad_input", [[2, 6, 2, 3], [6, 2, 5, 3]], {
    ...conv([2, 2], [2, 0, 2, 1], 2),
    inShape: [2, 4, 4, 6],
  }],
  ["conv2d_grad_weight", [[2, 3, 7, 6], [2, 4, 4, 6]], { ...conv([2, 1], [1, 1, 1, 1], 1), kernel: [3, 3] }],
  ["conv2d_grad_weight", [[2, 4, 4, 6], [2, 6, 2, 3]], { ...conv([2, 2], [2, 0, 2, 1], 2), kernel: [5, 3] }],
  ["conv2d_grad_weight", [[1, 2, 2, 2], [1, 2, 1, 1]], { ...conv([1, 1], [1, 1, 1, 1], 1), kernel: [4, 4] }],
  // 80 images of 28 x 28 pass one thread's loop budget on lavapipe: two threads relay each sum.
  ["conv2d_grad_weight", [[80, 1, 28, 28], [80, 2, 28, 28]], {
    ...conv([1, 1], [2, 2, 2, 2], 1),
    kernel: [5, 5],
  }],
  ["maxpool", [[2, 3, 7, 5]], pool],
  ["maxpool_grad", [[2, 3, 7, 5], [2, 3, 4, 5]], pool],
  ["avgpool", [[2, 3, 7, 5]], pool],
  ["avgpool_grad", [[2, 3, 4, 5]], { ...pool, inShape: [2, 3, 7, 5] }],
  ["batchnorm", [[3, 5, 4, 3], [5], [5]], { eps: 1e-3 }],
  ["batchnorm_grad_x", [[3, 5, 4, 3], [5], [3, 5, 4, 3]], { eps: 1e-3 }],
  ["batchnorm_grad_affine", [[3, 5, 4, 3], [3, 5, 4, 3]], { eps: 1e-3 }],
  ["batchnorm_infer", [[3, 5, 4, 3], [5], [5], [5], [5]], { eps: 1e-3 }],
  ["moments", [[3, 5, 4, 3]], {}],
  ["layernorm", [[3, 5, 70], [70], [70]], { eps: 1e-6 }],
  ["layernorm_grad_x", [[3, 5, 70], [70], [3, 5, 70]], { eps: 1e-6 }],
  ["layernorm_grad_affine", [[3, 5, 70], [3, 5, 70]], { eps: 1e-6 }],
];

/** Values over several binades, rounded to `format`; a variance input (4th of batchnorm_infer) is positive. */
function values(shape: number[], format: FormatName, seed: number): HostTensor {
  const n = shape.reduce((p, d) => p * d, 1), r = rounder(format);
  const data = Float32Array.from({ length: n }, (_, i) => r(Math.sin(i * 1.7 + seed) * 2 ** ((i % 9) - 4)));
  return { shape, format, data };
}

/** A graph of one op over leaves in `format`, accumulating in `acc`, with its feeds. */
function single(
  [op, inputs, attrs]: Case,
  format: FormatName,
  acc: FormatName,
  edit?: (x: HostTensor[]) => void,
) {
  const g = new Graph();
  g.accumulate = acc;
  const feeds: Record<string, HostTensor> = {};
  const xs = inputs.map((s, k) => values(s, format, k));
  if (op === "batchnorm_infer") xs[4].data.forEach((v, i, a) => (a[i] = Math.abs(v)));
  edit?.(xs);
  const ids = xs.map((t, k) => ((feeds[`x${k}`] = t), g.leaf("input", `x${k}`, t.shape, { format })));
  g.outputs.y = g.add(op, ids, attrs, { format });
  return { graph: g, feeds };
}

/** Fails unless `engine` gives ref's bits for every output of `graph`, twice. */
async function sameBits(engine: Engine, graph: Graph, feeds: Record<string, HostTensor>, what: string) {
  const want = runGraph(graph, feeds);
  const exe = engine.compile(graph);
  const first = await exe.run(feeds), again = await exe.run(feeds);
  for (const [key, t] of Object.entries(want)) {
    const a = first[key].data, b = again[key].data;
    for (let i = 0; i < t.data.length; i++) {
      assert.ok(Object.is(a[i], b[i]), `${what} ${key}[${i}]: a second run gave ${b[i]}, the first ${a[i]}`);
      if (!Object.is(a[i], t.data[i]) && !(a[i] !== a[i] && t.data[i] !== t.data[i])) {
        assert.fail(`${what} ${key}[${i}]: ref ${t.data[i]}, webgpu ${a[i]}`);
      }
    }
  }
}

const onLavapipe = (engine: Engine) => engine.environment().fallbackAdapter === "true";

Deno.test("webgpu window and norm ops give ref's bits on lavapipe, in fp32, fp16 and bf16", async () => {
  const engine = await loadEngine("webgpu");
  try {
    if (!onLavapipe(engine)) return console.log("not lavapipe: ref's bits are not claimed here");
    // fp16 with fp32 accumulation (mixed precision) takes the paths bf16 with fp32 accumulation takes.
    const runs: [FormatName, FormatName][] = [["fp32", "fp32"], ["fp16", "fp16"], ["bf16", "fp32"]];
    for (const c of CASES) {
      for (const [format, acc] of runs) {
        const { graph, feeds } = single(c, format, acc);
        await sameBits(engine, graph, feeds, `${c[0]} [${c[1].join("; ")}] ${format} accumulate ${acc}`);
      }
    }
  } finally {
    engine.close?.();
  }
});

Deno.test("webgpu pooling and convolution follow ref on NaN and infinity", async () => {
  const engine = await loadEngine("webgpu");
  try {
    if (!onLavapipe(engine)) return;
    const nan = (x: HostTensor[]) => ((x[0].data[4] = NaN), (x[0].data[40] = -Infinity));
    for (const op of ["maxpool", "maxpool_grad", "avgpool"]) {
      const c = CASES.find((k) => k[0] === op)!;
      const { graph, feeds } = single(c, "fp32", "fp32", nan);
      await sameBits(engine, graph, feeds, `${op} with NaN and -Infinity`);
    }
    // An infinite weight meets only in-bounds taps: padding adds nothing, not 0 * Infinity = NaN.
    const { graph, feeds } = single(CASES[0], "fp16", "fp32", (x) => (x[1].data[0] = Infinity));
    await sameBits(engine, graph, feeds, "conv2d with an infinite weight");
  } finally {
    engine.close?.();
  }
});

Deno.test("webgpu window and norm ops of the CNN step graph give ref's bits on lavapipe", async () => {
  const engine = await loadEngine("webgpu");
  try {
    if (!onLavapipe(engine)) return;
    const mine = new Set(CASES.map((c) => c[0]));
    for (const c of stepCases([["cnn", 2, PAPER_SGD, ["fp32", "fp16", "bf16"]]], "webgpu-window-norm")) {
      const iso = isolateOps(c.train, c.feeds);
      // Keep only this file's ops: the graph of isolated ops reads ref's inputs, so each stands alone.
      const g = new Graph();
      g.accumulate = iso.graph.accumulate;
      const feeds: Record<string, HostTensor> = {};
      for (const [key, id] of Object.entries(iso.graph.outputs)) {
        const n = iso.graph.node(id);
        if (!mine.has(n.op)) continue;
        const ins = n.inputs.map((i) => {
          const leaf = iso.graph.node(i);
          feeds[leaf.name!] = iso.feeds[leaf.name!];
          return g.leaf("input", leaf.name!, leaf.shape, { format: leaf.format });
        });
        g.outputs[key] = g.add(n.op, ins, { ...n.attrs }, { format: n.format });
      }
      assert.ok(Object.keys(g.outputs).length >= 6, `${c.label}: the CNN step has window and norm ops`);
      await sameBits(engine, g, feeds, c.label);
    }
  } finally {
    engine.close?.();
  }
});

Deno.test("webgpu refuses, on lavapipe, a pass whose threads would loop past llvmpipe's limit", async () => {
  const engine = await loadEngine("webgpu");
  try {
    if (!onLavapipe(engine)) return;
    // A 1x1 kernel's weight gradient over a 300x300 image: 90,301 iterations in one thread.
    const c: Case = ["conv2d_grad_weight", [[1, 1, 300, 300], [1, 1, 300, 300]], {
      ...conv([1, 1], [0, 0, 0, 0], 1),
      kernel: [1, 1],
    }];
    const { graph } = single(c, "fp32", "fp32");
    assert.throws(() => engine.compile(graph), /conv2d_grad_weight .*needs 90301 loop iterations.*lavapipe/);
  } finally {
    engine.close?.();
  }
});

Deno.test("webgpu sums a long bias gradient in one thread per channel or relayed, with ref's bits in fp16", async () => {
  const engine = await loadEngine("webgpu");
  try {
    // 48 images of 28 x 28 per channel: 37,680 iterations, which a map computing two fp16 outputs per
    // thread would double past llvmpipe's limit (and silently cut there); 130 images pass one thread's
    // share, so two threads relay each sum.
    for (const n of [48, 130]) {
      const c: Case = ["sum_to", [[n, 3, 28, 28]], { axis: 1, rank: 1 }];
      for (const [format, acc] of [["fp16", "fp32"], ["fp16", "fp16"], ["bf16", "fp32"]] as const) {
        const { graph, feeds } = single(c, format, acc);
        await sameBits(engine, graph, feeds, `sum_to of ${n} images, ${format} accumulating in ${acc}`);
      }
    }
  } finally {
    engine.close?.();
  }
});

Deno.test("webgpu refuses, on lavapipe, matmul, sum_to and softmax rows that would loop past llvmpipe's limit", async () => {
  const engine = await loadEngine("webgpu");
  try {
    if (!onLavapipe(engine)) return;
    const cases: [Case, RegExp][] = [
      [["matmul", [[1, 70000], [70000, 1]], {}], /matmul .*needs 70000 loop iterations/],
      [["sum_to", [[1, 1, 70000]], { axis: 1, rank: 1 }], /sum_to .*needs 70002 loop iterations/],
      [["softmax", [[1, 40000]], {}], /softmax .*needs 80000 loop iterations/],
    ];
    for (const [c, message] of cases) {
      const { graph } = single(c, "fp32", "fp32");
      assert.throws(() => engine.compile(graph), message);
    }
  } finally {
    engine.close?.();
  }
});
