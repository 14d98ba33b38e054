/**
 * Known answers and contract properties of the ref kernels in 16-bit formats:
 * accumulation format, single output rounding, overflow-safe softmax, ties in
 * argmax, finite checks, optimizer updates rounded op by op, dropout masks and
 * NaN propagation.
 */

import assert from "node:assert/strict";
import { assertSupports, type HostTensor } from "../kernels/engine.ts";
import { createEngine as createRef } from "../kernels/ref/mod.ts";
import { UsageError } from "../lib/errors.ts";
import { Graph } from "../lib/graph/graph.ts";
import { sizeOf } from "../lib/graph/graph.ts";
import type { Attr } from "../lib/graph/graph.ts";
import { runOp, scalar, tensor } from "./support/graph_harness.ts";

const f16 = Math.f16round;
const data = (t: HostTensor) => [...t.data];
const h16 = (shape: number[], v: readonly number[]) => tensor(shape, "fp16", v);

/** Element-wise Object.is (so -0 and NaN are compared bit for bit as values). */
function assertSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Object.is(actual[i], expected[i]), `element ${i}: ${actual[i]} !== ${expected[i]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Accumulation and output rounding

Deno.test("matmul fp16: fp16 accumulation loses 2048 + 1 + ... + 1, fp32 accumulation keeps it", () => {
  // Row [2048, 1 x 16] dotted with ones. In fp16 2048 has ulp 2, so 2048 + 1 is a tie that rounds to even
  // (2048) every time; accumulated in fp32 the sum 2064 is exact and rounded once to fp16 (2064 is representable).
  const a = h16([1, 17], [2048, ...Array(16).fill(1)]);
  const b = h16([17, 1], Array(17).fill(1));
  assert.deepEqual(data(runOp("matmul", [a, b], {}, { accumulate: "fp16" })), [2048]);
  assert.deepEqual(data(runOp("matmul", [a, b], {}, { accumulate: "fp32" })), [2064]);
  // 17 ones: exact 2065 rounds once to the even neighbour 2064 under fp32 accumulation.
  const a17 = h16([1, 18], [2048, ...Array(17).fill(1)]);
  const b17 = h16([18, 1], Array(18).fill(1));
  assert.deepEqual(data(runOp("matmul", [a17, b17], {}, { accumulate: "fp32" })), [2064]);
  // The accumulation order is fixed (k ascending): ones first, then 2048, keeps them under fp16 too.
  const rev = h16([1, 17], [...Array(16).fill(1), 2048]);
  assert.deepEqual(data(runOp("matmul", [rev, b], {}, { accumulate: "fp16" })), [2064]);
});

Deno.test("matmul fp16: products are rounded to the accumulate format before summing", () => {
  // (1 + 2^-10)^2 = 1 + 2^-9 + 2^-20: fp16 products round to 1 + 2^-9; two of them sum to 2 + 2^-8 exactly.
  const v = 1 + 2 ** -10;
  const a = h16([1, 2], [v, v]), b = h16([2, 1], [v, v]);
  assert.deepEqual(data(runOp("matmul", [a, b], {}, { accumulate: "fp16" })), [2 + 2 ** -8]);
  // fp32 keeps 2 + 2^-8 + 2^-19, which rounds once to fp16 (ulp 2^-9 at 2): 2 + 2^-8.
  assert.deepEqual(data(runOp("matmul", [a, b], {}, { accumulate: "fp32" })), [2 + 2 ** -8]);
});

Deno.test("fp16 add rounds once to nearest even", () => {
  const add = (x: number, y: number) => runOp("add", [h16([1], [x]), h16([1], [y])]).data[0];
  assert.equal(add(1, 2 ** -11), 1); // exact tie, 1 is even
  assert.equal(add(1 + 2 ** -10, 2 ** -11), 1 + 2 ** -9); // tie, rounds up to the even neighbour
  assert.equal(add(1, 3 * 2 ** -12), 1 + 2 ** -10); // 0.75 ulp rounds up
  assert.equal(add(1, 2 ** -12), 1); // 0.25 ulp rounds down
  assert.equal(add(65504, 15), 65504); // below the overflow threshold 65520
  assert.equal(add(65504, 16), Infinity); // 65520 ties to 65536, which overflows
  assert.equal(add(2 ** -24, 2 ** -24), 2 ** -23); // subnormals add exactly
});

Deno.test("fp16 output of fp32 inputs is rounded once, not through fp32", () => {
  // 1 + 2^-11 + 2^-34 is just above the fp16 tie: one rounding gives 1 + 2^-10. Rounding to fp32 first would
  // drop 2^-34 (below half an fp32 ulp) and then tie to 1.
  const x = tensor([1], "fp32", [1]), y = tensor([1], "fp32", [2 ** -11 + 2 ** -34]);
  assert.equal(Math.fround(2 ** -11 + 2 ** -34), 2 ** -11 + 2 ** -34);
  assert.equal(runOp("add", [x, y], {}, { format: "fp16" }).data[0], 1 + 2 ** -10);
  assert.equal(f16(Math.fround(1 + 2 ** -11 + 2 ** -34)), 1); // what double rounding would give
});

Deno.test("bf16 add rounds to nearest even", () => {
  const add = (x: number, y: number) =>
    runOp("add", [tensor([1], "bf16", [x]), tensor([1], "bf16", [y])]).data[0];
  assert.equal(add(1, 2 ** -8), 1); // tie (bf16 ulp at 1 is 2^-7)
  assert.equal(add(1, 3 * 2 ** -9), 1 + 2 ** -7);
  assert.equal(add(1 + 2 ** -7, 2 ** -8), 1 + 2 ** -6);
});

// ---------------------------------------------------------------------------------------------
// Softmax and cross-entropy

Deno.test("softmax_xent fp16: huge logits stay finite (max-subtracted)", () => {
  const x = h16([2, 2], [60000, -60000, 60000, 59008]);
  const labels = h16([2], [0, 1]);
  // Row 0: loss 0. Row 1: 992 + log(1 + e^-992) = 992. Mean 496.
  assert.deepEqual(data(runOp("softmax_xent", [x, labels])), [496]);
  const sm = runOp("softmax", [x]);
  assert.deepEqual(data(sm), [1, 0, 1, 0]);
  const grad = runOp("softmax_xent_grad", [x, labels, scalar("fp16", 1)]);
  assert.ok(grad.data.every(Number.isFinite));
  // (softmax - onehot) / N: row 1 is (1 - 0, 0 - 1) / 2.
  assert.deepEqual(data(grad), [0, 0, 0.5, -0.5]);
});

Deno.test("softmax_xent fp16: uniform logits give log(K) rounded", () => {
  for (const k of [2, 7, 10, 100]) {
    for (const v of [0, 3, -1000]) {
      const x = h16([4, k], Array(4 * k).fill(v));
      const labels = h16([4], [0, k - 1, 1, 0]);
      const loss = runOp("softmax_xent", [x, labels]).data[0];
      assert.equal(loss, f16(Math.log(k)), `K=${k}, logits ${v}`);
    }
  }
});

Deno.test("count_correct picks the first maximum on ties", () => {
  const x = h16([3, 3], [1, 3, 3, 2, 2, 0, 5, 5, 5]);
  const count = (labels: number[]) => runOp("count_correct", [x, h16([3], labels)]).data[0];
  assert.equal(count([1, 0, 0]), 3);
  assert.equal(count([2, 1, 2]), 0);
  assert.equal(count([1, 1, 0]), 2);
  // A NaN row is never correct.
  // An all-NaN row is never correct.
  assert.equal(runOp("count_correct", [h16([1, 2], [NaN, NaN]), h16([1], [0])]).data[0], 0);
});

Deno.test("count_correct: a row holding a NaN counts as wrong; an all -Infinity row's first maximum is 0", () => {
  assert.equal(runOp("count_correct", [h16([1, 2], [NaN, 1]), h16([1], [1])]).data[0], 0);
  assert.equal(runOp("count_correct", [h16([1, 2], [1, NaN]), h16([1], [0])]).data[0], 0);
  assert.equal(runOp("count_correct", [h16([1, 2], [-Infinity, -Infinity]), h16([1], [0])]).data[0], 1);
});

Deno.test("all_finite: 0 for NaN and +-Inf in any input, 1 otherwise", () => {
  const ok = (...xs: number[][]) => runOp("all_finite", xs.map((v) => h16([v.length], v))).data[0];
  assert.equal(ok([1, 65504, -65504, 2 ** -24, -0]), 1);
  assert.equal(ok([1, 2], [3]), 1);
  assert.equal(ok([1, NaN]), 0);
  assert.equal(ok([Infinity, 1]), 0);
  assert.equal(ok([1], [-Infinity]), 0);
  assert.equal(ok([1, 2], [3, NaN]), 0);
});

Deno.test("count_lost: nonzero steps (NaN included) whose parameter kept its value, +0 equal to -0", () => {
  const lost = (...xs: number[][]) => runOp("count_lost", xs.map((v) => h16([v.length], v))).data[0];
  // Elements: changed; kept with a step; kept with no step; -0 -> +0 with a step; NaN kept; NaN step.
  assert.equal(lost([1, 2, 3, -0, NaN, 5], [1.5, 2, 3, 0, NaN, 5], [1, 1, 0, 1, 1, NaN]), 3);
  assert.equal(lost([1], [1], [0], [2, 2], [2, 4], [-1, 1]), 1); // summed over the triples
  assert.throws(() => lost([1], [1]), /triples/);
  assert.throws(() => lost([1], [1], [1, 2]), /differ/);
});

// ---------------------------------------------------------------------------------------------
// Optimizer updates

const LR16 = 0.01000213623046875, MOM16 = 0.89990234375;

function update(op: string, inputs: HostTensor[], attrs: Record<string, Attr>): number[] {
  return data(runOp(op, inputs, attrs, { format: "fp16" }));
}

Deno.test("fp16 hyperparameters: lr 0.01 and momentum 0.9 round to fp16", () => {
  assert.equal(f16(0.01), LR16);
  assert.equal(f16(0.9), MOM16);
  assert.equal(f16(1e-7), 1.1920928955078125e-7); // a subnormal: 2 * 2^-24
});

Deno.test("sgd_velocity / sgd_apply fp16: Keras momentum step rounded op by op", () => {
  const v = [0.5, -0.1, 1, 3], g = [10, 2.5, 20, 0.3], w = [1, -0.5, 0.25, 10];
  const inv = 1 / 1024; // loss scale 1024
  const gs = g.map((x) => f16(x * 1024)); // scaled gradients, as backward would produce them
  const v16 = v.map(f16), w16 = w.map(f16);
  const hand = v16.map((vi, i) => f16(f16(MOM16 * vi) - f16(LR16 * f16(gs[i] * inv))));
  const got = update("sgd_velocity", [
    h16([4], v16),
    h16([4], gs),
    h16([4], w16),
    scalar("fp16", inv),
    scalar("fp16", 1),
  ], {
    lr: 0.01,
    momentum: 0.9,
    wd: 0,
  });
  assert.deepEqual(got, hand);
  // Known answer for the first element: f16(f16(0.89990234375 * 0.5) - f16(0.01000213623046875 * 10))
  // = f16(0.449951171875 - 0.10003662109375) = 0.349853515625, where the float64 formula rounded once gives
  // f16(0.9 * 0.5 - 0.01 * 10) = 0.35009765625.
  assert.equal(got[0], 0.349853515625);
  assert.equal(f16(0.9 * 0.5 - 0.01 * 10), 0.35009765625);

  const applied = update("sgd_apply", [
    h16([4], w16),
    h16([4], got),
    scalar("fp16", inv),
    scalar("fp16", 1),
    scalar("fp16", 0),
  ], {
    lr: 0.01,
    momentum: 0.9,
    wd: 0,
    stochastic: false,
    salt: 0,
  });
  assert.deepEqual(applied, w16.map((wi, i) => f16(wi + got[i])));
});

Deno.test("sgd fp16 with coupled weight decay and without momentum", () => {
  const w = [1, -2, 0.5].map(f16), g = [0.25, 0.125, -1].map(f16);
  const wd16 = f16(1e-4);
  const grad = g.map((gi, i) => f16(f16(gi * 1) + f16(wd16 * w[i])));
  const got = update("sgd_apply", [
    h16([3], w),
    h16([3], g),
    scalar("fp16", 1),
    scalar("fp16", 1),
    scalar("fp16", 0),
  ], {
    lr: 0.01,
    momentum: 0,
    wd: 1e-4,
    stochastic: false,
    salt: 0,
  });
  assert.deepEqual(got, w.map((wi, i) => f16(wi - f16(LR16 * grad[i]))));
});

Deno.test("gated updates with ok = 0 return the state bit for bit", () => {
  const state = [1, -0, NaN, 2 ** -24, 65504, -3.5];
  const other = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
  const s = h16([6], state), o = h16([6], other), one = scalar("fp16", 1), zero = scalar("fp16", 0);
  const cases: [string, HostTensor[], Record<string, Attr>][] = [
    ["sgd_velocity", [s, o, o, one, zero], { lr: 0.01, momentum: 0.9, wd: 0, gated: true }],
    ["sgd_apply", [s, o, one, zero, zero], {
      lr: 0.01,
      momentum: 0.9,
      wd: 0,
      gated: true,
      stochastic: false,
      salt: 0,
    }],
    ["sgd_apply", [s, o, one, zero, zero], {
      lr: 0.01,
      momentum: 0,
      wd: 1e-4,
      gated: true,
      stochastic: true,
      salt: 3,
    }],
    ["adam_moment", [s, o, o, one, zero], { beta: 0.9, power: 1, wd: 0, gated: true }],
    ["adam_moment", [s, o, o, one, zero], { beta: 0.999, power: 2, wd: 0, gated: true }],
    ["adam_apply", [s, o, o, scalar("fp16", 0.001), zero, zero], {
      eps: 1e-7,
      gated: true,
      stochastic: false,
      salt: 0,
    }],
  ];
  for (const [op, inputs, attrs] of cases) {
    assertSameValues(update(op, inputs, attrs), state);
    // The same node with ok = 1 does change the state.
    const on = [...inputs];
    on[op === "sgd_apply" ? 3 : 4] = one; // the position of the ok input

    assert.notDeepEqual(update(op, on, attrs).filter((x) => x === x), state.filter((x) => x === x), op);
  }
});

Deno.test("adam fp16 with epsilon 1e-7: v underflows to 0 and the step explodes", () => {
  const EPS16 = 1.1920928955078125e-7;
  const one = scalar("fp16", 1);
  // A small gradient: g^2 = 4e-6 is representable, but (1 - beta2) g^2 ~ 3.9e-9 underflows to 0.
  const g = h16([1], [f16(0.002)]), zero = h16([1], [0]), w = h16([1], [1]);
  const m = update("adam_moment", [zero, g, w, one, one], { beta: 0.9, power: 1, wd: 0 });
  const v = update("adam_moment", [zero, g, w, one, one], { beta: 0.999, power: 2, wd: 0 });
  assert.equal(f16(1 - f16(0.999)), 2 ** -10);
  assert.deepEqual(v, [0]);
  assert.deepEqual(m, [f16(f16(0.002) * f16(1 - MOM16))]);
  assert.ok(m[0] > 0);
  // First step (t = 1): alpha = lr sqrt(1 - b2) / (1 - b1) in float64, rounded to fp16 by the kernel.
  const alpha = 0.001 * Math.sqrt(1 - 0.999) / (1 - 0.9);
  const w2 = update("adam_apply", [
    w,
    h16([1], m),
    h16([1], v),
    scalar("fp32", alpha),
    one,
    scalar("fp16", 0),
  ], {
    eps: 1e-7,
    stochastic: false,
    salt: 0,
  });
  const expected = f16(1 - f16(f16(f16(alpha) * m[0]) / f16(0 + EPS16)));
  assert.deepEqual(w2, [expected]);
  // In float64, v = 0.001 * 0.002^2 and the step is alpha * m / (sqrt(v) + eps), about 1e-3 (= lr on step 1).
  const exactStep = alpha * (0.1 * 0.002) / (Math.sqrt(0.001 * 0.002 ** 2) + 1e-7);
  assert.ok(Math.abs(exactStep - 0.001) < 1e-5, `${exactStep}`);
  // In fp16 the denominator is eps alone (a subnormal) and the weight moves by 0.5, 500 times too far.
  assert.deepEqual(w2, [0.5]);

  // With a larger first moment the quotient overflows fp16 and the weight becomes -Infinity.
  const big = update("adam_apply", [
    w,
    h16([1], [1]),
    h16([1], [0]),
    scalar("fp16", 0.01),
    one,
    scalar("fp16", 0),
  ], {
    eps: 1e-7,
    stochastic: false,
    salt: 0,
  });
  assert.deepEqual(big, [-Infinity]);
});

Deno.test("adam_moment fp16 known answer (first and second moment)", () => {
  const m0 = [0.1, -0.2].map(f16), g = [0.5, 0.25].map(f16), w = h16([2], [0, 0]), one = scalar("fp16", 1);
  const omb1 = f16(1 - f16(0.9)), omb2 = f16(1 - f16(0.999));
  const m = update("adam_moment", [h16([2], m0), h16([2], g), w, one, one], { beta: 0.9, power: 1, wd: 0 });
  assert.deepEqual(m, m0.map((mi, i) => f16(mi + f16(f16(g[i] - mi) * omb1))));
  const v = update("adam_moment", [h16([2], m0.map(Math.abs)), h16([2], g), w, one, one], {
    beta: 0.999,
    power: 2,
    wd: 0,
  });
  assert.deepEqual(v, m0.map(Math.abs).map((vi, i) => f16(vi + f16(f16(f16(g[i] * g[i]) - vi) * omb2))));
});

Deno.test("stochastic rounding: a neighbour in fp16, varies with the seed, repeats for the same seed", () => {
  const n = 256;
  // w + d = 1 + 2^-12: a quarter of an fp16 ulp above 1, between the neighbours 1 and 1 + 2^-10.
  const w = h16([n], Array(n).fill(1)), d = h16([n], Array(n).fill(2 ** -12));
  const run = (seed: number, salt = 5) =>
    update("sgd_apply", [w, d, scalar("fp16", 1), scalar("fp16", 1), scalar("fp32", seed)], {
      lr: 0.01,
      momentum: 0.9,
      wd: 0,
      stochastic: true,
      salt,
    });
  const a = run(1), a2 = run(1), b = run(2), c = run(1, 6);
  for (const x of [...a, ...b, ...c]) assert.ok(x === 1 || x === 1 + 2 ** -10, `${x}`);
  assert.deepEqual(a, a2);
  assert.notDeepEqual(a, b);
  assert.notDeepEqual(a, c);
  // Rounds up with probability 1/4: expect about 64 of 256 (binomial sd ~6.9).
  const up = a.filter((x) => x !== 1).length;
  assert.ok(up > 30 && up < 100, `${up} of ${n} rounded up`);
  // Nearest-even rounding always gives 1.
  const det = update("sgd_apply", [w, d, scalar("fp16", 1), scalar("fp16", 1), scalar("fp32", 1)], {
    lr: 0.01,
    momentum: 0.9,
    wd: 0,
    stochastic: false,
    salt: 5,
  });
  assert.ok(det.every((x) => x === 1));
});

// ---------------------------------------------------------------------------------------------
// Dropout and pooling

Deno.test("dropout: same seed same mask, about half kept at rate 0.5, kept values scaled by 1/(1 - rate)", () => {
  const n = 2000;
  const x = tensor([n], "fp32", Array(n).fill(1));
  const drop = (seed: number, rate: number, salt = 1) =>
    data(runOp("dropout", [x, scalar("fp32", seed)], { rate, salt }));
  const a = drop(42, 0.5), a2 = drop(42, 0.5), b = drop(43, 0.5);
  assert.deepEqual(a, a2);
  assert.notDeepEqual(a, b);
  assert.notDeepEqual(a, drop(42, 0.5, 2));
  for (const v of a) assert.ok(v === 0 || v === 2);
  const kept = a.filter((v) => v !== 0).length;
  assert.ok(kept > 0.45 * n && kept < 0.55 * n, `${kept} of ${n} kept`); // sd ~22
  const r = drop(7, 0.3);
  for (const v of r) assert.ok(v === 0 || v === Math.fround(1 / 0.7), `${v}`);
  const kept3 = r.filter((v) => v !== 0).length;
  assert.ok(kept3 > 0.65 * n && kept3 < 0.75 * n, `${kept3} of ${n} kept at rate 0.3`);
  // fp16: the kept value is 1/0.7 rounded once to fp16.
  const h = data(runOp("dropout", [h16([64], Array(64).fill(1)), scalar("fp16", 7)], { rate: 0.3, salt: 1 }));
  for (const v of h) assert.ok(v === 0 || v === f16(1 / 0.7));
  // Same mask as the fp32 run on the same (seed, salt, index).
  assert.deepEqual(h.map((v) => v !== 0), r.slice(0, 64).map((v) => v !== 0));
});

Deno.test("maxpool propagates NaN wherever it sits in the window", () => {
  const attrs = { kernel: [2, 2], stride: [2, 2], pads: [0, 0, 0, 0] };
  for (let at = 0; at < 4; at++) {
    const v = [1, 5, 3, 2];
    v[at] = NaN;
    const y = runOp("maxpool", [h16([1, 1, 2, 2], v)], attrs).data[0];
    assert.ok(Number.isNaN(y), `NaN at tap ${at} gave ${y}`);
  }
  const y = runOp("maxpool", [h16([1, 1, 2, 4], [1, 5, 3, NaN, 3, 2, 4, 1])], attrs);
  assert.equal(sizeOf(y.shape), 2);
  assert.equal(y.data[0], 5);
  assert.ok(Number.isNaN(y.data[1]));
});

Deno.test("an engine without an op of the graph refuses it with a UsageError naming the op", () => {
  const g = new Graph();
  const x = g.leaf("input", "x", [2, 3], { format: "fp32" });
  g.outputs.y = g.add("relu", [x], {}, { format: "fp32" });
  const engine = { ...createRef(), capabilities: { ...createRef().capabilities, ops: ["matmul"] } };
  assert.throws(() => assertSupports(engine, g), (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, /Engine ref cannot run this step graph: it lacks ops relu/);
    return true;
  });
});
