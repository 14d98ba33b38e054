/**
 * What the reliability checks cost a cell: verifying a finished cell's record and weights (parse, SHA-256 of
 * the stored tensors), and writing a file atomically (exclusive temp file, lock, fsync, rename) against a
 * plain write, for weights the size of VGG-16's (33.6M parameters) in fp32 and fp16. Run with `deno task bench`.
 */

import { writeAtomic } from "../../lib/record/atomic.ts";
import { hashTensors } from "../../lib/record/hash.ts";
import { checkWeights, encodeWeights } from "../../lib/record/weights.ts";
import type { HostTensor } from "../../kernels/engine.ts";

const PARAMS = 33_600_000; // about VGG-16 with a 10-way head (33.64M, docs/paper.md)
const dir = await Deno.makeTempDir({ prefix: "f16repro-bench-" });

async function weights(format: "fp32" | "fp16") {
  const data = new Float32Array(PARAMS);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  const t: Record<string, HostTensor> = { w: { shape: [PARAMS], format, data } };
  return { bytes: encodeWeights(t), hash: await hashTensors(t) };
}

for (const format of ["fp32", "fp16"] as const) {
  const w = await weights(format);
  const mb = (w.bytes.length / 2 ** 20).toFixed(0);
  await Deno.writeFile(`${dir}/${format}.weights`, w.bytes);
  Deno.bench(
    `verify ${format} weights (${mb} MiB): read, parse, SHA-256`,
    { group: `verify ${format}` },
    async () => {
      await checkWeights(await Deno.readFile(`${dir}/${format}.weights`), "w", w.hash);
    },
  );
  Deno.bench(`write ${format} weights (${mb} MiB) atomically`, { group: `write ${format}` }, async () => {
    await writeAtomic(`${dir}/a-${format}.weights`, w.bytes);
  });
  Deno.bench(
    `write ${format} weights (${mb} MiB) plainly`,
    { group: `write ${format}`, baseline: true },
    async () => {
      await Deno.writeFile(`${dir}/p-${format}.weights`, w.bytes);
    },
  );
}

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
