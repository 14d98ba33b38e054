/**
 * DenseNet-121, DenseNet-169 and Xception as the paper's authors use them:
 * the Keras application networks without top (`include_top=False,
 * weights=None`) on a 32x32x3 input tensor, plus the authors' heads
 * (PAPER.md, "Architectures"): GlobalAvgPool + Dense(10) for the DenseNets,
 * GlobalAvgPool + Dense(1024, ReLU) + Dense(10) for Xception. The softmax
 * lives in the loss, so the last Dense is linear.
 *
 * Keras refuses `input_shape=(32, 32, 3)` for Xception (its minimum is 71x71)
 * but builds it from a 32x32 `input_tensor`, which is how the authors' code
 * builds the DenseNets; every spatial size below is the one Keras gets then.
 * Both builders take a size, so tests can check a shrunk network of the same
 * shape (fewer blocks, fewer channels) against finite differences.
 *
 * Layout is NCHW (Keras: NHWC): weight layouts differ, the maths and the
 * parameter counts do not.
 *
 * @module
 */

import type { ModelBuilder } from "./builder.ts";
import { activation, batchNorm, conv2d, dense, globalAvgPool, pool, separableConv2d } from "./layers.ts";
import type { ModelDef, ModelOptions } from "./zoo.ts";

/** Keras's DenseNet batch norm: default momentum 0.99, epsilon 1.001e-5. */
const DENSE_BN_MOMENTUM = 0.99, DENSE_BN_EPS = 1.001e-5;

/** The shape of a DenseNet. */
export interface DenseNetSize {
  /** Conv blocks in each dense block (Keras: [6, 12, 24, 16] for 121, [6, 12, 32, 32] for 169). */
  readonly blocks: readonly number[];
  /** Channels each conv block adds (Keras: 32); its bottleneck 1x1 conv has 4x as many. */
  readonly growth: number;
  /** Filters of the 7x7 stem conv (Keras: 64). */
  readonly stem: number;
}

/** DenseNet-121 as Keras builds it. */
export const DENSENET121: DenseNetSize = { blocks: [6, 12, 24, 16], growth: 32, stem: 64 };
/** DenseNet-169 as Keras builds it. */
export const DENSENET169: DenseNetSize = { blocks: [6, 12, 32, 32], growth: 32, stem: 64 };

/** BN (DenseNet settings) then ReLU: the pre-activation of every DenseNet conv. */
function denseBnRelu(b: ModelBuilder, x: number): number {
  return activation(b, batchNorm(b, x, DENSE_BN_MOMENTUM, DENSE_BN_EPS), "relu");
}

/**
 * A DenseNet builder. On 32x32 input the spatial sizes are: stem conv 16x16,
 * stem pool 8x8, dense blocks at 8, 4, 2 and 1 pixels (each transition's
 * "valid" 2x2 average pool halves an even size, so nothing is dropped).
 */
export function densenet(size: DenseNetSize): (b: ModelBuilder, x: number, o: ModelOptions) => number {
  return (b, x, o) => {
    // ZeroPadding2D(3) + 7x7/2 "valid" conv without bias: a conv with 3 pixels of zero padding, 32 -> 16.
    let h = conv2d(b, x, size.stem, 7, { stride: 2, padding: 3, useBias: false });
    h = denseBnRelu(b, h);
    // ZeroPadding2D(1) + 3x3/2 "valid" max pool, 16 -> 8. Our pool leaves padded taps out instead of reading
    // zeros; on this ReLU output every value is >= 0, so the maxima are the same. The gradient is the same
    // too: only a window whose real values are all 0 could route it to a padded zero in Keras, and ours
    // routes it to a real 0 whose ReLU gradient is 0, so no input receives anything in either.
    h = pool(b, h, "max", 3, 2, 1);
    size.blocks.forEach((convBlocks, i) => {
      for (let j = 0; j < convBlocks; j++) {
        let y = conv2d(b, denseBnRelu(b, h), 4 * size.growth, 1, { useBias: false });
        y = conv2d(b, denseBnRelu(b, y), size.growth, 3, { padding: "same", useBias: false });
        h = b.op("concat", [h, y], { axis: 1 });
      }
      if (i < size.blocks.length - 1) {
        // Transition: BN-ReLU-1x1 conv to int(0.5 * channels), 2x2/2 average pool.
        const channels = Math.floor(b.shape(h)[1] * 0.5);
        h = pool(b, conv2d(b, denseBnRelu(b, h), channels, 1, { useBias: false }), "avg", 2, 2);
      }
    });
    return dense(b, globalAvgPool(b, denseBnRelu(b, h)), o.classes);
  };
}

