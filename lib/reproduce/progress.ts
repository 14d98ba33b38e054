/**
 * Progress arithmetic for long reproductions: durations as people read them,
 * and an estimate of the time left over every phase (cells, determinism
 * re-runs, tolerance, report) that weighs each piece of work by what the same
 * kind of work measurably cost so far.
 *
 * @module
 */

/** Seconds as "45s", "3m07s" or "2h05m" (never "3m60s"). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s}s`;
  if (s < 3600 * 2) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** "1 re-run", "2 re-runs": a count with its noun, singular or plural. */
export function plural(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}

/** One piece of work still to do: its kind (costs are learnt per kind) and a prior guess in seconds. */
export interface Work {
  readonly kind: string;
  readonly guess: number;
  /**
   * The guess is a measurement on this machine (a re-run's guess is its record's time): it is used as it is,
   * never scaled by how far rough guesses were off, and its outcome does not change that scale.
   */
  readonly timed?: boolean;
}

/**
 * The time left for a list of work items run `jobs` at a time. Each item costs the mean of what items of its
 * kind measured so far; an item whose kind has no measurement yet costs its guess scaled by how measured
 * items compared with their own guesses (so a slow machine slows every estimate), unless its guess is
 * itself a time measured here.
 */
export class Estimate {
  readonly #spent = new Map<string, number[]>();
  #ratio: number[] = [];

  /** Records that an item of `kind` (guessed at `guess` seconds) took `seconds`. */
  measured(w: Work, seconds: number): void {
    this.#spent.set(w.kind, [...(this.#spent.get(w.kind) ?? []), seconds]);
    if (w.guess > 0 && !w.timed) this.#ratio.push(seconds / w.guess);
  }

  /** The expected cost of one item. */
  cost(w: Work): number {
    const s = this.#spent.get(w.kind);
    if (s?.length) return s.reduce((a, b) => a + b, 0) / s.length;
    if (w.timed) return w.guess;
    const r = this.#ratio.length ? this.#ratio.reduce((a, b) => a + b, 0) / this.#ratio.length : 1;
    return w.guess * r;
  }

  /** Seconds left for `left` (run `jobs` at a time) plus `serial` items that run alone. */
  left(left: readonly Work[], jobs: number, serial: readonly Work[] = []): number {
    const par = left.reduce((s, w) => s + this.cost(w), 0) / Math.max(1, Math.min(jobs, left.length));
    return par + serial.reduce((s, w) => s + this.cost(w), 0);
  }
}
