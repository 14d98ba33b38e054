/**
 * onnxruntime's NCHWc block size on this machine, found by asking onnxruntime itself.
 *
 * onnxruntime's CPU provider has blocked convolution kernels (the com.microsoft.nchwc operators) whose
 * tensors hold channels in blocks of MlasNchwcGetBlockSize() (8 with AVX2, 16 with AVX-512): a ReorderInput
 * of 4 channels pads them to one block, so the channel count of its output is the block size. The
 * convolution lowering needs that number to write the weights in the blocked kernels' layout.
 *
 * @module
 */

import type { CSessionOptions, OrtC } from "./capi.ts";
import { ELEM, OnnxGraph } from "./onnx_graph.ts";
import { loadProto } from "./runtime.ts";

/** The NCHWc operators' domain in onnxruntime. */
export const NCHWC_DOMAIN = "com.microsoft.nchwc";

/**
 * The block size of onnxruntime's NCHWc kernels, or 0 where the library has none (its blocked operators
 * are not registered, or a block would be a single channel).
 */
export async function nchwcBlock(ort: OrtC): Promise<number> {
  const g = new OnnxGraph();
  g.input("x", ELEM.FLOAT, [1, 4, 1, 1]);
  const shape = g.node("Shape", [g.node(`${NCHWC_DOMAIN}:ReorderInput`, ["x"])]);
  g.nodeTo("Cast", [g.node("Slice", [shape, g.i64([1]), g.i64([2])])], "block", { to: ELEM.FLOAT });
  g.output("block", ELEM.FLOAT, [1]);
  const options: CSessionOptions = {
    intraOpThreads: 1,
    interOpThreads: 1,
    sequential: true,
    optimizationLevel: 0,
    config: {},
  };
  let session;
  try {
    session = ort.createSession(g.encode(await loadProto(), "nchwc_probe"), ["x"], ["block"], options);
  } catch {
    return 0; // no com.microsoft.nchwc operators in this build
  }
  try {
    const block = new Float32Array(1);
    session.run({ x: { data: new Float32Array(4), shape: [1, 4, 1, 1] } }, {
      block: { data: block, shape: [1] },
    });
    return block[0] > 1 ? block[0] : 0;
  } finally {
    session.release();
  }
}
