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

import { UserError } from "../../lib/errors.ts";
import { storedBytes } from "../../lib/formats/stored.ts";
import { type Graph, type Node, sizeOf } from "../../lib/graph/graph.ts";
import { place, swapState } from "../../lib/graph/plan.ts";
import type { OpName } from "../../lib/graph/ops.ts";
import { assertSupports, type Engine, type Executable, feedFor, type HostTensor } from "../engine.ts";
import type { Gpu } from "./device.ts";
import type { GpuOperand, GpuPass } from "./kernel.ts";
import { KERNELS } from "./ops.ts";
import { wordsOf } from "./prelude.ts";
import { shaderPasses } from "./shader.ts";

interface Step {
  readonly pipeline: Promise<GPUComputePipeline>;
  readonly workgroups: readonly [number, number, number];
}

interface Result {
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
  readonly results: readonly Result[];
}

/** Pipelines by WGSL source, per device: nodes of the same kind and place share one. */
const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** Compiles `graph` for `gpu`; `engine` names the engine in errors. */
export function compileGraph(graph: Graph, { engine, gpu }: { engine: Engine; gpu: Gpu }): Executable {
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
  const layout = device.createBindGroupLayout({
    entries: [0, 1].map((binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "storage" as const },
    })),
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const bindGroup = device.createBindGroup({
    layout,
    entries: [{ binding: 0, resource: { buffer: arena } }, { binding: 1, resource: { buffer: scratch } }],
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
  const resultIds = [
    ...Object.entries(graph.outputs),
    ...graph.state.map((s): [string, number] => [s.name, s.next]),
  ];
  const nextOf = new Map(graph.state.map((s) => [s.name, s.next]));
  const compiled: Plan[] = plans.map(({ offset }, p) => {
    const steps: Step[] = [];
    for (const n of work) {
      const at = { x: n.inputs.map((i) => offset[i] / 4), y: offset[n.id] / 4, wide };
      const ctx = { x: n.inputs.map(operand), y: operand(n.id), acc: graph.accumulate, at };
      for (const pass of passes.get(n.id)!) {
        for (const s of shaderPasses(pass, ctx)) {
          steps.push({ pipeline: pipeline(s.code), workgroups: s.workgroups });
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
      results: resultIds.map(([name, id]) => {
        const r = { name, node: nodes[id], at: offset[id], staged, bytes: size(id) };
        staged += r.bytes;
        return r;
      }),
    };
  });
  const stagingBytes = Math.max(4, ...compiled.map((c) => c.results.reduce((s, r) => s + r.bytes, 0)));
  const staging = device.createBuffer({
    size: stagingBytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  let ready: Promise<GPUComputePipeline[][]> | null = null;
  let last: Record<string, HostTensor> = {}, parity = 0;

  return {
    async run(feeds) {
      ready ??= checked(allocated, compiled);
      const pipelines = await ready;
      const p = parity ^ 1, plan = compiled[p];
      for (const { node, at, from } of plan.inputs) {
        const t = feedFor(node, feeds);
        // State fed back unchanged from the last run is already in place on the GPU.
        if (from === at && last[node.name!] === t) continue;
        const bytes = storedBytes(t);
        const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
        padded.set(bytes);
        device.queue.writeBuffer(arena, at, padded);
      }
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setBindGroup(0, bindGroup);
      plan.steps.forEach((s, k) => {
        pass.setPipeline(pipelines[p][k]);
        pass.dispatchWorkgroups(...s.workgroups);
      });
      pass.end();
      for (const r of plan.results) encoder.copyBufferToBuffer(arena, r.at, staging, r.staged, r.bytes);
      device.pushErrorScope("validation");
      device.queue.submit([encoder.finish()]);
      const invalid = await device.popErrorScope();
      if (invalid) {
        last = {};
        throw new Error(`The webgpu engine's step failed: ${invalid.message.trim().split("\n")[0]}`);
      }
      await staging.mapAsync(GPUMapMode.READ);
      const out: Record<string, HostTensor> = {};
      try {
        const data = staging.getMappedRange();
        for (const r of plan.results) {
          out[r.name] = hostTensor(r.node, data.slice(r.staged, r.staged + r.bytes));
        }
      } finally {
        staging.unmap();
      }
      last = out;
      parity = p;
      return out;
    },
  };

  async function checked(
    allocated: Promise<GPUError | null>,
    plans: Plan[],
  ): Promise<GPUComputePipeline[][]> {
    const oom = await allocated;
    if (oom) throw new UserError(`The webgpu engine could not allocate ${arenaBytes} bytes: ${oom.message}`);
    try {
      return await Promise.all(plans.map((c) => Promise.all(c.steps.map((s) => s.pipeline))));
    } catch (e) {
      const message = e instanceof Error ? e.message.trim().split("\n").slice(0, 6).join(" ") : String(e);
      throw new Error(`The webgpu engine could not compile a shader: ${message}`);
    }
  }
}

/** The values of `node` from its stored words, as f32 (exact for every storage format). */
function hostTensor(node: Node, words: ArrayBuffer): HostTensor {
  const n = sizeOf(node.shape), format = node.format!;
  let data: Float32Array;
  if (format === "fp32") data = new Float32Array(words, 0, n);
  else if (format === "fp16") data = Float32Array.from(new Float16Array(words, 0, n));
  else {
    const half = new Uint16Array(words, 0, n), bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = half[i] << 16;
    data = new Float32Array(bits.buffer);
  }
  return { shape: node.shape, format, data };
}
