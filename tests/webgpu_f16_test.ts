/**
 * The webgpu engine's fp16 in WGSL f16 (`shader-f16`): without the feature (here: the engine option that
 * withholds it, since lavapipe has it) fp16 is refused in one line and fp32 and bf16 still run; with it,
 * the capabilities say fp16 is native and bf16 is not, the shaders of the ops that compute in f16 enable f16
 * and do their arithmetic in it (so a return to emulation fails here), and fp16 values cross the f16 loads
 * and stores bit for bit. Needs a WebGPU adapter with shader-f16 (lavapipe on CI).
 */

import assert from "node:assert/strict";
import { type HostTensor, policyProblem } from "../kernels/engine.ts";
import { runGraph } from "../kernels/ref/mod.ts";
import { KERNELS } from "../kernels/webgpu/ops.ts";
import type { GpuOperand } from "../kernels/webgpu/kernel.ts";
import { acquireGpu } from "../kernels/webgpu/device.ts";
import { createEngine } from "../kernels/webgpu/mod.ts";
import { shaderPasses } from "../kernels/webgpu/shader.ts";
import { UsageError } from "../lib/errors.ts";
import { type FormatName, rounder } from "../lib/formats/format.ts";
import { Graph } from "../lib/graph/graph.ts";
import type { OpName } from "../lib/graph/ops.ts";
import { parsePolicy } from "../lib/policy/policy.ts";

/** y = x + x and the sum's cast to fp32, on [n] tensors of format `f`. */
function addGraph(f: FormatName, n: number) {
  const g = new Graph();
  const x = g.leaf("input", "x", [n], { format: f });
  const y = g.add("add", [x, x], {}, { format: f });
  g.outputs.y = g.add("cast", [y], {}, { format: "fp32" });
  const data = Float32Array.from({ length: n }, (_, i) => rounder(f)(Math.sin(i) * 100));
  return { graph: g, feeds: { x: { shape: [n], format: f, data } as HostTensor } };
}

