/**
 * The wasm engine's thread pool never misses a job started the moment it is ready (a worker that read the
 * job generation late used to wait forever, and with it the caller). A hang cannot be caught in-process
 * (the caller blocks in Atomics.wait), so the check runs in a child process with a time limit.
 */

import assert from "node:assert/strict";

const SCRIPT = `
import { createEngine } from "${new URL("../kernels/wasm/mod.ts", import.meta.url).href}";
import { Graph } from "${new URL("../lib/graph/graph.ts", import.meta.url).href}";
const g = new Graph();
const a = g.leaf("input", "a", [128, 128], { format: "fp32" }), b = g.leaf("input", "b", [128, 128], { format: "fp32" });
g.outputs.c = g.add("matmul", [a, b], {}, { format: "fp32" });
const data = new Float64Array(128 * 128).fill(0.5);
for (let i = 0; i < 40; i++) {
  const e = await createEngine({ threads: 2 });
  const c = await e.compile(g).run({ a: { shape: [128, 128], format: "fp32", data }, b: { shape: [128, 128], format: "fp32", data } });
  if (c.c.data[0] !== 32) throw new Error("wrong product " + c.c.data[0]);
  e.close?.();
}
console.log("ok");
`;

Deno.test("wasm pool: jobs started right after start-up are never missed (40 fresh pools)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", SCRIPT],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "ok");
});
