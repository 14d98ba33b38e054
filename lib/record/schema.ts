/**
 * The on-disk schemas in one module: what a run record, the experiment matrix, the determinism summary and a
 * tolerance result hold, with their schema names. The report, `verify` and other tools read these files
 * through this module without loading the code that writes them (training, the cell runner, the analyses).
 * The weight file's layout is in lib/record/weights.ts.
 *
 * @module
 */

import type { FormatName } from "../formats/format.ts";
import type { Policy } from "../policy/policy.ts";

/** Current run record schema. */
export const RUN_SCHEMA = "f16repro.run/1";

/** Everything that defines a run (and so its id). */
export interface RunConfig {
  readonly model: string;
  readonly hidden: readonly number[];
  readonly dataset: string;
  readonly trainLimit: number | null;
  readonly testLimit: number | null;
  /** The precision as the user wrote it (name or policy string). */
  readonly precision: string;
  /** The resolved policy in canonical key=value form. */
  readonly policy: string;
  readonly optimizer: OptimizerConfig;
  readonly batch: number;
  readonly epochs: number;
  readonly seed: number;
  readonly engine: string;
  /**
   * The engine options that change its bits (its spec's bitOptions, e.g. ort's intra-op threads), present
   * only for engines that have such options, so that re-runs and ids include them.
   */
  readonly engineOptions?: { readonly threads?: number };
}

/** Optimizer settings (Keras semantics). */
export interface OptimizerConfig {
  readonly kind: "sgd" | "adam";
  readonly lr: number;
  /** SGD momentum (0: plain SGD). */
  readonly momentum: number;
  /** Coupled L2 decay added to the gradient of conv and dense kernels (Keras l2(c) is weightDecay = 2c). */
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  /** Adam epsilon; the Keras default 1e-7 is an fp16 subnormal. */
  readonly epsilon: number;
}

/**
 * How a driver such as `reproduce` ran a cell: what the report needs to say how its times were taken.
 * Optional in a record: a lone `train` and records of older versions have none.
 */
export interface RunLaunch {
  /** The command line the user typed, e.g. "f16repro reproduce --profile quick --out runs/quick". */
  readonly command: string;
  /** How many cells trained at the same time on this machine while this one did, itself included. */
  readonly cellsAtOnce: number;
}

/** A run record as written to disk. */
export interface RunRecord {
  readonly schema: typeof RUN_SCHEMA;
  readonly id: string;
  readonly config: RunConfig;
  readonly policy: Policy;
  readonly status: "completed" | "diverged";
  readonly divergence: Divergence | null;
  readonly epochs: readonly EpochMetrics[];
  readonly final: { readonly testAccuracy: number | null; readonly trainLoss: number | null };
  readonly weightHash: string;
  readonly metricsHash: string;
  readonly parameterCount: number;
  readonly memory: MemoryFigures;
  readonly timings: { readonly totalSeconds: number; readonly trainSeconds: number };
  readonly dataset: Readonly<Record<string, unknown>>;
  readonly environment: Readonly<Record<string, unknown>>;
  readonly createdAt: string;
  /** How the cell was run, when a driver wrote it ({@linkcode RunLaunch}). */
  readonly launch?: RunLaunch;
}

/** Metrics of one epoch. Times are excluded from the determinism hashes. */
export interface EpochMetrics {
  readonly epoch: number;
  readonly trainLoss: number;
  readonly trainAccuracy: number;
  readonly testLoss: number;
  readonly testAccuracy: number;
  /** Steps skipped by dynamic loss scaling in this epoch. */
  readonly skippedSteps: number;
  /** Loss scale at the end of the epoch (1 without loss scaling). */
  readonly lossScale: number;
  /**
   * Lost updates: over the epoch's applied steps, the mean share of parameter elements whose stored value
   * did not change although the optimizer's step for them was non-zero (w + dw == w). "Non-zero step" is read
   * from the slot: the new velocity for SGD with momentum, the new first moment m for Adam (whose step
   * alpha * m / (sqrt(v) + eps) is non-zero exactly when m is, unless it underflows). Null for plain SGD,
   * which keeps no slot to tell a zero step from a lost one.
   */
  readonly lostUpdates: number | null;
  readonly trainSeconds: number;
  readonly evalSeconds: number;
  readonly samplesPerSecond: number;
}

/** Where and why a run stopped early. */
export interface Divergence {
  readonly epoch: number;
  /** Global step, 1-based. */
  readonly step: number;
  readonly reason: string;
}

/** Bytes by format. */
export type BytesByFormat = Partial<Record<FormatName, number>>;

/** Memory figures of a step graph. */
export interface MemoryFigures {
  readonly parameters: BytesByFormat;
  readonly gradients: BytesByFormat;
  readonly optimizer: BytesByFormat;
  readonly activations: BytesByFormat;
}

/** Schema of matrix.json. */
export const MATRIX_SCHEMA = "f16repro.matrix/1";

/** Schema of determinism.json. */
export const DETERMINISM_SCHEMA = "f16repro.determinism/1";

/** One re-run compared with its record. */
export interface DeterminismCheck {
  readonly id: string;
  readonly model: string;
  readonly dataset: string;
  readonly precision: string;
  readonly seed: number;
  readonly engine: string;
  readonly kind: "rerun" | "cross-engine";
  readonly weightHash: string;
  readonly rerunWeightHash: string | null;
  readonly metricsHash: string;
  readonly rerunMetricsHash: string | null;
  readonly identical: boolean;
  /** First epoch whose metrics (timings excluded) differ; null when all agree or the re-run failed. */
  readonly firstDifferingEpoch: number | null;
  /** Why the re-run produced no record, when it did not. */
  readonly error?: string;
}

/** Schema of tolerance result files. */
export const TOLERANCE_SCHEMA = "f16repro.tolerance/1";

/** One test input. */
export interface TolerancePoint {
  readonly i: number;
  readonly label: number;
  readonly pred32: number;
  readonly pred16: number;
  readonly delta: number;
  readonly gamma: number;
}

/** The lemma's quantities in one output space. */
export interface ToleranceSpace {
  readonly space: "logits" | "probabilities";
  readonly count: number;
  /** Inputs with Gamma > 2 delta (where the lemma guarantees agreement). */
  readonly satisfied: number;
  readonly satisfiedShare: number;
  /** Inputs whose predictions differ. */
  readonly disagreements: number;
  /** Disagreements at Gamma > 2 delta: must be 0. */
  readonly violations: number;
  /** Accuracy of the reference (fp32) and the 16-bit model on these inputs. */
  readonly accuracy32: number;
  readonly accuracy16: number;
  /** The lemma's bound on |accuracy32 - accuracy16|: the share of inputs with Gamma <= 2 delta. */
  readonly bound: number;
  readonly points: readonly TolerancePoint[];
}

/** A tolerance analysis result (written as JSON). */
export interface ToleranceResult {
  readonly schema: typeof TOLERANCE_SCHEMA;
  readonly model: string;
  readonly dataset: string;
  readonly reference: { readonly id: string; readonly precision: string };
  readonly counterpart:
    | { readonly mode: "rounded"; readonly format: "fp16" | "bf16" }
    | { readonly mode: "independent"; readonly id: string; readonly precision: string };
  /** The engine that computed both outputs (absent in results written before it was recorded: ref). */
  readonly engine?: string;
  readonly logits: ToleranceSpace;
  readonly probabilities: ToleranceSpace;
}
