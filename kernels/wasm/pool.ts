/**
 * The wasm engine's threads: Workers that instantiate the same kernel module over the same shared memory.
 *
 * A parallel call (today: a gemm, kernels/wasm/as/gemm.ts) is split into `parts` fixed shares of whole
 * output tiles; share 0 runs on the calling thread, share p on worker p. Each output is computed by one
 * thread in the canonical order, so the thread count never changes a bit. Protocol over a small shared
 * Int32Array: the caller writes the job address, sets `pending` to the worker count, bumps `generation`
 * and notifies; each worker runs its share and decrements `pending`; the caller waits for zero.
 *
 * @module
 */

/** Slots of the control array. */
export const CONTROL = { generation: 0, pending: 1, job: 2, stop: 3, failed: 4 } as const;

/** The message that starts a worker. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  part: number;
  parts: number;
  tables: { half: number; erfc: number };
}

/** A started pool of `threads - 1` workers plus the calling thread. */
export class Pool {
  readonly threads: number;
  #workers: Worker[] = [];
  #control = new Int32Array(new SharedArrayBuffer(32));
  #gemm: (job: number, part: number, parts: number) => void;

  private constructor(threads: number, gemm: (job: number, part: number, parts: number) => void) {
    this.threads = threads;
    this.#gemm = gemm;
  }

  /** Starts `threads - 1` workers and waits until each has instantiated the module. */
  static async start(
    threads: number,
    init: Omit<WorkerInit, "control" | "part" | "parts">,
    gemm: (job: number, part: number, parts: number) => void,
  ): Promise<Pool> {
    const pool = new Pool(threads, gemm);
    const ready: Promise<unknown>[] = [];
    for (let part = 1; part < threads; part++) {
      const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      pool.#workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.onmessage = resolve;
          w.onerror = (e) => {
            e.preventDefault();
            reject(new Error(`A wasm engine worker failed to start: ${e.message}`));
          };
        }),
      );
      w.postMessage({ ...init, control: pool.#control.buffer, part, parts: threads } satisfies WorkerInit);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  /** Runs the gemm job at `job` on every thread and returns when all shares are done. */
  gemm(job: number): void {
    const c = this.#control;
    if (this.threads === 1) return this.#gemm(job, 0, 1);
    c[CONTROL.job] = job;
    Atomics.store(c, CONTROL.pending, this.threads - 1);
    Atomics.add(c, CONTROL.generation, 1);
    Atomics.notify(c, CONTROL.generation);
    this.#gemm(job, 0, this.threads);
    for (let left; (left = Atomics.load(c, CONTROL.pending)) !== 0;) Atomics.wait(c, CONTROL.pending, left);
    if (Atomics.exchange(c, CONTROL.failed, 0)) throw new Error("A wasm engine worker trapped in a gemm");
  }

  /** Stops the workers (the process cannot exit while they run). */
  close(): void {
    const c = this.#control;
    Atomics.store(c, CONTROL.stop, 1);
    Atomics.add(c, CONTROL.generation, 1);
    Atomics.notify(c, CONTROL.generation);
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
  }
}
