/**
 * Measures whether the adapter's native WGSL f32 -> f16 conversion (`f16(x)`, whose rounding WGSL leaves
 * open and whose result for values beyond fp16's range, infinities and NaN it leaves indeterminate) gives
 * round-to-nearest-even, the rounding the webgpu engine does in integers (prelude.ts's f2h). Patterns: both
 * signs, every f32 exponent from 90 to 160 (fp16's range and beyond) with every fp16 mantissa and low bits at
 * and around each tie; fp16's subnormal ties; the overflow boundary, infinities, NaN, zeros; and 2 million
 * pseudo-random patterns.
 *
 * Usage: `deno run tests/bench/f16_conversion.ts` (needs a WebGPU adapter with shader-f16). Prints one line.
 *
 * @module
 */

const adapter = await navigator.gpu.requestAdapter();
if (!adapter?.features.has("shader-f16")) {
  console.error("No WebGPU adapter with shader-f16");
  Deno.exit(1);
}
const device = await adapter.requestDevice({ requiredFeatures: ["shader-f16"] });

const patterns: number[] = [];
for (let s = 0; s < 2; s++) {
  for (let e = 90; e <= 160; e++) {
    for (let m = 0; m < 1024; m++) {
      for (const lo of [0, 1, 0x7ff, 0x800, 0xfff, 0x1000, 0x1001, 0x17ff, 0x1fff]) {
        patterns.push(((s << 31) | (e << 23) | (m << 13) | lo) >>> 0);
      }
    }
  }
}
for (let e = 100; e <= 113; e++) {
  for (let m = 0; m < 1 << 12; m++) {
    for (const lo of [0, 1, 0x7ff, 0x800]) patterns.push(((e << 23) | ((m << 11) & 0x7fffff) | lo) >>> 0);
  }
}
patterns.push(0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x477fe000, 0x477ff000, 0x477fefff, 0x47800000);
patterns.push(0x7f7fffff, 0, 0x80000000, 1);
for (let i = 0, r = 12345; i < 2_000_000; i++) {
  r = (Math.imul(r, 1103515245) + 12345) >>> 0;
  patterns.push((r ^ (i << 7)) >>> 0);
}
if (patterns.length % 2) patterns.push(0);
const n = patterns.length, input = Uint32Array.from(patterns);

// Words [0, n) hold the f32 inputs; binding 1 views the same buffer as vec2<f16>, from word n on.
const code = `enable f16;
@group(0) @binding(0) var<storage, read_write> mem: array<u32>;
@group(0) @binding(1) var<storage, read_write> h16: array<vec2<f16>>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let t = g.x + g.y * 65535u * 64u;
  if (2u * t >= ${n}u) { return; }
  h16[${n}u + t] = vec2<f16>(f16(bitcast<f32>(mem[2u * t])), f16(bitcast<f32>(mem[2u * t + 1u])));
}`;
const buffer = device.createBuffer({
  size: n * 6,
  usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
});
device.queue.writeBuffer(buffer, 0, input);
const pipeline = device.createComputePipeline({
  layout: "auto",
  compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
});
const bindGroup = device.createBindGroup({
  layout: pipeline.getBindGroupLayout(0),
  entries: [{ binding: 0, resource: { buffer } }, { binding: 1, resource: { buffer } }],
});
const readback = device.createBuffer({
  size: n * 2,
  usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
});
const groups = Math.ceil(n / 2 / 64);
const encoder = device.createCommandEncoder();
const pass = encoder.beginComputePass();
pass.setPipeline(pipeline);
pass.setBindGroup(0, bindGroup);
pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
pass.end();
encoder.copyBufferToBuffer(buffer, n * 4, readback, 0, n * 2);
device.queue.submit([encoder.finish()]);
await readback.mapAsync(GPUMapMode.READ);
const got = new Uint16Array(readback.getMappedRange().slice(0));
// Float16Array rounds each exact f32 value once, to nearest even.
const want = new Uint16Array(new Float16Array(new Float32Array(input.buffer)).buffer);
const isNaN16 = (h: number) => (h & 0x7fff) > 0x7c00;
let differ = 0, payload = 0, first = "";
for (let i = 0; i < n; i++) {
  if (got[i] === want[i]) continue;
  if (isNaN16(got[i]) && isNaN16(want[i])) payload++;
  else if (differ++ === 0) {
    first = ` (first: f32 0x${input[i].toString(16)} gave 0x${got[i].toString(16)}, ` +
      `nearest-even 0x${want[i].toString(16)})`;
  }
}
console.log(
  `${n} f32 patterns on "${adapter.info.description}": ${differ} converted otherwise than to nearest even` +
    `${first}; ${payload} NaNs with another payload`,
);
device.destroy();