/** The shape of an Xception. */
export interface XceptionSize {
  /** Filters of the two plain 3x3 stem convs (Keras: [32, 64]). */
  readonly stem: readonly [number, number];
  /** Widths of the entry flow's downsampling blocks (Keras: [128, 256, 728]); the last is the middle width. */
  readonly entry: readonly number[];
  /** Middle-flow blocks (Keras: 8). */
  readonly middle: number;
  /** Exit flow widths: the downsampling block's, then the two closing separable convs' (Keras: [1024, 1536, 2048]). */
  readonly exit: readonly [number, number, number];
  /** Units of the authors' hidden Dense layer (1024). */
  readonly head: number;
}

/** Xception as Keras builds it, with the authors' Dense(1024) head. */
export const XCEPTION: XceptionSize = {
  stem: [32, 64],
  entry: [128, 256, 728],
  middle: 8,
  exit: [1024, 1536, 2048],
  head: 1024,
};

/** BN with Keras's defaults (Xception sets none). */
const bn = (b: ModelBuilder, x: number) => batchNorm(b, x);
const relu = (b: ModelBuilder, x: number) => activation(b, x, "relu");

/**
 * A downsampling Xception block: two separable convs (widths `w1`, `w2`), a
 * 3x3/2 "same" max pool, plus a 1x1/2 "same" conv + BN shortcut. `preRelu`
 * is false only for the first block, whose input is already a ReLU output.
 */
function downBlock(b: ModelBuilder, x: number, w1: number, w2: number, preRelu: boolean): number {
  const shortcut = bn(b, conv2d(b, x, w2, 1, { stride: 2, padding: "same", useBias: false }));
  let h = preRelu ? relu(b, x) : x;
  h = relu(b, bn(b, separableConv2d(b, h, w1, 3, "same")));
  h = bn(b, separableConv2d(b, h, w2, 3, "same"));
  // "same" pads of a 3x3/2 window: [1, 1] on 13 and 7 pixels, [0, 1] on 4 and 2 (TensorFlow puts the odd
  // pixel after); the max leaves them out, as TensorFlow's pooling does.
  return b.op("add", [pool(b, h, "max", 3, 2, "same"), shortcut]);
}

/**
 * An Xception builder. On 32x32 input: stem convs ("valid") 15x15 and 13x13,
 * entry blocks to 7, 4 and 2 pixels, middle flow at 2x2, exit block to 1x1,
 * closing separable convs at 1x1.
 */
export function xception(size: XceptionSize): (b: ModelBuilder, x: number, o: ModelOptions) => number {
  return (b, x, o) => {
    let h = relu(b, bn(b, conv2d(b, x, size.stem[0], 3, { stride: 2, useBias: false })));
    h = relu(b, bn(b, conv2d(b, h, size.stem[1], 3, { useBias: false })));
    size.entry.forEach((width, i) => (h = downBlock(b, h, width, width, i > 0)));
    const mid = size.entry.at(-1)!;
    for (let i = 0; i < size.middle; i++) {
      let r = h;
      for (let j = 0; j < 3; j++) r = bn(b, separableConv2d(b, relu(b, r), mid, 3, "same"));
      h = b.op("add", [r, h]);
    }
    const [exitWidth, close1, close2] = size.exit;
    h = downBlock(b, h, mid, exitWidth, true);
    h = relu(b, bn(b, separableConv2d(b, h, close1, 3, "same")));
    h = relu(b, bn(b, separableConv2d(b, h, close2, 3, "same")));
    h = dense(b, globalAvgPool(b, h), size.head, "relu");
    return dense(b, h, o.classes);
  };
}

/** DenseNet-121/169 and Xception by name (input [N, 3, 32, 32]). */
export const ZOO_DENSE_XCEPTION: Readonly<Record<string, ModelDef>> = {
  densenet121: {
    name: "densenet121",
    description:
      "Keras DenseNet-121 without top (dense blocks 6/12/24/16, growth 32), global average pool, " +
      "logits",
    build: densenet(DENSENET121),
  },
  densenet169: {
    name: "densenet169",
    description:
      "Keras DenseNet-169 without top (dense blocks 6/12/32/32, growth 32), global average pool, " +
      "logits",
    build: densenet(DENSENET169),
  },
  xception: {
    name: "xception",
    description: "Keras Xception without top (entry 128/256/728, 8 middle blocks, exit 1024/1536/2048), " +
      "global average pool, Dense1024 ReLU, logits",
    build: xception(XCEPTION),
  },
};
