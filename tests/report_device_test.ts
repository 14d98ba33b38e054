/**
 * The report says on which device each engine's times were measured: the CPU, a GPU adapter with its driver,
 * or a fallback adapter (software on the CPU, such as lavapipe), whose times it never presents as a GPU's.
 * The 16-bit capability is read as a boolean or per format, and the timing figure says when its bar groups
 * were timed on different devices.
 *
 * @module
 */

import assert from "node:assert/strict";
import { record } from "./support/records.ts";
import { toRuns } from "../reports/aggregate.ts";
import { scopeRows, timingConditions } from "../reports/scope.ts";
import { deviceCaption, timingDevice } from "../reports/device.ts";
import { writeReport } from "../reports/write.ts";
import type { RunRecord } from "../lib/record/schema.ts";

const CPU = "Test CPU 3000";
const LAVAPIPE = { adapter: "vendor 65541, device 0", driver: "llvmpipe (LLVM 15.0.6, 256 bits)" };
const NVIDIA = { adapter: "vendor nvidia, ada, device 9984", driver: "NVIDIA 550.54.15" };

/** A wasm record, as the wasm engine's manifest reads. */
function wasm(o: Parameters<typeof record>[0] = {}): RunRecord {
  const r = record({ engine: "wasm", ...o });
  const engine = { name: "wasm", threads: "1", capabilities: { bitExactWithRef: true } };
  return { ...r, environment: { ...r.environment, cpu: CPU, engine } };
}

/**
 * A webgpu record as kernels/webgpu/device.ts writes its manifest; `fallback` undefined leaves the field out,
 * `native16` undefined leaves the capability out (as today's engine does).
 */
function webgpu(
  gpu: { adapter: string; driver: string },
  o: Parameters<typeof record>[0] & { fallback?: string; native16?: unknown } = {},
): RunRecord {
  const r = record({ engine: "webgpu", ...o });
  const capabilities: Record<string, unknown> = { bitExactWithRef: false, deterministic: true };
  if (o.native16 !== undefined) capabilities.native16 = o.native16;
  const engine: Record<string, unknown> = {
    name: "webgpu",
    capabilities,
    guarantee: "deterministic on one GPU and driver",
    kernels: "WGSL compute shaders, one command submission per step",
    ...gpu,
  };
  if (o.fallback !== undefined) engine.fallbackAdapter = o.fallback;
  return { ...r, environment: { ...r.environment, cpu: CPU, engine } };
}

const runsOf = (records: readonly RunRecord[]) =>
  toRuns(records.map((record, i) => ({ file: `${i}.json`, record })));

