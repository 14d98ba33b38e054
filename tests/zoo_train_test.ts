/**
 * All 12 Table 5 networks train through `train`'s code path (trainRun with a resolved config, as the CLI
 * runs it) on fashion-mnist-32, on the ort and on the wasm engine, with the tiniest settings: batch 2, two
 * training and two test examples, one epoch, the paper profile's optimizers. The precisions rotate over the
 * networks (fp32, mixed, fp16), so every engine trains every precision and batch-norm networks train in
 * all three (fp16: vgg19, resnet110, xception, vit12). Standalone fp16 at batch 2 diverges at the first step
 * of DenseNet-121 (a non-finite conv kernel, with or without the moving variance's Bessel correction, and
 * with `bn=fp32` too), so the rotation puts the DenseNets in fp32 and mixed. Each run completes with finite
 * weights and metrics, and a batch-norm network's moving variance has moved off its initial 1.
 */

import assert from "node:assert/strict";
import type { HostTensor } from "../kernels/engine.ts";
import { cellsOf, PAPER_MODELS, PROFILES } from "../lib/reproduce/profiles.ts";
import type { RunRecord } from "../lib/record/schema.ts";
import { resolveRun } from "../lib/train/config.ts";
import { trainRun } from "../lib/train/run.ts";

const PRECISIONS = ["fp32", "mixed", "fp16"];
const paperCell = (model: string) => cellsOf(PROFILES.paper).find((c) => c.request.model === model)!;

for (const engine of ["ort", "wasm"]) {
  Deno.test(`all 12 networks: one training step each on ${engine}, fashion-mnist-32, batch 2`, async () => {
    const t0 = performance.now();
    for (const [i, model] of PAPER_MODELS.entries()) {
      const precision = PRECISIONS[i % 3];
      const run = resolveRun({
        ...paperCell(model).request,
        dataset: "fashion-mnist-32",
        trainLimit: 2,
        testLimit: 2,
        precision,
        batch: 2,
        epochs: 1,
        seed: 58,
        engine,
      });
      let saved: Readonly<Record<string, HostTensor>> = {};
      const { record } = await trainRun(run, {
        save: (_r: RunRecord, weights) => {
          saved = weights;
          return Promise.resolve("(memory)");
        },
        offline: true,
      });
      const what = `${model} ${precision} on ${engine}`;
      assert.equal(record.status, "completed", what);
      assert.equal(record.config.model, model);
      assert.equal(record.epochs.length, 1, what);
      assert.ok(Number.isFinite(record.epochs[0].trainLoss), `${what}: loss ${record.epochs[0].trainLoss}`);
      assert.match(record.weightHash, /^[0-9a-f]{64}$/);
      assert.ok(Object.keys(saved).length > 0, what);
      for (const [name, t] of Object.entries(saved)) {
        assert.ok(t.data.every((v) => Number.isFinite(Number(v))), `${what}: ${name} finite`);
      }
      const variances = Object.entries(saved).filter(([n]) => n.endsWith("/moving_variance"));
      if (variances.length > 0) {
        assert.ok(
          variances.some(([, t]) => t.data.some((v) => Number(v) !== 1)),
          `${what}: statistics moved`,
        );
      }
    }
    console.log(`12 networks on ${engine}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
}
