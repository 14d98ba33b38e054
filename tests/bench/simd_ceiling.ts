/**
 * The ceiling of an exact gemm in WebAssembly SIMD on this machine: how many four-wide f32 multiplies and
 * adds (no fused multiply-add, as the bit-exact contract demands) one core retires per second when
 * nothing else limits it. Twelve independent chains of multiplies and adds in registers, compiled with
 * AssemblyScript at run time; each four-wide op is four of a gemm's flops (a multiply-add pair is two),
 * so no exact wasm gemm on this core can exceed the GFLOP/s it returns.
 *
 * @module
 */

import asc from "assemblyscript/asc";

// Six multiply chains and six add chains: enough in flight to cover their latencies, few enough that V8
// keeps all of them (and the two operands) in the sixteen SIMD registers it uses on x86-64.
const SOURCE = `
export function chains(p: usize, n: i32): void {
  const c = v128.load(p), z = v128.load(p, 16);
  let m0 = v128.load(p, 32), m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0;
  let a0 = m0, a1 = m0, a2 = m0, a3 = m0, a4 = m0, a5 = m0;
  for (let i = 0; i < n; i++) {
    m0 = f32x4.mul(m0, c); a0 = f32x4.add(a0, z);
    m1 = f32x4.mul(m1, c); a1 = f32x4.add(a1, z);
    m2 = f32x4.mul(m2, c); a2 = f32x4.add(a2, z);
    m3 = f32x4.mul(m3, c); a3 = f32x4.add(a3, z);
    m4 = f32x4.mul(m4, c); a4 = f32x4.add(a4, z);
    m5 = f32x4.mul(m5, c); a5 = f32x4.add(a5, z);
  }
  v128.store(p, f32x4.add(f32x4.add(f32x4.add(m0, m1), f32x4.add(m2, m3)), f32x4.add(m4, m5)), 48);
  v128.store(p, f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(a4, a5)), 64);
}`;
const OPS_PER_ITERATION = 12;

/** Median GFLOP/s of `repeats` timings of the exact four-wide multiply/add ceiling on one core. */
export async function exactSimdCeilingGflops(repeats = 5): Promise<number> {
  const out: Record<string, Uint8Array> = {};
  const { error, stderr } = await asc.main(
    [
      "chains.ts",
      "--outFile",
      "chains.wasm",
      "-O3",
      "--runtime",
      "stub",
      "--enable",
      "simd",
      "--initialMemory",
      "1",
    ],
    {
      readFile: (name: string) => name === "chains.ts" ? SOURCE : null,
      writeFile: (name: string, contents: string | Uint8Array) => {
        if (typeof contents !== "string") out[name] = contents;
      },
      listFiles: () => [],
    },
  );
  if (error) throw new Error(`AssemblyScript build of the ceiling kernel failed: ${stderr.toString()}`);
  const module = new WebAssembly.Module(out["chains.wasm"] as Uint8Array<ArrayBuffer>);
  const k = new WebAssembly.Instance(module, { env: { abort() {} } }).exports as {
    memory: WebAssembly.Memory;
    chains(p: number, n: number): void;
  };
  // Multiply by 1 and add 0: the values never change, so no subnormal or overflow slows a lane.
  new Float32Array(k.memory.buffer).set([1, 1, 1, 1, 0, 0, 0, 0, 1.5, 1.5, 1.5, 1.5], 256);
  const n = 10_000_000, per: number[] = [];
  for (let r = 0; r < 3; r++) k.chains(1024, n); // until the optimizing compiler has it
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    k.chains(1024, n);
    per.push((OPS_PER_ITERATION * 4 * n) / ((performance.now() - t0) / 1000) / 1e9);
  }
  return per.sort((a, b) => a - b)[Math.floor(repeats / 2)];
}
