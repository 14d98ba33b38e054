/**
 * A state tensor a webgpu run returns and leaves on the GPU: the training loop feeds it back unread, so it
 * never crosses to the host unless something reads it. It is copied out by `Engine.settle`, or by any run
 * that needs its values elsewhere (another executable, or a run of its own executable that does not take it
 * back in place); a run that takes it back in place consumes it, after which it cannot be read (the engine
 * contract: read a state tensor before feeding it back if it is needed afterwards).
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { HostTensor } from "../engine.ts";

/** Copies the values of some of one executable's state results to the host (one submission). */
export type Download = (results: readonly GpuResult[]) => Promise<void>;

/** A state result held on the GPU until copied out. */
export class GpuResult implements HostTensor {
  #data: Float32Array | null = null;
  #consumed = false;

  /**
   * `download` copies results of the executable that made this one; `at` is the tensor's byte offset in
   * that executable's buffer.
   */
  constructor(
    readonly shape: readonly number[],
    readonly format: FormatName,
    readonly at: number,
    readonly download: Download,
  ) {}

  /** True while the values are only on the GPU. */
  get onDevice(): boolean {
    return this.#data === null && !this.#consumed;
  }

  /** The values, as f32 (exact in every storage format); throws while they are only on the GPU. */
  get data(): Float32Array {
    if (this.#data) return this.#data;
    throw new Error(
      this.#consumed
        ? "State tensor read after a later run consumed it: read or copy it before feeding it back"
        : "State tensor of the webgpu engine read before engine.settle() copied it from the GPU",
    );
  }

  /** Sets the values copied from the GPU. */
  fill(data: Float32Array): void {
    this.#data = data;
  }

  /** A run took the values in place and may overwrite them: unread, they are gone. */
  consume(): void {
    this.#consumed = true;
  }
}

/** Copies every tensor of `tensors` that is still only on a GPU to the host, one submission per executable. */
export async function settle(tensors: Iterable<HostTensor>): Promise<void> {
  const byOwner = new Map<Download, GpuResult[]>();
  for (const t of tensors) {
    if (t instanceof GpuResult && t.onDevice) byOwner.set(t.download, [...byOwner.get(t.download) ?? [], t]);
  }
  for (const [download, list] of byOwner) await download(list);
}
