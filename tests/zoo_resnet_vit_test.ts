/**
 * Checks the paper's ResNet and ViT networks: they build with the right
 * logits shape, their parameter counts are the ones the architecture implies
 * (compared with the paper's printed Table 5 figures, with the mismatches
 * explained rather than hidden), and their full training step graphs build,
 * which proves every op they use has a backward rule. They are far too big to
 * train on the reference engine here, so only one ViT-8 step is executed.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { HostTensor } from "../kernels/engine.ts";
import { runGraph } from "../kernels/ref/mod.ts";
import { sizeOf } from "../lib/graph/graph.ts";
import { ModelBuilder } from "../lib/model/builder.ts";
import type { ModelDef } from "../lib/model/zoo.ts";
import { RESNET_QUIRK_CLASSES, ZOO_RESNET_VIT } from "../lib/model/zoo_resnet_vit.ts";
import { parsePolicy } from "../lib/policy/policy.ts";
import { Rng } from "../lib/random.ts";
import { initialState } from "../lib/train/init.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { buildTrainGraph } from "../lib/train/step.ts";

const NAMES = ["resnet32", "resnet56", "resnet110", "vit8", "vit12"];

interface Counts {
  trainable: number;
  nonTrainable: number;
  total: number;
  logits: readonly number[];
}

/** Keras-style counts: "Total params" includes the non-trainable BN moving statistics. */
function counts(def: ModelDef, classes: number): Counts {
  const b = new ModelBuilder(true);
  const x = b.input("x", [2, 3, 32, 32]);
  const logits = def.build(b, x, { classes, hidden: [] });
  const sum = (kind: "param" | "state") => b.graph.leaves(kind).reduce((s, n) => s + sizeOf(n.shape), 0);
  const trainable = sum("param"), nonTrainable = sum("state");
  return { trainable, nonTrainable, total: trainable + nonTrainable, logits: b.shape(logits) };
}

/** Millions with two decimals, the way Table 5 prints parameter counts. */
const millions = (n: number) => (n / 1e6).toFixed(2);

Deno.test("every ResNet/ViT builds and gives [N, classes] logits", () => {
  assert.deepEqual(Object.keys(ZOO_RESNET_VIT).sort(), [...NAMES].sort());
  for (const name of NAMES) {
    assert.equal(ZOO_RESNET_VIT[name].name, name);
    assert.deepEqual(counts(ZOO_RESNET_VIT[name], 10).logits, [2, 10], name);
  }
});

// Exact counts (trainable, non-trainable) of f16repro's 10-way networks. Derivation, ResNet-32 body:
// stem 448, stage 1: 5 x 4,768, stage 2: 14,080 + 4 x 18,752, stage 3: 55,808 + 4 x 74,368; head BN 256,
// conv1x1 650, Dense(10 -> 4096) 45,056, Dense(4096 -> 10) 40,970. ViT-8: patch projection 6,976,
// position embedding 1,600, 8 blocks x 132,736, final LN 128, Dense(1600 -> 512) 819,712,
// Dense(512 -> 512) 262,656, Dense(512 -> 10) 5,130.
const EXPECTED: Record<string, [number, number]> = {
  resnet32: [551_316, 2_272],
  resnet56: [941_076, 4_064],
  resnet110: [1_818_036, 8_096],
  vit8: [2_158_090, 0],
  vit12: [2_689_034, 0],
};

Deno.test("parameter counts of the 10-way networks", () => {
  for (const name of NAMES) {
    const c = counts(ZOO_RESNET_VIT[name], 10);
    assert.deepEqual([c.trainable, c.nonTrainable], EXPECTED[name], name);
  }
});

Deno.test("the ResNets' 10-way head costs exactly one Dense(4096 -> 10) more than the authors' 4096-way one", () => {
  for (const name of ["resnet32", "resnet56", "resnet110"]) {
    const ours = counts(ZOO_RESNET_VIT[name], 10),
      theirs = counts(ZOO_RESNET_VIT[name], RESNET_QUIRK_CLASSES);
    assert.deepEqual(theirs.logits, [2, RESNET_QUIRK_CLASSES]);
    assert.equal(ours.total - theirs.total, 4096 * 10 + 10, name);
    assert.equal(ours.nonTrainable, theirs.nonTrainable, name);
  }
});

