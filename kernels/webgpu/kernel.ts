/**
 * The webgpu engine's kernel contract: what a kernel receives and the passes it returns.
 *
 * How to add an op (one entry in an ops_*.ts file, one spread line in ops.ts if the file is new):
 *
 * 1. Write a {@linkcode GpuKernel}: `(a: GpuKernelArgs) => GpuPass[]`. Read shapes and attributes from
 *    `a.node`, `a.x` (the inputs) and `a.y` (the output); bake them into the WGSL as constants.
 * 2. Most ops are one {@linkcode MapPass}: WGSL that defines `fn value(i: u32) -> f32`, the value of output
 *    element `i` before its final rounding. The compiler calls it once per element (twice per thread for
 *    16-bit outputs, which are packed two to a u32 word) and rounds the result to the output format. Inside
 *    it, `x0(j)`, `x1(j)`, ... load input element `j` widened to f32 (exact), `racc(v)` rounds to the graph's
 *    accumulate format, and the prelude (prelude.ts, wgsl_math.ts) gives format helpers and `exp_`, `log_`,
 *    `tanh_`, `erf_`, `gelu_`, `gelu_grad_`, built from exactly specified operations only. An op that is
 *    one IEEE operation of its inputs (or a selection, or a copy) is written once against {@linkcode Arith}
 *    with {@linkcode arithKernel}: with fp16 operands its `value` returns f16, computed in WGSL f16 from
 *    `h0(j)`, `h1(j)`, ... (fp16 loads), and is stored as it is.
 * 3. Anything else (workgroup memory, several threads per output) is a {@linkcode CustomPass}: WGSL that
 *    defines the entry point `main` with the attributes it needs ({@linkcode threadsPass} writes a 1-D one);
 *    `st_y(i, v)` rounds `v` to the output format and stores it (for 16-bit outputs into an f32 staging
 *    area that the compiler packs afterwards, so a custom pass never writes half a word). `scr`
 *    (array<atomic<u32>, 64>) is scratch shared by the passes of one node, words 0 to 62, for integer counts
 *    only (word 63 stays 0: `opq` reads it); floating-point sums never use atomics, so every run adds in the
 *    same order and repeats its bits. `a.cpu` says the adapter is a CPU (lavapipe), where a kernel may pick
 *    a variant with the same bits (matmul does).
 * 4. Follow kernels/ref/kernel.ts: elementwise work of several operations is done in f32 (wide enough for
 *    16-bit inputs) and rounded once, never in f16 (which would round each step); dot products and reductions add sequentially over the reduced index, rounding every
 *    product and partial sum with `racc` (no fma: WGSL `a * b + c` is two roundings on lavapipe). Drivers
 *    simplify `(a + b) - a` to `b`: pass a value through `opq(x)` where an error term must survive.
 * 5. Run tests/conformance_webgpu_test.ts: it fails until the new op has been compared with ref.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { Node } from "../../lib/graph/graph.ts";

/** A tensor as a kernel sees it. */
export interface GpuOperand {
  readonly format: FormatName;
  readonly shape: readonly number[];
  /** Element count. */
  readonly size: number;
}

/** Arguments of one kernel call: one node of the step graph. */
export interface GpuKernelArgs {
  readonly node: Node;
  /** The inputs, in the order of `node.inputs`; WGSL reads input k as `xk(i)`. */
  readonly x: readonly GpuOperand[];
  readonly y: GpuOperand;
  /** The graph's accumulate format (what `racc` rounds to). */
  readonly acc: FormatName;
  /** True when the adapter is a CPU (lavapipe): a kernel may pick a variant that suits it (same bits). */
  readonly cpu: boolean;
}

/** One output element per call of `fn value(i: u32) -> f32` (`-> f16` when `half`). */
export interface MapPass {
  readonly kind: "map";
  readonly code: string;
  /**
   * True when `value` returns f16: the op computes in WGSL f16 arithmetic (its output and the inputs it
   * computes with are fp16), and the compiler stores the values as they are, with no rounding of its own.
   */
  readonly half?: boolean;
  /**
   * The most loop iterations one thread runs, all loops counted, per output element of a map (absent: few).
   * Mesa's llvmpipe (lavapipe) ends a thread's loops after 65535 iterations and goes on with wrong values, so
   * the compiler refuses a pass that may pass that on it (kernels/webgpu/loop_cap.ts).
   */
  readonly loops?: number;
}

/** A pass with its own `main` entry point, dispatched as `workgroups` (x, y, z). */
export interface CustomPass {
  readonly kind: "custom";
  readonly code: string;
  readonly workgroups: readonly [number, number, number];
  /**
   * The most loop iterations one thread runs, all loops counted, per output element of a map (absent: few).
   * Mesa's llvmpipe (lavapipe) ends a thread's loops after 65535 iterations and goes on with wrong values, so
   * the compiler refuses a pass that may pass that on it (kernels/webgpu/loop_cap.ts).
   */
  readonly loops?: number;
}

