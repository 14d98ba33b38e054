/**
 * The webgpu graph compiler: places every tensor of a step graph once in one GPU buffer, turns each live node
 * into shader passes, and runs a step as one command submission.
 *
 * Placement is lib/graph/plan.ts's, as in the wasm engine: two plans over one region, alternating run by
 * run, in which each state leaf and its next value trade places, so the state a run leaves is where the next
 * run reads it. State fed back unchanged from the last run therefore never crosses to the host; every other
 * feed is uploaded before the step's submission. Results (named outputs and next state) are copied into one
 * staging buffer in the same submission and read back in one mapping.
 *
 * @module
 */

import { UsageError, UserError } from "../../lib/errors.ts";
import { storedBytes } from "../../lib/formats/stored.ts";
import { type Graph, type Node, sizeOf } from "../../lib/graph/graph.ts";
import { place, swapState } from "../../lib/graph/plan.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { assertSupports, type Engine, type Executable, feedFor, type HostTensor } from "../engine.ts";
import { fp16Problem, type Gpu } from "./device.ts";
import type { GpuOperand, GpuPass } from "./kernel.ts";
import { KERNELS } from "./ops.ts";
import { assertLoops } from "./loop_cap.ts";
import { wordsOf } from "./prelude.ts";
import { GpuResult, settle } from "./result.ts";
import { shaderPasses } from "./shader.ts";

interface Step {
  readonly code: string;
  readonly workgroups: readonly [number, number, number];
}

interface Output {
  readonly name: string;
  readonly node: Node;
  /** Byte offset in the arena and in the staging buffer. */
  readonly at: number;
  readonly staged: number;
  readonly bytes: number;
}

interface Plan {
  readonly steps: readonly Step[];
  /** Leaves: byte offset, and for state the byte offset where the other plan's run left its next value. */
  readonly inputs: readonly { node: Node; at: number; from: number }[];
  /** Named outputs, read back after every run. */
  readonly outputs: readonly Output[];
  /** Next state, left on the GPU (byte offsets in the arena). */
  readonly state: readonly { name: string; node: Node; at: number }[];
}