Deno.test("times on a fallback adapter such as lavapipe are never presented as a GPU's", () => {
  for (const native16 of [undefined, true]) {
    const t = timingConditions(runsOf([webgpu(LAVAPIPE, { fallback: "true", native16 })]));
    assert.ok(
      t.includes(
        "engine webgpu on a fallback adapter, software on the CPU (Test CPU 3000, 2 cores), not a GPU: " +
          "vendor 65541, device 0 (driver llvmpipe (LLVM 15.0.6, 256 bits));",
      ),
      t,
    );
    assert.match(t, /, so these times cannot speak to GPU speed\.$/);
    assert.doesNotMatch(t, /can speak|on the GPU/);
    assert.match(t, native16 ? /; 16-bit arithmetic native,/ : /; 16-bit arithmetic emulated on the CPU \(/);
  }
  // The record's boolean form is read as its string form.
  const d = timingDevice(webgpu(LAVAPIPE, { fallback: true as unknown as string }));
  assert.equal(d.kind, "fallback");
  // An adapter whose record does not say whether it is a fallback is not taken for a GPU.
  const unsure = timingConditions(runsOf([webgpu(NVIDIA, { native16: true })]));
  assert.match(
    unsure,
    /on the adapter vendor nvidia, ada, device 9984 \(driver NVIDIA 550\.54\.15; whether it/,
  );
  assert.match(unsure, /so these times cannot speak to GPU speed\.$/);
  const rows = Object.fromEntries(scopeRows(runsOf([webgpu(LAVAPIPE, { fallback: "true" })]), null));
  assert.equal(
    rows.Machine,
    "Test CPU 3000, 2 cores, linux x86_64; webgpu on a fallback adapter, software on the CPU " +
      "(Test CPU 3000, 2 cores), not a GPU: vendor 65541, device 0 (driver llvmpipe (LLVM 15.0.6, 256 bits))",
  );
});

Deno.test("times on a named GPU name its adapter and driver and say what its 16-bit arithmetic was", () => {
  const on = (native16?: unknown) =>
    timingConditions(runsOf([webgpu(NVIDIA, { fallback: "false", native16 })]));
  const emulated = on();
  assert.ok(
    emulated.includes(
      "; engine webgpu on the GPU vendor nvidia, ada, device 9984 (driver NVIDIA 550.54.15); 16-bit " +
        "arithmetic emulated (fp32 arithmetic, results rounded to 16 bits in software); webgpu's times on " +
        "the GPU cannot speak to a GPU's 16-bit speed (fp16 and bf16 there run fp32 arithmetic on 16-bit data).",
    ),
    emulated,
  );
  assert.doesNotMatch(emulated, /on the CPU/, "emulated on the GPU, not on the CPU");
  // native16 as a boolean, a list of formats and an object per format.
  for (const n of [true, ["fp16", "bf16"], { fp16: true, bf16: true }]) {
    assert.match(on(n), /; 16-bit arithmetic native; webgpu's times on the GPU can speak to GPU speed\.$/);
  }
  for (const n of [["fp16"], { fp16: true, bf16: false }]) {
    assert.match(
      on(n),
      /; 16-bit arithmetic native for fp16, emulated for bf16; webgpu's times on the GPU can speak to GPU speed for fp16 only \(bf16 there run fp32 arithmetic on 16-bit data\)\.$/,
    );
  }
  // Forms it cannot read never claim native arithmetic.
  for (const n of [false, "yes", 1, { fp16: "true" }]) assert.match(on(n), /16-bit arithmetic emulated \(/);
  // A format is native only when every record of the engine says so.
  const split = timingConditions(runsOf([
    webgpu(NVIDIA, { fallback: "false", native16: true }),
    webgpu(NVIDIA, { fallback: "false", native16: { fp16: true }, seed: 2 }),
  ]));
  assert.match(split, /16-bit arithmetic native for fp16, emulated for bf16;/);
  const rows = Object.fromEntries(scopeRows(runsOf([webgpu(NVIDIA, { fallback: "false" })]), null));
  assert.equal(
    rows.Machine,
    "Test CPU 3000, 2 cores, linux x86_64; webgpu on the GPU vendor nvidia, ada, device 9984 " +
      "(driver NVIDIA 550.54.15)",
  );
});

Deno.test("GPU and CPU times in one report: each engine's device, and the figure says which bars are which", async () => {
  const records = [1, 2].flatMap((seed) => [
    wasm({ seed }),
    wasm({ seed, precision: "fp16" }),
    webgpu(NVIDIA, { seed, fallback: "false", native16: true }),
    webgpu(NVIDIA, { seed, precision: "fp16", fallback: "false", native16: true }),
  ]);
  const runs = runsOf(records);
  const t = timingConditions(runs);
  assert.ok(
    t.includes(
      "; engines wasm (threads per cell: 1) on the CPU (Test CPU 3000, 2 cores) and webgpu on the GPU vendor " +
        "nvidia, ada, device 9984 (driver NVIDIA 550.54.15); 16-bit arithmetic emulated in wasm and native in " +
        "webgpu; webgpu's times on the GPU can speak to GPU speed; times measured elsewhere than on a GPU " +
        "cannot speak to GPU speed.",
    ),
    t,
  );
  // The two engines are different settings, so different bar groups, each on one device.
  assert.equal(
    deviceCaption(runs),
    "Bar groups timed on different devices are not one comparison: compare times and ratios within a bar " +
      "group only. mlp 784-16-10 (synthetic) [engine exact]: the CPU (Test CPU 3000, 2 cores); " +
      "mlp 784-16-10 (synthetic) [engine webgpu]: the GPU vendor nvidia, ada, device 9984 (driver NVIDIA " +
      "550.54.15).",
  );
  // One engine on two adapters is one setting: that bar group mixes devices, and the caption says so.
  const two = runsOf([
    webgpu(NVIDIA, { fallback: "false" }),
    webgpu(LAVAPIPE, { precision: "fp16", fallback: "true" }),
  ]);
  assert.match(
    deviceCaption(two)!,
    /\. mlp 784-16-10 \(synthetic\) mixes devices in one bar group: its ratios compare devices as well as precisions\.$/,
  );
  assert.match(timingConditions(two), /webgpu on a fallback adapter, .* and the GPU vendor nvidia/);
  assert.equal(
    deviceCaption(runsOf([wasm(), wasm({ precision: "fp16" })])),
    null,
    "one device: nothing to add",
  );
  // The page prints both beside Figure 2.
  const root = await Deno.makeTempDir({ prefix: "f16repro-report-" });
  try {
    await Deno.mkdir(`${root}/runs`);
    for (const r of records) await Deno.writeTextFile(`${root}/runs/${r.id}.json`, JSON.stringify(r));
    await writeReport(`${root}/runs`, `${root}/out`);
    const html = await Deno.readTextFile(`${root}/out/report.html`);
    const at = html.indexOf('id="vis-fig2-time"');
    assert.ok(at >= 0, "Figure 2 is drawn");
    const caption = html.slice(html.indexOf("<figcaption>", at), html.indexOf("</figcaption>", at));
    assert.match(caption, /How these times were taken: .*webgpu on the GPU vendor nvidia, ada, device 9984/);
    assert.match(caption, /\[engine webgpu\]: the GPU vendor nvidia/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
