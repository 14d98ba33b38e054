/**
 * The wasm engine's threads: Workers that instantiate the same kernel module over the same shared memory.
 *
 * A parallel call names a kernel export and gives one argument row per thread: row 0 runs on the calling
 * thread, row p on worker p. The rows split the work into fixed shares (whole gemm tiles, or element
 * ranges), and each output element is computed by one thread in the canonical order, so the thread count
 * never changes a bit. Protocol over a small shared Int32Array: the caller writes the rows, the kernel's
 * index and the argument count, sets `pending` to the worker count, bumps `generation` and notifies; each
 * worker runs its row and decrements `pending`; the caller waits for zero.
 *
 * Both sides spin before they sleep. Waking a thread blocked in Atomics.wait costs tens of microseconds on
 * virtual machines (a futex wake crosses to another vCPU), which is the run time of a whole elementwise op,
 * and a training step makes dozens of parallel calls with short gaps of host work between them. So a
 * worker polls the generation for up to SPIN_MS after its last job before it sleeps, and the caller polls
 * `pending` before it sleeps. With more threads than CPUs nobody spins (a spinning thread would hold a CPU
 * that another one needs). Spinning changes when a thread starts, never what it computes.
 *
 * Every sleep is bounded (WAKE_MS) and re-checks its condition, so a wake-up that never arrives delays a
 * thread by at most WAKE_MS instead of hanging the run (docs/benchmarks.md describes such a hang of a caller
 * and its worker, its cause not found).
 *
 * @module
 */

import type { KernelExports } from "./kernels_wasm.ts";

/** How long a worker polls for the next job before it sleeps (ms): longer than the gaps inside a step. */
export const SPIN_MS = 2;

/** The longest a sleeping thread goes without re-checking its condition, in milliseconds. */
export const WAKE_MS = 100;

/** Polls of `pending` by the calling thread before it sleeps (a few hundred microseconds). */
const CALLER_SPINS = 1 << 16;

/** Slots of the control array. */
export const CONTROL = { generation: 0, pending: 1, kernel: 2, stop: 3, failed: 4, argc: 5 } as const;

/** Most arguments of a parallel kernel call. */
export const MAX_ARGS = 32;

/** Kernel exports that may run in parallel, by index. */
export const PARALLEL_KERNELS = [
  "setGeometry",
  "setGroups",
  "stats",
  "normalize",
  "affineGrad",
  "inputGrad",
  "gemmTiles",
  "packA",
  "packB",
  "im2col",
  "col2imPanel",
  "depthwise",
  "depthwiseGradInput",
  "depthwiseGradWeight",
  "maxpool",
  "maxpoolGrad",
  "map1",
  "map2",
  "biasAdd",
  "sgdVelocity",
  "sgdApply",
  "sgdMomentum",
  "adamMoment",
  "adamApply",
  "widen",
  "nonFiniteInto",
  "countLostInto",
] as const satisfies readonly (keyof KernelExports)[];

/** A kernel that may run in parallel. */
export type ParallelKernel = typeof PARALLEL_KERNELS[number];

/** The message that starts a worker. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  args: SharedArrayBuffer;
  part: number;
  /** How long this worker polls for the next job before it sleeps (ms); 0: never polls. */
  spinMs: number;
  tables: { half: number; erfc: number };
}

/** A started pool of `threads - 1` workers plus the calling thread. */
export class Pool {
  readonly threads: number;
  #workers: Worker[] = [];
  #control = new Int32Array(new SharedArrayBuffer(32));
  #args: Float64Array;
  #k: KernelExports;
  #spins: number;

  private constructor(threads: number, k: KernelExports) {
    this.threads = threads;
    this.#k = k;
    this.#spins = threads <= (navigator.hardwareConcurrency ?? 1) ? CALLER_SPINS : 0;
    this.#args = new Float64Array(new SharedArrayBuffer(8 * MAX_ARGS * threads));
  }

  /** Starts `threads - 1` workers and waits until each has instantiated the module. */
  static async start(
    threads: number,
    init: Omit<WorkerInit, "control" | "args" | "part" | "spinMs">,
    k: KernelExports,
  ): Promise<Pool> {
    const pool = new Pool(threads, k);
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
      const msg: WorkerInit = {
        ...init,
        control: pool.#control.buffer as SharedArrayBuffer,
        args: pool.#args.buffer as SharedArrayBuffer,
        part,
        spinMs: pool.#spins ? SPIN_MS : 0,
      };
      w.postMessage(msg);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      pool.close();
      throw e;
    }
    return pool;
  }

  /**
   * Runs `kernel` once per thread with that thread's argument row and returns when all are done; a single
   * row runs on the calling thread alone.
   */
  run(kernel: ParallelKernel, rows: readonly (readonly number[])[]): void {
    // Rows arrive in call order (lowering.ts's `positional`), as the workers receive them.
    const f = this.#k[kernel] as (...a: number[]) => void;
    if (rows.length === 1) return void f(...rows[0]); // small work: the calling thread alone
    if (rows.length !== this.threads) {
      throw new Error(`${kernel}: ${rows.length} rows for ${this.threads} threads`);
    }
    const c = this.#control, argc = rows[0].length;
    for (let p = 1; p < rows.length; p++) this.#args.set(rows[p], p * MAX_ARGS);
    c[CONTROL.kernel] = PARALLEL_KERNELS.indexOf(kernel);
    c[CONTROL.argc] = argc;
    Atomics.store(c, CONTROL.pending, this.threads - 1);
    Atomics.add(c, CONTROL.generation, 1);
    Atomics.notify(c, CONTROL.generation);
    f(...rows[0]);
    for (let i = 0; i < this.#spins && Atomics.load(c, CONTROL.pending) !== 0; i++);
    for (let left; (left = Atomics.load(c, CONTROL.pending)) !== 0;) {
      Atomics.wait(c, CONTROL.pending, left, WAKE_MS);
    }
    if (Atomics.exchange(c, CONTROL.failed, 0)) throw new Error(`A wasm engine worker trapped in ${kernel}`);
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
