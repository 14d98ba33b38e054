/**
 * The paper's pre-activation CIFAR ResNets (32/56/110 layers) and its small
 * Vision Transformers (8/12 blocks), rebuilt from the authors' Keras code as
 * PAPER.md describes it, so that f16repro trains the same networks the
 * paper's Table 5 timed and scored. Everything that makes these networks
 * unusual is kept on purpose and flagged where it happens: the ResNet head's
 * 4096-wide ReLU layer, the pre-activation shortcut of the very first unit,
 * and the ViT's flatten-everything classifier.
 *
 * Layout is NCHW for images and [N, T, D] for tokens; the authors' code is
 * NHWC, which changes weight layouts but not the maths or parameter counts.
 *
 * @module
 */

import type { ModelBuilder } from "./builder.ts";
import {
  activation,
  batchNorm,
  conv2d,
  dense,
  dropout,
  flatten,
  globalAvgPool,
  layerNorm,
  pool,
  selfAttention,
} from "./layers.ts";
import type { ModelDef, ModelOptions } from "./zoo.ts";

/** Batch-norm settings of the authors' ResNet (the Keras defaults, passed explicitly there). */
const BN_MOMENTUM = 0.99, BN_EPS = 1e-3;

/**
 * Class count that selects the authors' literal ResNet head: their last layer
 * is Dense(4096, ReLU) followed by a softmax, so the network is a 4096-way
 * classifier trained on labels 0-9.
 */
export const RESNET_QUIRK_CLASSES = 4096;

/** BN then ReLU, the pre-activation that opens every unit and the head. */
function bnRelu(b: ModelBuilder, x: number): number {
  return activation(b, batchNorm(b, x, BN_MOMENTUM, BN_EPS), "relu");
}

/**
 * One pre-activation unit: BN-ReLU-Conv3x3(stride)-BN-ReLU-Conv3x3 plus the
 * shortcut. `fromPreact` reproduces the authors' code, where only the first
 * unit of the first stage takes its shortcut after BN-ReLU; every other unit
 * adds its raw input.
 */
function resUnit(b: ModelBuilder, x: number, width: number, stride: number, fromPreact: boolean): number {
  const widthIn = b.shape(x)[1];
  const preact = bnRelu(b, x);
  let shortcut = fromPreact ? preact : x;
  // Option A (parameter-free): the authors test only the width, which in these networks changes exactly
  // where the stride is 2; testing both keeps a stride-2 unit of equal width shape-correct too.
  if (width !== widthIn || stride !== 1) {
    shortcut = pool(b, shortcut, "avg", 2, 2, "same");
    // Their tf.pad splits the new channels evenly; the floor/remainder split only matters for odd gaps,
    // which their code cannot handle and these widths never produce.
    const before = Math.floor((width - widthIn) / 2);
    shortcut = b.op("pad_channels", [shortcut], { before, after: width - widthIn - before });
  }
  let r = conv2d(b, preact, width, 3, { stride, padding: "same" });
  r = conv2d(b, bnRelu(b, r), width, 3, { padding: "same" });
  return b.op("add", [r, shortcut]);
}

/**
 * The authors' CIFAR ResNet of `depth` layers: n = (depth - 2) / 6 units per
 * stage (widths 16/32/64, strides 1/2/2) after a 3x3 stem.
 *
 * Head: BN-ReLU-GlobalAvgPool, a 1x1 conv to 10 channels on the pooled
 * [N, 64, 1, 1] map (a dense layer in disguise, kept as a conv so parameter
 * names match the code), Flatten, Dense(4096, ReLU). In the authors' code that
 * ReLU layer IS the output: a softmax over 4096 ReLU'd values, of which only
 * 0-9 ever carry a label. f16repro's loss needs [N, classes] logits, so:
 * - classes === 4096 builds that literal network (logits = the ReLU output);
 * - otherwise (the normal 10-way case) Dense(4096, ReLU) stays as a hidden
 *   layer and a Dense(classes) produces the logits. For 10 classes this adds
 *   exactly 4096 * 10 + 10 = 40,970 parameters to the authors' count (e.g.
 *   ResNet-32: 553,588 here against their 512,618).
 * The 1x1 conv keeps the authors' 10 channels in the quirk network and
 * follows `classes` otherwise.
 */
