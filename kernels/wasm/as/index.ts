/**
 * Entry of the wasm engine's kernel module: every kernel the host calls (kernels/wasm/ops.ts and
 * lower_window.ts), and the enums of codes and layouts the host writes. Memory is imported and shared between
 * the main thread and the workers; kernels never allocate, the host lays out every buffer. kernels/wasm/build.ts
 * generates the host's side of this boundary (the enums' values, each export's typed signature) from here.
 */

export { Format } from "./format";
export { GemmJob } from "./gemm";
export { Map1, Map2 } from "./pointwise";
export { Groups } from "./norm";

export { setHalfTable } from "./format";
export { setErfcTable } from "./math";
export { gemmTiles, matmulDirect, packA, packB } from "./gemm";
export { allFinite, biasAdd, countLost, countLostInto, nonFiniteInto, copy, copyAxis, dropout, map1, map2, roundLanes, sumTo, transpose, widen } from "./pointwise";
export { countCorrect, softmax, softmaxGrad, softmaxXent, softmaxXentGrad } from "./softmax";
export { affineGrad, ema, inferStats, inputGrad, normalize, setGroups, stats, writeMoments } from "./norm";
export { adamApply, adamMoment, sgdApply, sgdMomentum, sgdVelocity } from "./optim";
export {
  argmaxes,
  avgpool,
  col2imPanel,
  conv2dDirect,
  conv2dGradInputDirect,
  conv2dGradWeightDirect,
  im2col,
  maxpool,
  maxpoolGrad,
} from "./window";
export { setGeometry } from "./geometry";
export { depthwise, depthwiseGradInput, depthwiseGradWeight } from "./depthwise";
export { exp, gelu, geluGrad, hashUniform, log, tanh } from "./math";
export { round } from "./format";

/** The end of the module's static data: the host places its buffers above it. */
export function heapBase(): usize {
  return __heap_base;
}
