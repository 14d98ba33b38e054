/**
 * The paper's reference numbers (PAPER.md, Table 5: CIFAR-10, 100 epochs,
 * the authors' GPU), which the report shows beside ours. They are data
 * transcribed from the paper, never used as results.
 *
 * @module
 */

/** One row of Table 5. Accuracies in %, times in seconds for the whole 100-epoch fit. */
export interface PaperRow {
  readonly model: string;
  /** Parameters in millions as printed. */
  readonly paramsM: number;
  readonly acc: {
    readonly fp16: readonly [number, number];
    readonly fp32: readonly [number, number];
    readonly mixed: readonly [number, number];
  };
  readonly seconds: { readonly fp16: number; readonly fp32: number; readonly mixed: number };
}

const row = (
  model: string,
  paramsM: number,
  fp16: [number, number],
  fp32: [number, number],
  mixed: [number, number],
  s16: number,
  s32: number,
  smp: number,
): PaperRow => ({
  model,
  paramsM,
  acc: { fp16, fp32, mixed },
  seconds: { fp16: s16, fp32: s32, mixed: smp },
});

/** Table 5 of the paper, mean and std over seeds. */
export const TABLE5: readonly PaperRow[] = [
  row("AlexNet", 2.09, [76.0, 0.3], [75.8, 0.3], [75.9, 0.3], 96, 174, 150),
  row("VGG-16", 33.76, [83.7, 0.3], [83.9, 0.2], [83.8, 0.2], 377, 857, 455),
  row("VGG-19", 38.36, [83.8, 0.2], [83.9, 0.3], [83.9, 0.2], 416, 937, 492),
  row("ResNet-32", 0.47, [80.9, 0.3], [80.9, 0.4], [80.9, 0.3], 413, 551, 483),
  row("ResNet-56", 0.86, [81.6, 0.4], [81.4, 0.6], [81.5, 0.6], 677, 905, 795),
  row("ResNet-110", 1.78, [81.8, 0.4], [81.4, 0.5], [81.8, 0.5], 1256, 1712, 1486),
  row("DenseNet-121", 7.04, [72.1, 0.3], [72.6, 0.4], [73.0, 0.3], 539, 720, 641),
  row("DenseNet-169", 12.65, [71.7, 0.5], [72.3, 0.3], [72.1, 0.3], 724, 966, 812),
  row("Xception", 22.96, [75.9, 0.4], [76.3, 0.3], [76.3, 0.4], 324, 611, 412),
  row("MobileNetV2", 2.27, [69.4, 1.1], [70.0, 1.2], [70.0, 1.1], 353, 588, 411),
  row("ViT-8", 2.02, [71.0, 0.3], [71.3, 0.3], [71.2, 0.3], 316, 423, 410),
  row("ViT-12", 2.55, [71.1, 0.3], [71.4, 0.3], [71.5, 0.3], 425, 663, 629),
];

/** Our model name of each Table 5 network. */
export const OUR_MODEL: Readonly<Record<string, string>> = {
  "AlexNet": "alexnet",
  "VGG-16": "vgg16",
  "VGG-19": "vgg19",
  "ResNet-32": "resnet32",
  "ResNet-56": "resnet56",
  "ResNet-110": "resnet110",
  "DenseNet-121": "densenet121",
  "DenseNet-169": "densenet169",
  "Xception": "xception",
  "MobileNetV2": "mobilenet",
  "ViT-8": "vit8",
  "ViT-12": "vit12",
};

/** The summary values as printed in the paper. */
export const PRINTED_MEANS = {
  fp16MinusFp32: -0.2,
  fp16MinusMixed: -0.2,
  fp32OverFp16: 1.6,
  mixedOverFp16: 1.3,
};

/** Known misprints: the report shows the computed value and flags the printed one. */
export const ERRATA: readonly {
  readonly model: string;
  readonly field: string;
  readonly printed: string;
  readonly note: string;
}[] = [
  { model: "ViT-12", field: "FP16-MP", printed: "-0.004", note: "the accuracies give -0.4" },
];

/** Means over the table computed from the rows (what the printed summary should say). */
export function tableMeans(rows: readonly PaperRow[] = TABLE5) {
  const mean = (f: (r: PaperRow) => number) => rows.reduce((s, r) => s + f(r), 0) / rows.length;
  return {
    fp16MinusFp32: mean((r) => r.acc.fp16[0] - r.acc.fp32[0]),
    fp16MinusMixed: mean((r) => r.acc.fp16[0] - r.acc.mixed[0]),
    fp32OverFp16: mean((r) => r.seconds.fp32 / r.seconds.fp16),
    mixedOverFp16: mean((r) => r.seconds.mixed / r.seconds.fp16),
  };
}
