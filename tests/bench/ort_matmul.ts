/**
 * External yardstick for the fp32 matmul benchmarks: how fast onnxruntime-node's CPU
 * execution provider runs a single MatMul node.
 *
 * The model (A[M,K] x B[K,N] -> C[M,N], both operands fed as graph inputs) is assembled in
 * memory and serialised with onnx-proto's generated protobufjs classes, so no .onnx file is
 * needed. onnxruntime-node loads lazily (kernels/ort/runtime.ts): loading this module needs no
 * permissions, while actually using ORT needs `--allow-ffi` for its native addon. Callers should
 * ask {@link ortAvailable} first and report a skip if it says no.
 */

import { ELEM, OnnxGraph } from "../../kernels/ort/onnx_graph.ts";
import { loadOrt, loadProto, ortVersion } from "../../kernels/ort/runtime.ts";

/**
 * Checks whether onnxruntime-node can be loaded in this process.
 * @returns `undefined` when it loads, otherwise a short human-readable reason (for example the
 *   permission error raised without `--allow-ffi`), suitable for printing as "skipped: <reason>".
 */
export async function ortAvailable(): Promise<string | undefined> {
  try {
    await loadOrt();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The ONNX model whose only node is C = MatMul(A, B), built like the ort engine's models. */
async function matmulModel(m: number, k: number, n: number): Promise<Uint8Array> {
  const g = new OnnxGraph();
  g.input("A", ELEM.FLOAT, [m, k]);
  g.input("B", ELEM.FLOAT, [k, n]);
  g.nodeTo("MatMul", ["A", "B"], "C");
  g.output("C", ELEM.FLOAT, [m, n]);
  return g.encode(await loadProto(), "matmul");
}

const randomData = (len: number) => Float32Array.from({ length: len }, () => Math.random() * 2 - 1);

/**
 * Measures onnxruntime-node's fp32 MatMul throughput for C[m,n] = A[m,k] x B[k,n].
 *
 * A fresh session is created with `intraOpNumThreads: threads`, one inter-op thread, sequential
 * execution and all graph optimisations. After a short warm-up (which also spot-checks one
 * output element against a scalar dot product) each repeat keeps calling `run` until at least
 * `minMs` have elapsed; the result is the median repeat.
 *
 * @param m rows of A and C; `k`: columns of A / rows of B; `n`: columns of B and C
 * @param threads ORT intra-op thread count
 * @param opts `repeats` (default 5) timed repeats; `minMs` (default 300) minimum duration of each
 * @returns median GFLOP/s (2*m*k*n flops per call), the matching milliseconds per call, and the
 *   onnxruntime-node version string
 * @throws if onnxruntime-node cannot be loaded (see {@link ortAvailable}) or the result is wrong
 */
export async function ortMatmulGflops(
  m: number,
  k: number,
  n: number,
  threads: number,
  opts: { repeats?: number; minMs?: number } = {},
): Promise<{ gflops: number; msPerCall: number; version: string }> {
  const { repeats = 5, minMs = 300 } = opts;
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(await matmulModel(m, k, n), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  try {
    const a = randomData(m * k), b = randomData(k * n);
    const feeds = { A: new ort.Tensor("float32", a, [m, k]), B: new ort.Tensor("float32", b, [k, n]) };
    const first = (await session.run(feeds)).C.data as Float32Array;
    let expect = 0;
    for (let i = 0; i < k; i++) expect += a[i] * b[i * n];
    if (Math.abs(first[0] - expect) > 1e-3 * (1 + Math.abs(expect))) {
      throw new Error(`ORT MatMul sanity check failed: got ${first[0]}, expected ${expect}`);
    }
    const warmEnd = performance.now() + Math.min(minMs, 100);
    while (performance.now() < warmEnd) await session.run(feeds);
    const msPerCall: number[] = [];
    for (let r = 0; r < Math.max(1, repeats); r++) {
      const t0 = performance.now();
      let calls = 0, elapsed = 0;
      do {
        await session.run(feeds);
        calls++;
        elapsed = performance.now() - t0;
      } while (elapsed < minMs);
      msPerCall.push(elapsed / calls);
    }
    msPerCall.sort((x, y) => x - y);
    const mid = msPerCall.length >> 1;
    const med = msPerCall.length % 2 ? msPerCall[mid] : (msPerCall[mid - 1] + msPerCall[mid]) / 2;
    return { gflops: (2 * m * k * n) / (med * 1e6), msPerCall: med, version: ortVersion(ort) };
  } finally {
    await session.release();
  }
}
