/// <reference lib="deno.worker" />
/**
 * A worker of the wasm engine's thread pool: instantiates the kernel module over the shared memory and
 * runs its row of every parallel call (kernels/wasm/pool.ts describes the protocol).
 *
 * @module
 */

import { CONTROL, MAX_ARGS, PARALLEL_KERNELS, WAKE_MS, type WorkerInit } from "./pool.ts";

/** Polls the generation until it moves past `seen` or `ms` pass; true if it moved. */
function spin(c: Int32Array, seen: number, ms: number): boolean {
  const until = performance.now() + ms;
  for (;;) {
    for (let i = 0; i < 256; i++) if (Atomics.load(c, CONTROL.generation) !== seen) return true;
    if (performance.now() > until) return false;
  }
}

self.onmessage = async (e: MessageEvent<WorkerInit>) => {
  const { module, memory, control, args, part, spinMs, tables } = e.data;
  const instance = await WebAssembly.instantiate(module, { env: { memory, abort: () => {} } });
  const k = instance.exports as Record<string, (...a: number[]) => number>;
  k.setHalfTable(tables.half);
  k.setErfcTable(tables.erfc);
  const c = new Int32Array(control), row = new Float64Array(args, part * MAX_ARGS * 8, MAX_ARGS);
  const kernels = PARALLEL_KERNELS.map((name) => k[name]);
  // Read the generation before saying ready: the caller may start a job as soon as it hears "ready", and a
  // generation read after that bump would wait for the next one forever.
  let seen = Atomics.load(c, CONTROL.generation);
  self.postMessage("ready");
  for (;;) {
    if (!spinMs || !spin(c, seen, spinMs)) {
      while (Atomics.load(c, CONTROL.generation) === seen) Atomics.wait(c, CONTROL.generation, seen, WAKE_MS);
    }
    seen = Atomics.load(c, CONTROL.generation);
    if (c[CONTROL.stop]) break;
    try {
      kernels[c[CONTROL.kernel]](...row.subarray(0, c[CONTROL.argc]));
    } catch {
      Atomics.store(c, CONTROL.failed, 1); // the caller throws; keep serving so it never waits forever
    }
    if (Atomics.sub(c, CONTROL.pending, 1) === 1) Atomics.notify(c, CONTROL.pending);
  }
  self.close();
};