Deno.test("webgpu without shader-f16 refuses fp16 in one line and runs fp32 and bf16", async () => {
  const engine = await createEngine({ shaderF16: false });
  try {
    assert.deepEqual(engine.capabilities.formats, ["fp32", "bf16"]);
    assert.deepEqual(engine.capabilities.native16, []);
    assert.match(engine.environment().arithmetic16, /^fp16 refused \(no shader-f16\)/);
    const { graph } = addGraph("fp16", 5);
    const refusal = (() => {
      try {
        engine.compile(graph);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(refusal instanceof UsageError, `not a UsageError: ${refusal}`);
    assert.match(refusal.message, /shader-f16, so it cannot run fp16; fp32 and bf16 run$/);
    assert.match(
      refusal.message,
      /^The webgpu engine was told \(option shaderF16 false\) to run as if the adapter "[^"\n]+" lacked/,
    );
    assert.ok(!refusal.message.includes("\n"));
    // train asks the capabilities before loading data, and says why.
    assert.match(policyProblem(engine.capabilities, parsePolicy("mixed"))!, /^it has no fp16 \(.*shader-f16/);
    assert.equal(policyProblem(engine.capabilities, parsePolicy("bf16")), undefined);
    for (const f of ["fp32", "bf16"] as const) {
      const { graph, feeds } = addGraph(f, 5);
      const got = await engine.compile(graph).run(feeds);
      assert.deepEqual([...got.y.data], [...runGraph(graph, feeds).y.data], f);
    }
  } finally {
    engine.close?.();
  }
});

Deno.test("webgpu with shader-f16: fp16 is native, bf16 emulated, and fp16 runs", async () => {
  const engine = await createEngine();
  try {
    assert.deepEqual(engine.capabilities.formats, ["fp32", "fp16", "bf16"]);
    assert.deepEqual(engine.capabilities.native16, ["fp16"]);
    assert.equal(engine.capabilities.unavailable, undefined);
    assert.match(
      engine.environment().arithmetic16,
      /^fp16 in WGSL f16 \(shader-f16 requested\); bf16 emulated/,
    );
    const { graph, feeds } = addGraph("fp16", 7);
    assert.deepEqual([...(await engine.compile(graph).run(feeds)).y.data], [
      ...runGraph(graph, feeds).y.data,
    ]);
    // An op with more inputs than the f16 names need (h0 to h17 beside the f16 view of the arena).
    const g = new Graph(), x = g.leaf("input", "x", [3], { format: "fp16" });
    g.outputs.ok = g.add("all_finite", new Array(18).fill(x), {}, { format: "fp32" });
    const ok = await engine.compile(g).run({
      x: { shape: [3], format: "fp16", data: Float32Array.of(1, 2, 3) },
    });
    assert.deepEqual([...ok.ok.data], [1]);
  } finally {
    engine.close?.();
  }
});

/**
 * The WGSL of each pass of op `op` on [6] operands (inputs `xs`, the last `scalars` of them of shape [];
 * output `y`), as the compiler builds it.
 */
function shadersOf(
  op: OpName,
  xs: FormatName[],
  y: FormatName,
  { attrs = {}, scalars = 0 }: { attrs?: Record<string, unknown>; scalars?: number } = {},
): string[] {
  const g = new Graph();
  const shape = (k: number) => k >= xs.length - scalars ? [] : [6];
  const inputs = xs.map((f, k) => g.leaf("input", `x${k}`, shape(k), { format: f }));
  const node = g.nodes[g.add(op, inputs, attrs as never, { format: y })];
  const x = xs.map((format, k): GpuOperand => ({
    format,
    shape: shape(k),
    size: k >= xs.length - scalars ? 1 : 6,
  }));
  const out: GpuOperand = { format: y, shape: [6], size: 6 };
  const passes = KERNELS[op]!({ node, x, y: out, acc: "fp32", cpu: true });
  const at = { x: xs.map((_, k) => 16 * k), y: 128, wide: 160 };
  return passes.flatMap((p) => shaderPasses(p, { x, y: out, acc: "fp32", at })).map((s) => s.code);
}

/** The WGSL of all passes of an op, one text (see {@linkcode shadersOf}). */
const shaderOf = (...a: Parameters<typeof shadersOf>) => shadersOf(...a).join("\n");

/** The optimizer updates in fp16 with fp32 invScale, ok and seed scalars, in their attribute variants. */
const UPDATES: [OpName, FormatName[], Record<string, unknown>][] = [
  ["sgd_velocity", ["fp16", "fp16", "fp16", "fp32", "fp32"], {
    lr: 0.01,
    momentum: 0.9,
    wd: 0,
    gated: false,
  }],
  ["sgd_velocity", ["fp16", "fp16", "fp16", "fp32", "fp32"], {
    lr: 0.01,
    momentum: 0.9,
    wd: 5e-4,
    gated: true,
  }],
  ["sgd_apply", ["fp16", "fp16", "fp32", "fp32", "fp32"], { lr: 0.01, momentum: 0.9, wd: 0, salt: 0 }],
  ["sgd_apply", ["fp16", "fp16", "fp32", "fp32", "fp32"], { lr: 0.01, momentum: 0, wd: 5e-4, salt: 0 }],
  ["adam_moment", ["fp16", "fp16", "fp16", "fp32", "fp32"], { beta: 0.9, power: 1, wd: 0 }],
  ["adam_moment", ["fp16", "fp16", "fp16", "fp32", "fp32"], { beta: 0.999, power: 2, wd: 5e-4, gated: true }],
  ["adam_apply", ["fp16", "fp16", "fp16", "fp32", "fp32", "fp32"], { eps: 1e-7, salt: 0 }],
];

Deno.test("webgpu: the fp16 shaders of the elementwise ops and updates compile on the adapter", async () => {
  const gpu = await acquireGpu();
  try {
    const shaders = [
      ...(["add", "relu_grad"] as const).map((op) => shadersOf(op, ["fp16", "fp16"], "fp16")),
      shadersOf("bias_add", ["fp16", "fp16"], "fp16", { attrs: { axis: 0 } }),
      ...(["relu", "cast", "tanh", "gelu"] as const).map((op) => shadersOf(op, ["fp16"], "fp16")),
      shadersOf("scale", ["fp16"], "fp16", { attrs: { factor: 1024 } }),
      shadersOf("scale", ["fp16"], "fp16", { attrs: { factor: 0.3 } }),
      ...UPDATES.map(([op, xs, attrs]) =>
        shadersOf(op, xs, "fp16", { attrs, scalars: xs.filter((f) => f === "fp32").length })
      ),
    ].flat();
    for (const code of shaders) {
      gpu.device.pushErrorScope("validation");
      gpu.device.createShaderModule({ code });
      const e = await gpu.device.popErrorScope();
      assert.equal(e?.message.split("\n").slice(0, 4).join(" "), undefined, code);
    }
  } finally {
    gpu.device.destroy();
  }
});

Deno.test("webgpu: fp16 shaders enable f16 and compute one-operation ops in f16 arithmetic", () => {
  const add = shaderOf("add", ["fp16", "fp16"], "fp16");
  assert.ok(add.startsWith("enable f16;\n"), add.slice(0, 40));
  assert.match(
    add,
    /fn value\(i: u32\) -> f16 \{\n {2}let a = h0\(i\); let b = h1\(i\);\n {2}return a \+ b;\n\}/,
  );
  // Stored as f16 as computed: no rounding of an f32 result.
  assert.match(add, /mem_h\[128u \+ t\] = vec2<f16>\(value\(2u \* t\), hi\);/);
  assert.doesNotMatch(add, /enc_fp16\(value|value_rounded/);
  const relu = shaderOf("relu", ["fp16"], "fp16");
  assert.match(relu, /select\(0\.0h, a, a > 0\.0h \|\| is_nan_h\(a\)\)/);
  // The momentum update: each rounded product in f16, kept from fusing with the difference.
  const velocity = shaderOf("sgd_velocity", ["fp16", "fp16", "fp16", "fp32", "fp32"], "fp16", {
    attrs: { lr: 0.01, momentum: 0.9, wd: 0, gated: false },
    scalars: 2,
  });
  assert.match(
    velocity,
    /-> f16 \{\n {2}return rh\(f16\(bitcast<f32>\(0x3f666000u\)\) \* h0\(i\)\) - rh\(f16\(bitcast<f32>\(0x3c23e000u\)\) \* h_of\(x1\(i\) \* x3\(0u\)\)\);/,
  );
  // Many-operation ops stay in f32 and round once; fp32 and bf16 shaders never mention f16.
  assert.match(shaderOf("tanh", ["fp16"], "fp16"), /fn value\(i: u32\) -> f32 \{/);
  for (const f of ["fp32", "bf16"] as const) {
    for (const op of ["add", "relu"] as const) {
      assert.doesNotMatch(
        shaderOf(op, op === "add" ? [f, f] : [f], f),
        /\bf16\b|\bmem_h\b|\bh0\(/,
        `${op} ${f}`,
      );
    }
  }
});

Deno.test("webgpu: every fp16 bit pattern crosses the f16 loads, stores and widening unchanged", async () => {
  const engine = await createEngine();
  try {
    const n = 65536, bits = new Uint16Array(n).map((_, i) => i);
    const values = Float32Array.from(new Float16Array(bits.buffer));
    const g = new Graph();
    const x = g.leaf("input", "x", [n], { format: "fp16" });
    g.outputs.copy = g.add("reshape", [x], { shape: [n] }, { format: "fp16" });
    g.outputs.wide = g.add("cast", [x], {}, { format: "fp32" });
    g.outputs.relu = g.add("relu", [x], {}, { format: "fp16" });
    const feeds = { x: { shape: [n], format: "fp16", data: values } as HostTensor };
    const [got, want] = [await engine.compile(g).run(feeds), runGraph(g, feeds)];
    for (const k of ["copy", "wide", "relu"]) {
      for (let i = 0; i < n; i++) {
        const [a, b] = [got[k].data[i], want[k].data[i]];
        if (!(Object.is(a, b) || (a !== a && b !== b))) {
          assert.fail(`${k} of 0x${i.toString(16)}: ${a}, ref ${b}`);
        }
      }
    }
  } finally {
    engine.close?.();
  }
});