/** A pass of a kernel; a node's passes run in order. */
export type GpuPass = MapPass | CustomPass;

/** A webgpu kernel: the passes that compute one node. */
export type GpuKernel = (a: GpuKernelArgs) => readonly GpuPass[];

/**
 * How a map kernel spells its arithmetic: in f32 (any format; rounded to the output format once, or by `ry`
 * where the policy rounds an intermediate) or in WGSL f16 (fp16 operands and output). One body, written
 * against this, gives both; the f32 spelling is the text the engine has always generated.
 */
export interface Arith {
  /** The WGSL type the op computes in. */
  readonly type: "f32" | "f16";
  /** WGSL: input k at index expression `i`, in `type`. */
  x(k: number, i: string): string;
  /** WGSL: the constant `v`, exact in `type` (the caller has rounded it to the output format). */
  lit(v: number): string;
  /** WGSL zero of `type`. */
  readonly zero: string;
  /** The WGSL function that rounds an intermediate to the output format (in f16: hides it from fusion). */
  readonly round: string;
  /** The WGSL function that rounds an f32 expression to the output format, giving `type`. */
  readonly fromF32: string;
  /** The WGSL NaN test for `type`. */
  readonly isNan: string;
}

/** The f32 spelling (every format). */
export const F32_ARITH: Arith = {
  type: "f32",
  x: (k, i) => `x${k}(${i})`,
  lit: f32Lit,
  zero: "0.0f",
  round: "ry",
  fromF32: "ry",
  isNan: "is_nan",
};

/** The f16 spelling: inputs read by `hk(i)`, the helpers of prelude.ts's PRELUDE_F16. */
export const F16_ARITH: Arith = {
  type: "f16",
  x: (k, i) => `h${k}(${i})`,
  lit: hLit,
  zero: "0.0h",
  round: "rh",
  fromF32: "h_of",
  isNan: "is_nan_h",
};

/** True when the output and inputs `ks` (default: every input) are fp16, so the op may compute in f16. */
export function fp16Operands(a: GpuKernelArgs, ks?: readonly number[]): boolean {
  return a.y.format === "fp16" && (ks ?? a.x.map((_, k) => k)).every((k) => a.x[k].format === "fp16");
}

/**
 * A one-pass map kernel whose body (of `value`) is written against {@linkcode Arith}: in WGSL f16 where
 * `native(a)` says the op may compute in f16, else in f32 exactly as {@linkcode mapKernel} writes it.
 */
export function arithKernel(
  native: (a: GpuKernelArgs) => boolean,
  body: (a: GpuKernelArgs, t: Arith) => string,
): GpuKernel {
  return (a) =>
    native(a)
      ? [{ kind: "map", half: true, code: `fn value(i: u32) -> f16 {\n${body(a, F16_ARITH)}\n}` }]
      : mapKernel((a) => body(a, F32_ARITH))(a);
}

/** A one-pass map kernel from a function of the arguments to the body of `value`. */
export function mapKernel(body: (a: GpuKernelArgs) => string): GpuKernel {
  return (a) => [{ kind: "map", code: `fn value(i: u32) -> f32 {\n${body(a)}\n}` }];
}

/** Threads per workgroup of {@linkcode threadsPass}. */
export const WORKGROUP = 64;

/**
 * A custom pass of `threads` threads in workgroups of {@linkcode WORKGROUP}: `body` is WGSL run with the
 * thread index in `t` (threads past `threads` return first).
 */
export function threadsPass(threads: number, body: string): CustomPass {
  const groups = Math.max(1, Math.ceil(threads / WORKGROUP)), x = Math.min(groups, 65535);
  return {
    kind: "custom",
    code: `@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * ${x * WORKGROUP}u;
  if (t >= ${threads}u) { return; }
${body}
}`,
    workgroups: [x, Math.ceil(groups / x), 1],
  };
}

/** A WGSL f32 expression whose value is exactly `v` rounded to f32 (bits, so no parser rounding). */
export function f32Lit(v: number): string {
  const bits = new Uint32Array(Float32Array.of(v).buffer)[0];
  return `bitcast<f32>(0x${bits.toString(16)}u)`;
}

/**
 * A WGSL f16 expression whose value is exactly `v` rounded to fp16: the f32 of the same value, converted
 * (exact, so no rounding mode is involved; naga refuses some exact hexadecimal f16 literals).
 */
export function hLit(v: number): string {
  return `f16(${f32Lit(Math.fround(new Float16Array([v])[0]))})`;
}

/** A WGSL u32 literal. */
export function u32Lit(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`Not a u32: ${v}`);
  return `${v}u`;
}