function resnet(depth: number): (b: ModelBuilder, x: number, o: ModelOptions) => number {
  if ((depth - 2) % 6 !== 0) throw new RangeError(`ResNet depth ${depth} is not 6n + 2`);
  const units = (depth - 2) / 6;
  return (b, x, o) => {
    let h = conv2d(b, x, 16, 3, { padding: "same" });
    const stages: [number, number][] = [[16, 1], [32, 2], [64, 2]];
    stages.forEach(([width, stride], s) => {
      for (let i = 0; i < units; i++) h = resUnit(b, h, width, i === 0 ? stride : 1, s === 0 && i === 0);
    });
    const pooled = globalAvgPool(b, bnRelu(b, h));
    const [n, c] = b.shape(pooled);
    const quirk = o.classes === RESNET_QUIRK_CLASSES;
    h = b.op("reshape", [pooled], { shape: [n, c, 1, 1] });
    h = flatten(b, conv2d(b, h, quirk ? 10 : o.classes, 1, { padding: "same" }));
    h = dense(b, h, 4096, "relu");
    return quirk ? h : dense(b, h, o.classes);
  };
}

/** ViT settings of the authors' code (PAPER.md "Architectures"). */
const VIT = { patch: 6, dim: 64, heads: 4, mlp: 512, dropout: 0.1, lnEps: 1e-6, head: [512, 512] } as const;

/**
 * One post-LN transformer block as the authors write it: attention, dropout,
 * residual, LayerNorm; then Dense(512, GELU)-Dense(64), one dropout on the MLP
 * output (none between the two dense layers), residual, LayerNorm.
 */
function vitBlock(b: ModelBuilder, x: number): number {
  const att = dropout(b, selfAttention(b, x, VIT.heads, VIT.dim), VIT.dropout);
  const h = layerNorm(b, b.op("add", [x, att]), VIT.lnEps);
  const mlp = dropout(b, dense(b, dense(b, h, VIT.mlp, "gelu"), VIT.dim), VIT.dropout);
  return layerNorm(b, b.op("add", [h, mlp]), VIT.lnEps);
}

/**
 * The authors' ViT with `blocks` transformer blocks: non-overlapping 6x6
 * patches (VALID, so 25 from 32x32, the last 2 rows and columns unused),
 * linear projection to 64 plus a learned position embedding, the blocks, a
 * final LayerNorm, then Flatten (no class token, no pooling), Dropout 0.5,
 * Dense(512, GELU) twice and the logits.
 */
function vit(blocks: number): (b: ModelBuilder, x: number, o: ModelOptions) => number {
  return (b, x, o) => {
    // A stride-6 6x6 conv is the authors' extract-patches + Dense(64), with the kernel laid out per
    // channel instead of per pixel; the maths and the 3*36*64 + 64 parameters are the same.
    const p = conv2d(b, x, VIT.dim, VIT.patch, { stride: VIT.patch, name: "patch_encoder/projection" });
    const [n, d, ph, pw] = b.shape(p), t = ph * pw;
    let h = b.op("transpose", [b.op("reshape", [p], { shape: [n, d, t] })], { perm: [0, 2, 1] });
    // Keras Embedding initialiser: uniform in [-0.05, 0.05].
    const pos = b.param("position_embedding/embeddings", [t, d], { kind: "uniform", limit: 0.05 });
    h = b.op("bias_add", [h, pos], { axis: 1 });
    for (let i = 0; i < blocks; i++) h = vitBlock(b, h);
    h = dropout(b, flatten(b, layerNorm(b, h, VIT.lnEps)), 0.5);
    for (const units of VIT.head) h = dense(b, h, units, "gelu");
    return dense(b, h, o.classes);
  };
}

/** The paper's ResNet and ViT CIFAR-10 networks by name (input [N, 3, 32, 32]). */
export const ZOO_RESNET_VIT: Readonly<Record<string, ModelDef>> = Object.fromEntries(
  [
    ...[32, 56, 110].map((depth): ModelDef => ({
      name: `resnet${depth}`,
      description: `pre-activation CIFAR ResNet-${depth} (${(depth - 2) / 6} units/stage, widths 16/32/64, ` +
        "option-A shortcuts), head GAP-conv1x1-Dense4096 ReLU-logits",
      build: resnet(depth),
      // The authors' L2 1e-4 is a kernel_regularizer on the conv layers only (the head's 1x1 conv
      // included); the Dense(4096) head kernel is not decayed.
      decays: (param: string) => /^conv2d(_\d+)?\/kernel$/.test(param),
    })),
    ...[8, 12].map((blocks): ModelDef => ({
      name: `vit${blocks}`,
      description: `ViT-${blocks}: 6x6 patches to 64, ${blocks} post-LN blocks (4 heads, MLP 512 GELU), ` +
        "flatten, Dense512 GELU x2, logits",
      build: vit(blocks),
    })),
  ].map((m) => [m.name, m]),
);
