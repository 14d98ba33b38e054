/**
 * The host side of loss scaling. Dynamic scaling follows Keras's
 * LossScaleOptimizer: start at 2^15, double after 2000 consecutive finite
 * steps, halve (never below 1) and skip the step when a gradient is not finite.
 * The step itself is skipped inside the graph (update ops gated on the finite flag).
 *
 * @module
 */

import type { LossScale } from "../policy/policy.ts";

/** What a {@linkcode LossScaler} holds between steps. */
export interface LossScalerState {
  /** The scale of the next step. */
  readonly scale: number;
  /** Consecutive finite steps since the scale last changed. */
  readonly good: number;
  /** Steps skipped so far. */
  readonly skipped: number;
}

/** Tracks the current loss scale across steps. */
export class LossScaler {
  #scale: number;
  #good = 0;
  #skipped = 0;

  constructor(readonly config: LossScale) {
    this.#scale = config.kind === "none" ? 1 : config.kind === "static" ? config.scale : config.initial;
  }

  /** The scale to use for the next step. */
  get scale(): number {
    return this.#scale;
  }

  /** Steps skipped so far. */
  get skipped(): number {
    return this.#skipped;
  }

  /** True when a non-finite gradient skips the step (dynamic scaling only). */
  get gates(): boolean {
    return this.config.kind === "dynamic";
  }

  /** The scaler's state: what a checkpoint saves so that a resumed run scales and skips as before. */
  snapshot(): LossScalerState {
    return { scale: this.#scale, good: this.#good, skipped: this.#skipped };
  }

  /** Restores a state {@linkcode snapshot} returned. */
  restore(s: LossScalerState): void {
    if (
      !(s.scale > 0) || !Number.isInteger(s.good) || s.good < 0 || !Number.isInteger(s.skipped) ||
      s.skipped < 0
    ) {
      throw new RangeError(`Not a loss scaler state: ${JSON.stringify(s)}`);
    }
    (this.#scale = s.scale), (this.#good = s.good), (this.#skipped = s.skipped);
  }

  /** Records a step's finite flag; returns true when the step was applied. */
  update(finite: boolean): boolean {
    const c = this.config;
    if (c.kind !== "dynamic") return true;
    if (finite) {
      if (++this.#good >= c.growthInterval) (this.#scale *= c.factor), (this.#good = 0);
      return true;
    }
    this.#skipped++;
    this.#scale = Math.max(this.#scale / c.factor, 1);
    this.#good = 0;
    return false;
  }
}