// Table 5 prints 0.47 / 0.86 / 1.78 for the ResNets and 2.02 / 2.55 for the ViTs. The architecture PAPER.md
// describes (and the authors' code implements) does not give all of these:
// - ResNets, the authors' literal 4096-way network (Keras "Total params"): 512,618 / 904,170 / 1,785,162,
//   i.e. 0.51 / 0.90 / 1.79. Without the Dense(10 -> 4096) layer (45,056 parameters) the totals are
//   467,562 / 859,114 / 1,740,106 = 0.47 / 0.86 / 1.74: the printed ResNet-32 and -56 figures match a network
//   without that layer, while the printed ResNet-110 figure (1.78) matches neither (it equals the trainable
//   count WITH the layer, 1,777,066, which is not what 0.47 / 0.86 count). The printed numbers seem to come
//   from inconsistent versions of the code; we assert what the described architecture gives.
// - ViTs: 2,158,090 / 2,689,034 = 2.16 / 2.69, each about 0.14M above the print. The per-block difference
//   (2.55 - 2.02 = 0.53 for 4 blocks) matches our 132,736 per block, so the gap sits outside the blocks
//   (projection, embedding, classifier head); PAPER.md gives nothing that removes it.
const PRINTED: Record<string, { printed: string; ours: string }> = {
  resnet32: { printed: "0.47", ours: "0.51" },
  resnet56: { printed: "0.86", ours: "0.90" },
  resnet110: { printed: "1.78", ours: "1.79" },
  vit8: { printed: "2.02", ours: "2.16" },
  vit12: { printed: "2.55", ours: "2.69" },
};

Deno.test("Table 5 parameter counts: the authors' networks as built here, against the printed figures", () => {
  for (const name of NAMES) {
    // The ResNets are compared in their 4096-way form, the network the authors counted.
    const classes = name.startsWith("resnet") ? RESNET_QUIRK_CLASSES : 10;
    const got = millions(counts(ZOO_RESNET_VIT[name], classes).total);
    assert.equal(got, PRINTED[name].ours, name);
    assert.notEqual(got, PRINTED[name].printed, `${name} now matches the print: update the comment above`);
  }
  // The part of the ResNets that the printed 0.47 and 0.86 do count: everything except Dense(10 -> 4096).
  const withoutDense = (name: string) => counts(ZOO_RESNET_VIT[name], RESNET_QUIRK_CLASSES).total - 45_056;
  assert.equal(millions(withoutDense("resnet32")), "0.47");
  assert.equal(millions(withoutDense("resnet56")), "0.86");
  assert.equal(millions(withoutDense("resnet110")), "1.74");
});

const spec = (name: string) => ({
  model: ZOO_RESNET_VIT[name],
  modelOptions: { classes: 10, hidden: [] },
  policy: parsePolicy("fp16,bn=fp32"),
  optimizer: PAPER_SGD,
  inputShape: [3, 32, 32],
});

Deno.test("the full fp16 training step graph builds for every ResNet/ViT", () => {
  for (const name of NAMES) {
    const tg = buildTrainGraph(spec(name), 2);
    const params = tg.graph.leaves("param");
    assert.equal(tg.grads.length, params.length, name);
    tg.grads.forEach((id, i) => assert.deepEqual(tg.graph.node(id).shape, params[i].shape, params[i].name));
  }
});

Deno.test("one ViT-8 fp16 training step on the reference engine gives a finite loss and moves the weights", () => {
  const g = buildTrainGraph(spec("vit8"), 2).graph;
  const state = initialState(g, 58);
  const rng = new Rng(58, "zoo_resnet_vit/x");
  const fp32 = (v: number): HostTensor => ({ shape: [], format: "fp32", data: Float64Array.of(v) });
  const x: HostTensor = {
    shape: [2, 3, 32, 32],
    format: "fp16",
    data: Float64Array.from({ length: 2 * 3 * 32 * 32 }, () => Math.f16round(2 * rng.uniform() - 1)),
  };
  const out = runGraph(g, {
    ...state,
    x,
    labels: { shape: [2], format: "fp32", data: Float64Array.of(3, 7) },
    loss_scale: fp32(1),
    inv_loss_scale: fp32(1),
    step_seed: fp32(1),
  });
  assert.ok(Number.isFinite(out.loss.data[0]), `loss ${out.loss.data[0]}`);
  assert.equal(out.finite.data[0], 1);
  const w = "patch_encoder/projection/kernel";
  assert.notDeepEqual([...out[w].data], [...state[w].data], "the patch projection was updated");
});
