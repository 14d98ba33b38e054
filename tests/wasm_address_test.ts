/**
 * Host-side addresses of the wasm engine run to 4 GiB: byte addresses above 2 GiB convert to element
 * indices without turning negative, and the arena reads and writes tensors there; the memory always extends
 * SLACK bytes past the last buffer (vector loads that run past a row's end stay inside it).
 */

import assert from "node:assert/strict";
import { Arena, elementIndex, SLACK } from "../kernels/wasm/memory.ts";

Deno.test("wasm address: elementIndex converts addresses above 2 GiB", () => {
  assert.equal(elementIndex(2 ** 31 + 8, 4), 2 ** 29 + 2);
  assert.equal(elementIndex(2 ** 31 + 8, 2), 2 ** 30 + 4);
  assert.equal(elementIndex(2 ** 31 + 8, 8), 2 ** 28 + 1);
  assert.equal(elementIndex(2 ** 32 - 4, 4), 2 ** 30 - 1);
  assert.equal(elementIndex(2 ** 31 - 2, 1), 2 ** 31 - 2);
  assert.equal(elementIndex(64, 4), 16);
});

Deno.test("wasm address: the arena reads and writes every format above 2 GiB", () => {
  // Shared memory is reserved up front and committed as it is touched, so 2 GiB of it costs a few pages.
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  const arena = new Arena(memory, 2 ** 31);
  for (const format of ["fp32", "fp16", "bf16"] as const) {
    const ptr = arena.alloc(64);
    assert.ok(ptr >= 2 ** 31, `address ${ptr} is below 2 GiB`);
    arena.write(ptr, format, Float32Array.of(1.5, -2, 0.25));
    assert.deepEqual([...arena.read(ptr, format, 3)], [1.5, -2, 0.25], format);
    assert.equal(arena.scalar(ptr, format), 1.5, format);
  }
});

Deno.test("wasm address: the host files convert addresses with elementIndex, never a signed shift", async () => {
  // In these files every right shift by a constant turns a byte address into an element index.
  for (const file of ["mod.ts", "memory.ts", "ops.ts", "lowering.ts", "lower_window.ts"]) {
    const text = await Deno.readTextFile(new URL(`../kernels/wasm/${file}`, import.meta.url));
    const signed = text.split("\n").filter((line) => /(^|[^>])>>\s*\d/.test(line));
    assert.deepEqual(signed, [], `kernels/wasm/${file} shifts an address with a signed shift`);
  }
});

Deno.test("wasm address: the memory extends SLACK bytes past the last buffer, also one that ends on a page", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  const arena = new Arena(memory, 64);
  // The first buffer ends exactly at the first page's end; the others at odd sizes across pages.
  for (const bytes of [65536 - 64, 1, 65536, 100_000, 4096 - 64]) {
    const ptr = arena.alloc(bytes);
    assert.ok(memory.buffer.byteLength >= ptr + bytes + SLACK, `${bytes} bytes at ${ptr}`);
    assert.ok(memory.buffer.byteLength >= arena.used + SLACK, `after ${bytes} bytes`);
  }
});