/** Pipelines by WGSL source, per device: nodes of the same kind and place share one. */
const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** Compiles `graph` for `gpu`; `engine` names the engine in errors. */
export function compileGraph(graph: Graph, { engine, gpu }: { engine: Engine; gpu: Gpu }): Executable {
  const noFp16 = fp16Problem(gpu);
  if (noFp16 && (graph.accumulate === "fp16" || graph.nodes.some((n) => n.format === "fp16"))) {
    throw new UsageError(
      `${noFp16[0].toUpperCase()}${noFp16.slice(1)}, so it cannot run fp16; fp32 and bf16 run`,
    );
  }
  assertSupports(engine, graph);
  const { device } = gpu;
  const nodes = graph.nodes, live = graph.live();
  const operand = (id: number): GpuOperand => ({
    format: nodes[id].format!,
    shape: nodes[id].shape,
    size: sizeOf(nodes[id].shape),
  });
  const words = (id: number) => wordsOf(nodes[id].format!, sizeOf(nodes[id].shape));
  const size = (id: number) => 4 * words(id);
  const even = place(graph, size), plans = [even, swapState(graph, even, size)];
  const work = nodes.filter((n) => live[n.id] && n.inputs.length);
  const passes = new Map<number, readonly GpuPass[]>();
  let wideWords = 0;
  for (const n of work) {
    const ps = KERNELS[n.op as OpName]!({
      node: n,
      x: n.inputs.map(operand),
      y: operand(n.id),
      acc: graph.accumulate,
      cpu: gpu.cpu,
    });
    passes.set(n.id, ps);
    assertLoops(gpu.adapter, n, operand(n.id), ps);
    if (nodes[n.id].format !== "fp32" && ps.some((p) => p.kind === "custom")) {
      wideWords = Math.max(wideWords, sizeOf(n.shape));
    }
  }
  const wide = even.bytes / 4;
  const arenaBytes = Math.max(16, even.bytes + 4 * wideWords);
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  if (arenaBytes > limit) {
    throw new UserError(
      `The step graph needs ${(arenaBytes / 2 ** 20).toFixed(1)} MiB in one GPU buffer; this adapter binds ` +
        `at most ${(limit / 2 ** 20).toFixed(1)} MiB (try a smaller batch)`,
    );
  }
  device.pushErrorScope("out-of-memory");
  const arena = device.createBuffer({
    size: arenaBytes,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const scratch = device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
  const allocated = device.popErrorScope();
  // Binding 2 is the arena again, which fp16 shaders view as vec2<f16> words (prelude.ts's PRELUDE_F16).
  const layout = device.createBindGroupLayout({
    entries: [0, 1, 2].map((binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "storage" as const },
    })),
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const bindGroup = device.createBindGroup({
    layout,
    entries: [
      { binding: 0, resource: { buffer: arena } },
      { binding: 1, resource: { buffer: scratch } },
      { binding: 2, resource: { buffer: arena } },
    ],
  });
  let cache = pipelineCache.get(device);
  if (!cache) pipelineCache.set(device, cache = new Map());
  const pipeline = (code: string): Promise<GPUComputePipeline> => {
    let p = cache.get(code);
    if (!p) {
      device.pushErrorScope("validation");
      const module = device.createShaderModule({ code });
      p = device.popErrorScope().then((e) => {
        // The parser's message names the line; pipeline creation would only say the module is invalid.
        if (e) throw new Error(e.message.trim().split("\n").slice(0, 6).join(" "));
        return device.createComputePipelineAsync({
          layout: pipelineLayout,
          compute: { module, entryPoint: "main" },
        });
      });
      p.catch(() => cache.delete(code));
      cache.set(code, p);
    }
    return p;
  };

  const leaves = nodes.filter((n) => live[n.id] && !n.inputs.length);
  const nextOf = new Map(graph.state.map((s) => [s.name, s.next]));
  const compiled: Plan[] = plans.map(({ offset }, p) => {
    const steps: Step[] = [];
    for (const n of work) {
      const at = { x: n.inputs.map((i) => offset[i] / 4), y: offset[n.id] / 4, wide };
      const ctx = { x: n.inputs.map(operand), y: operand(n.id), acc: graph.accumulate, at };
      for (const pass of passes.get(n.id)!) {
        for (const s of shaderPasses(pass, ctx)) {
          steps.push({ code: s.code, workgroups: s.workgroups });
        }
      }
    }
    let staged = 0;
    return {
      steps,
      inputs: leaves.map((n) => {
        const next = nextOf.get(n.name!);
        return { node: n, at: offset[n.id], from: next === undefined ? -1 : plans[1 - p].offset[next] };
      }),
      outputs: Object.entries(graph.outputs).map(([name, id]) => {
        const r = { name, node: nodes[id], at: offset[id], staged, bytes: size(id) };
        staged += r.bytes;
        return r;
      }),
      state: graph.state.map(({ name, next }) => ({ name, node: nodes[next], at: offset[next] })),
    };
  });
  const stagingBytes = Math.max(4, ...compiled.map((c) => c.outputs.reduce((s, r) => s + r.bytes, 0)));
  const staging = device.createBuffer({
    size: stagingBytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  // Each plan's pipelines, created at its first run: a graph run once (a test's) compiles one plan only,
  // and on lavapipe compiling a pipeline costs more than running it.
  const ready: (Promise<GPUComputePipeline[]> | undefined)[] = [];
  // The state results of the last run, by name; parity picks the plan whose leaves are where they lie.
  let last = new Map<string, GpuResult>(), parity = 0;
  const nodeOf = new Map(graph.state.map((s) => [s.name, nodes[s.next]]));

  /** Copies state results of this executable from the GPU, in one submission. */
  const download = async (results: readonly GpuResult[]) => {
    const names = [...last].filter(([, t]) => results.includes(t)).map(([name]) => name);
    const bytes = names.map((name) => size(nodeOf.get(name)!.id));
    const buffer = device.createBuffer({
      size: Math.max(4, bytes.reduce((a, b) => a + b, 0)),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = device.createCommandEncoder();
    let at = 0;
    for (let k = 0; k < names.length; k++) {
      encoder.copyBufferToBuffer(arena, last.get(names[k])!.at, buffer, at, bytes[k]);
      at += bytes[k];
    }
    device.queue.submit([encoder.finish()]);
    await buffer.mapAsync(GPUMapMode.READ);
    const data = buffer.getMappedRange();
    at = 0;
    for (let k = 0; k < names.length; k++) {
      last.get(names[k])!.fill(valuesOf(nodeOf.get(names[k])!, data.slice(at, at + bytes[k])));
      at += bytes[k];
    }
    buffer.destroy();
    // A result of an earlier run (no longer in `last`) was consumed or copied out before that run.
    for (const t of results) if (t.onDevice) throw new Error("A webgpu state result outlived its buffer");
  };

  return {
    async run(feeds) {
      const p = parity ^ 1, plan = compiled[p];
      const pipelines = await (ready[p] ??= checked(allocated, plan));
      // State the last run left on the GPU and this run takes back where it lies stays there; every other
      // tensor still on a GPU (the last run's state that is not fed back, another executable's state) is
      // copied out first, before this run reuses the memory or uploads it.
      const inPlace = new Set<GpuResult>();
      for (const { node, at, from } of plan.inputs) {
        const t = feeds[node.name!];
        if (t instanceof GpuResult && t.onDevice && from === at && last.get(node.name!) === t) inPlace.add(t);
      }
      await settle([...last.values(), ...Object.values(feeds)].filter((t) => !inPlace.has(t as GpuResult)));
      for (const { node, at } of plan.inputs) {
        const t = feedFor(node, feeds);
        if (inPlace.has(t as GpuResult)) continue;
        const bytes = storedBytes(t);
        const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
        padded.set(bytes);
        device.queue.writeBuffer(arena, at, padded);
      }
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setBindGroup(0, bindGroup);
      plan.steps.forEach((s, k) => {
        pass.setPipeline(pipelines[k]);
        pass.dispatchWorkgroups(...s.workgroups);
      });
      pass.end();
      for (const r of plan.outputs) encoder.copyBufferToBuffer(arena, r.at, staging, r.staged, r.bytes);
      device.pushErrorScope("validation");
      device.queue.submit([encoder.finish()]);
      const invalid = await device.popErrorScope();
      if (invalid) {
        throw new Error(`The webgpu engine's step failed: ${invalid.message.trim().split("\n")[0]}`);
      }
      for (const t of inPlace) t.consume();
      await staging.mapAsync(GPUMapMode.READ);
      const out: Record<string, HostTensor> = {};
      try {
        const data = staging.getMappedRange();
        for (const r of plan.outputs) {
          out[r.name] = {
            shape: r.node.shape,
            format: r.node.format!,
            data: valuesOf(r.node, data.slice(r.staged, r.staged + r.bytes)),
          };
        }
      } finally {
        staging.unmap();
      }
      last = new Map(
        plan.state.map((r) => [r.name, new GpuResult(r.node.shape, r.node.format!, r.at, download)]),
      );
      for (const [name, t] of last) out[name] = t;
      parity = p;
      return out;
    },
  };

  async function checked(allocated: Promise<GPUError | null>, plan: Plan): Promise<GPUComputePipeline[]> {
    const oom = await allocated;
    if (oom) throw new UserError(`The webgpu engine could not allocate ${arenaBytes} bytes: ${oom.message}`);
    try {
      return await Promise.all(plan.steps.map((s) => pipeline(s.code)));
    } catch (e) {
      const message = e instanceof Error ? e.message.trim().split("\n").slice(0, 6).join(" ") : String(e);
      throw new Error(`The webgpu engine could not compile a shader: ${message}`);
    }
  }
}

/** The values of `node` from its stored words, as f32 (exact for every storage format). */
function valuesOf(node: Node, words: ArrayBuffer): Float32Array {
  const n = sizeOf(node.shape), format = node.format!;
  let data: Float32Array;
  if (format === "fp32") data = new Float32Array(words, 0, n);
  else if (format === "fp16") data = Float32Array.from(new Float16Array(words, 0, n));
  else {
    const half = new Uint16Array(words, 0, n), bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = half[i] << 16;
    data = new Float32Array(bits.buffer);
  }
  return data;
}
