/**
 * The model registry. A model turns a data input node into logits using the
 * layers of layers.ts: the MLP and small CNN of the quick profile, and the
 * paper's CIFAR-10 networks (zoo_cnn.ts, zoo_resnet_vit.ts,
 * zoo_dense_xception.ts).
 *
 * @module
 */

import type { ModelBuilder } from "./builder.ts";
import { conv2d, dense, flatten, pool } from "./layers.ts";
import { ZOO_CNN } from "./zoo_cnn.ts";
import { ZOO_DENSE_XCEPTION } from "./zoo_dense_xception.ts";
import { ZOO_RESNET_VIT } from "./zoo_resnet_vit.ts";

/** Options every model receives. */
export interface ModelOptions {
  /** Number of classes (size of the logits). */
  readonly classes: number;
  /** Hidden layer widths (MLP). */
  readonly hidden: readonly number[];
}

/** A registered model. */
export interface ModelDef {
  readonly name: string;
  readonly description: string;
  /** The one input shape [C, H, W] the model is built for, when it has one (the CIFAR-10 networks). */
  readonly input?: readonly [number, number, number];
  /**
   * The parameters (by name) that weight decay applies to, when the model's authors chose some; default
   * every conv and dense kernel (lib/train/optimizer.ts).
   */
  readonly decays?: (param: string) => boolean;
  /** Adds the forward pass; `x` is [N, C, H, W]; returns logits [N, classes]. */
  build(b: ModelBuilder, x: number, o: ModelOptions): number;
}

/** The small models of the quick profile. */
const SMALL: Readonly<Record<string, ModelDef>> = {
  mlp: {
    name: "mlp",
    description: "flatten, dense ReLU layers of --hidden widths, dense logits",
    build(b, x, o) {
      let h = flatten(b, x);
      for (const width of o.hidden) h = dense(b, h, width, "relu");
      return dense(b, h, o.classes);
    },
  },
  cnn: {
    name: "cnn",
    description:
      "LeNet-like: conv6 5x5 same ReLU, maxpool 2, conv16 5x5 ReLU, maxpool 2, dense 120, 84 ReLU, logits",
    build(b, x, o) {
      let h = conv2d(b, x, 6, 5, { padding: "same", activation: "relu" });
      h = pool(b, h, "max", 2);
      h = conv2d(b, h, 16, 5, { activation: "relu" });
      h = pool(b, h, "max", 2);
      h = flatten(b, h);
      h = dense(b, h, 120, "relu");
      h = dense(b, h, 84, "relu");
      return dense(b, h, o.classes);
    },
  },
};

/** Every registered model by name: the small ones, then the paper's CIFAR-10 networks. */
export const MODELS: Readonly<Record<string, ModelDef>> = {
  ...SMALL,
  ...cifar(ZOO_CNN),
  ...cifar(ZOO_RESNET_VIT),
  ...cifar(ZOO_DENSE_XCEPTION),
};

/** Marks the paper's networks as built for 3x32x32 CIFAR-10 images. */
function cifar(models: Readonly<Record<string, ModelDef>>): Record<string, ModelDef> {
  return Object.fromEntries(
    Object.entries(models).map(([k, m]) => [k, { ...m, input: [3, 32, 32] as const }]),
  );
}

/** The model with this name, or an error listing the known models. */
export function modelByName(name: string): ModelDef {
  const m = Object.hasOwn(MODELS, name) ? MODELS[name] : undefined;
  if (!m) throw new RangeError(`Unknown model "${name}": expected one of ${Object.keys(MODELS).join(", ")}`);
  return m;
}
