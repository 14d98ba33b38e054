import assert from "node:assert/strict";
import type { FormatName } from "../lib/formats/format.ts";
import type { Graph, Node } from "../lib/graph/graph.ts";
import type { ModelBuilder } from "../lib/model/builder.ts";
import { batchNorm, conv2d, dense, flatten } from "../lib/model/layers.ts";
import { type ModelDef, MODELS } from "../lib/model/zoo.ts";
import { applyPolicy } from "../lib/policy/apply.ts";
import {
  bnFormat,
  DYNAMIC_LOSS_SCALE,
  NAMED_POLICIES,
  parsePolicy,
  type Policy,
  PolicyError,
  policyString,
} from "../lib/policy/policy.ts";
import { PAPER_SGD } from "../lib/train/optimizer.ts";
import { buildEvalGraph, buildTrainGraph, type StepSpec, type TrainGraph } from "../lib/train/step.ts";
import type { OptimizerConfig } from "../lib/record/schema.ts";

/** The policy without its name, for comparing resolved fields. */
function fields(p: Policy): Omit<Policy, "name"> {
  const { name: _name, ...rest } = p;
  return rest;
}

const NONE = { kind: "none" } as const;
const DYNAMIC = { kind: "dynamic", initial: 32768, growthInterval: 2000, factor: 2 } as const;

Deno.test("named policies have the documented fields", () => {
  const base = { accumulate: "fp32", state: "params", bn: "params", rounding: "nearest" } as const;
  const want: Record<string, Policy> = {
    fp32: { ...base, name: "fp32", params: "fp32", compute: "fp32", lossScale: NONE },
    // Keras's set_floatx, as the paper's authors ran it: batch norm stays fp32.
    fp16: { ...base, name: "fp16", params: "fp16", compute: "fp16", bn: "fp32", lossScale: NONE },
    mixed: { ...base, name: "mixed", params: "fp32", compute: "fp16", lossScale: DYNAMIC },
    bf16: { ...base, name: "bf16", params: "bf16", compute: "bf16", bn: "fp32", lossScale: NONE },
    "mixed-bf16": { ...base, name: "mixed-bf16", params: "fp32", compute: "bf16", lossScale: NONE },
  };
  assert.deepEqual(Object.keys(NAMED_POLICIES).sort(), Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    assert.deepEqual(parsePolicy(name), w, name);
    assert.deepEqual(NAMED_POLICIES[name], w, name);
    // White space would give one policy a second name, and so a second run id.
    assert.throws(() => parsePolicy(` ${name} `), /white space in " /, `${name} with spaces`);
  }
  assert.deepEqual(DYNAMIC_LOSS_SCALE, DYNAMIC);
  // Parsing returns a copy: changing it does not change the table.
  const p = parsePolicy("fp16") as { params: FormatName };
  p.params = "fp32";
  assert.equal(NAMED_POLICIES.fp16.params, "fp16");
});

Deno.test("overrides on a named base", () => {
  const a = parsePolicy("fp16,bn=fp16");
  assert.deepEqual(a, { ...NAMED_POLICIES.fp16, name: "fp16,bn=fp16", bn: "fp16" });
  assert.equal(bnFormat(a), "fp16");
  assert.deepEqual(parsePolicy("fp16,bn=fp32"), { ...NAMED_POLICIES.fp16, name: "fp16,bn=fp32" });
  assert.equal(bnFormat(NAMED_POLICIES.fp16), "fp32");
  assert.equal(bnFormat(NAMED_POLICIES.bf16), "fp32");
  assert.equal(bnFormat(NAMED_POLICIES.mixed), "fp32");

  const b = parsePolicy("mixed,accumulate=fp16");
  assert.deepEqual(b, { ...NAMED_POLICIES.mixed, name: "mixed,accumulate=fp16", accumulate: "fp16" });

  const c = parsePolicy("mixed,loss-scale=none,rounding=stochastic,state=fp32");
  assert.deepEqual(fields(c), {
    ...fields(NAMED_POLICIES.mixed),
    lossScale: NONE,
    rounding: "stochastic",
    state: "fp32",
  });

  // A named base keeps its compute format when only params is overridden.
  const d = parsePolicy("fp16,params=fp32");
  assert.equal(d.params, "fp32");
  assert.equal(d.compute, "fp16");
  assert.equal(parsePolicy("fp16,state=params").state, "params");
  assert.equal(parsePolicy("fp16,bn=params").bn, "params");
});

Deno.test("key=value policies", () => {
  const p = parsePolicy("params=fp32,compute=fp16,accumulate=fp32,loss-scale=dynamic");
  assert.equal(p.name, "custom");
  assert.deepEqual(fields(p), fields(NAMED_POLICIES.mixed));

  const s = parsePolicy("loss-scale=static:128");
  assert.equal(s.name, "custom");
  assert.deepEqual(fields(s), { ...fields(NAMED_POLICIES.fp32), lossScale: { kind: "static", scale: 128 } });
  assert.deepEqual(parsePolicy("loss-scale=128").lossScale, { kind: "static", scale: 128 });
  assert.deepEqual(parsePolicy("loss-scale=static:0.5").lossScale, { kind: "static", scale: 0.5 });
  assert.deepEqual(parsePolicy("loss-scale=static:1e3").lossScale, { kind: "static", scale: 1000 });
  assert.deepEqual(parsePolicy("loss-scale=none").lossScale, NONE);

  // Alone, compute follows params.
  const h = parsePolicy("params=fp16");
  assert.equal(h.compute, "fp16");
  assert.equal(h.params, "fp16");
  const b = parsePolicy("params=bf16,loss-scale=none");
  assert.equal(b.compute, "bf16");
  // ... unless it is given.
  assert.equal(parsePolicy("params=fp16,compute=fp32").compute, "fp32");
});

Deno.test("bad policies throw a PolicyError naming the bad part", () => {
  const cases: [string, string][] = [
    ["fp8", "fp8"],
    ["fp16,compute=fp8", "fp8"],
    ["fp16,foo=1", "foo"],
    ["params=fp16,params=fp32", "params"],
    ["fp16,,", "fp16,,"],
    ["loss-scale=-3", "-3"],
    ["rounding=up", "up"],
    ["", '""'],
    ["fp16,bn", "bn"],
    ["params=params", "params"],
    ["fp16,accumulate=params", "params"],
    ["loss-scale=0", "0"],
    ["loss-scale=static:", "static:"],
    ["loss-scale=dynamic:5", "dynamic:5"],
    ["loss-scale=Infinity", "Infinity"],
    ["mixed,fp16", "fp16"],
    ["fp16, bn=fp32", "fp16, bn=fp32"],
    ["__proto__", "__proto__"],
  ];
  for (const [text, part] of cases) {
    assert.throws(() => parsePolicy(text), (e: unknown) => {
      assert.ok(e instanceof PolicyError, `${JSON.stringify(text)} throws a PolicyError, got ${e}`);
      assert.ok(e.message.includes(part), `message for ${JSON.stringify(text)} names ${part}: ${e.message}`);
      return true;
    });
  }
  // A few specific wordings.
  assert.throws(() => parsePolicy("params=fp16,params=fp32"), /twice/);
  assert.throws(() => parsePolicy("fp16,,"), /empty part/);
  assert.throws(() => parsePolicy("fp8"), /unknown policy "fp8"/);
});

// Regression: the base-name lookup once read inherited Object.prototype properties.
Deno.test({
  name: "Object.prototype names are not policies",
  fn() {
    for (const t of ["constructor", "toString", "hasOwnProperty,bn=fp32"]) {
      assert.throws(() => parsePolicy(t), PolicyError, t);
    }
  },
});

Deno.test("policyString round-trips through parsePolicy", () => {
  const texts = [
    ...Object.keys(NAMED_POLICIES),
    "fp16,bn=fp32",
    "mixed,accumulate=fp16",
    "mixed,rounding=stochastic,state=fp32",
    "loss-scale=static:128",
    "loss-scale=static:0.5",
    "params=bf16,compute=fp16,accumulate=bf16,state=fp32,bn=fp32,loss-scale=dynamic,rounding=stochastic",
    "fp16,loss-scale=1024",
  ];
  for (const t of texts) {
    const p = parsePolicy(t);
    const s = policyString(p);
    const q = parsePolicy(s);
    assert.equal(q.name, "custom");
    assert.deepEqual(fields(q), fields(p), `${t} -> ${s}`);
    assert.equal(policyString(q), s, "the canonical form is a fixed point");
  }
  assert.equal(
    policyString(NAMED_POLICIES.mixed),
    "params=fp32,compute=fp16,accumulate=fp32,state=params,bn=params,loss-scale=dynamic,rounding=nearest",
  );
});

// Regression: policyString once wrote exponent forms ("static:1e+21") that the parser rejected.
Deno.test({
  name: "policyString round-trips extreme static loss scales",
  fn() {
    for (const t of ["loss-scale=1e21", "loss-scale=0.0000001"]) {
      const p = parsePolicy(t);
      assert.deepEqual(fields(parsePolicy(policyString(p))), fields(p), t);
    }
  },
});

// ---------------------------------------------------------------------------------------------------------
// The policy pass, through the step graph builder.

const SGD: OptimizerConfig = PAPER_SGD;

/** conv 3x3 (2 filters) -> batch norm -> relu -> flatten -> dense logits. */
const BN_MODEL: ModelDef = {
  name: "bn_test",
  description: "conv, batch norm, dense",
  build(b: ModelBuilder, x: number, o) {
    let h = conv2d(b, x, 2, 3, { useBias: false });
    h = batchNorm(b, h);
    h = b.op("relu", [h]);
    return dense(b, flatten(b, h), o.classes);
  },
};

function build(model: ModelDef, policy: string, batch = 2): TrainGraph {
  const spec: StepSpec = {
    model,
    modelOptions: { classes: 10, hidden: [16] },
    policy: parsePolicy(policy),
    optimizer: SGD,
    inputShape: [1, 28, 28],
  };
  return buildTrainGraph(spec, batch);
}

function evalGraph(model: ModelDef, policy: string): Graph {
  return buildEvalGraph({
    model,
    modelOptions: { classes: 10, hidden: [16] },
    policy: parsePolicy(policy),
    optimizer: SGD,
    inputShape: [1, 28, 28],
  }, 2);
}

const casts = (g: Graph) => g.nodes.filter((n) => n.op === "cast");
const consumers = (g: Graph, id: number) => g.nodes.filter((n) => n.inputs.includes(id));
/** The leaves that must be fp32 whatever the policy: labels and the scalar step inputs. */
const FP32_INPUTS = new Set(["labels", "loss_scale", "inv_loss_scale", "step_seed", "adam_alpha"]);

function assertAllFormatted(g: Graph) {
  for (const n of g.nodes) assert.ok(n.format !== undefined, `node ${n.id} (${n.op}) has a format`);
}

for (const modelName of ["mlp", "cnn"]) {
  const model = MODELS[modelName];

  Deno.test(`policy pass, ${modelName}: fp32 has no casts and everything is fp32`, () => {
    const { graph: g, grads, slots } = build(model, "fp32");
    assertAllFormatted(g);
    assert.equal(casts(g).length, 0);
    for (const n of g.nodes) assert.equal(n.format, "fp32", `node ${n.id} ${n.op} ${n.name ?? ""}`);
    assert.equal(g.accumulate, "fp32");
    assert.equal(grads.length, g.leaves("param").length);
    assert.equal(slots.length, g.leaves("param").length, "one momentum slot per parameter");
  });

  Deno.test(`policy pass, ${modelName}: mixed casts each param once and keeps fp32 master gradients`, () => {
    const { graph: g, grads, slots } = build(model, "mixed");
    assertAllFormatted(g);
    const params = g.leaves("param");
    assert.ok(params.length >= 4);
    for (const p of params) {
      assert.equal(p.format, "fp32", p.name);
      const cs = consumers(g, p.id);
      const forwardCasts = cs.filter((n) => n.op === "cast");
      assert.equal(forwardCasts.length, 1, `one cast of ${p.name}`);
      assert.equal(forwardCasts[0].format, "fp16");
      assert.equal(forwardCasts[0].role, "activation");
      // Apart from the cast, only the optimizer update (and the lost-update count) reads the fp32 master weight.
      for (const n of cs) {
        if (n.op !== "cast") {
          assert.equal(n.role, n.op === "count_lost" ? "metric" : "update", `${p.name} read by ${n.op}`);
        }
      }
    }
    const fwdCasts = casts(g).filter((n) => n.role === "activation");
    assert.equal(fwdCasts.length, params.length, "exactly one forward cast per parameter");
    assert.equal(new Set(fwdCasts.map((n) => n.inputs[0])).size, params.length);
    // Backward casts bring fp16 gradients back to fp32.
    for (const n of casts(g).filter((n) => n.role === "grad")) {
      assert.equal(n.format, "fp32");
      assert.equal(g.node(n.inputs[0]).format, "fp16");
    }
    for (const n of g.nodes) {
      if (n.role === "activation") {
        assert.equal(n.format, n.op === "count_correct" ? "fp32" : "fp16", `activation ${n.id} ${n.op}`);
      }
    }
    assert.equal(g.node(g.outputs.loss).format, "fp16");
    assert.equal(g.node(g.outputs.finite).format, "fp32");
    assert.equal(grads.length, params.length);
    grads.forEach((id, i) => {
      assert.equal(g.node(id).format, "fp32", `gradient of ${params[i].name}`);
      assert.equal(g.node(id).role, "grad");
      assert.deepEqual(g.node(id).shape, params[i].shape);
    });
    for (const s of slots) assert.equal(g.node(s).format, "fp32", "slots follow the (fp32) parameter");
    for (const n of g.leaves("input")) {
      assert.equal(n.format, FP32_INPUTS.has(n.name!) ? "fp32" : "fp16", `input ${n.name}`);
    }
    assert.equal(g.node(g.byName("x")!).format, "fp16");
    // Updates write fp32 parameters.
    for (const s of g.state) assert.equal(g.node(s.next).format, "fp32", s.name);
  });

  Deno.test(`policy pass, ${modelName}: fp16 is fp16 throughout with no casts`, () => {
    const { graph: g, grads, slots } = build(model, "fp16");
    assertAllFormatted(g);
    assert.equal(casts(g).length, 0);
    for (const n of g.nodes) {
      const fp32 = (n.op === "input" && FP32_INPUTS.has(n.name!)) ||
        ["count_correct", "all_finite", "count_lost"].includes(n.op);
      assert.equal(n.format, fp32 ? "fp32" : "fp16", `node ${n.id} ${n.op} ${n.name ?? ""}`);
    }
    for (const id of grads) assert.equal(g.node(id).format, "fp16");
    for (const s of slots) assert.equal(g.node(s).format, "fp16");
  });
}

Deno.test("policy pass: the accumulate format is carried to the graph", () => {
  assert.equal(build(MODELS.mlp, "mixed,accumulate=fp16").graph.accumulate, "fp16");
  assert.equal(build(MODELS.mlp, "mixed").graph.accumulate, "fp32");
  assert.equal(build(MODELS.mlp, "fp16").graph.accumulate, "fp32");
  assert.equal(build(MODELS.mlp, "bf16,accumulate=bf16").graph.accumulate, "bf16");
  assert.equal(evalGraph(MODELS.mlp, "fp16,accumulate=fp16").accumulate, "fp16");
});

Deno.test("policy pass: state=fp32 puts optimizer slots in fp32 under fp16", () => {
  const { graph: g, slots } = build(MODELS.mlp, "fp16,state=fp32");
  assert.ok(slots.length > 0);
  for (const s of slots) assert.equal(g.node(s).format, "fp32");
  for (const p of g.leaves("param")) assert.equal(p.format, "fp16");
});

const BN_PARAMS = ["batch_normalization/gamma", "batch_normalization/beta"];
const BN_STATS = ["batch_normalization/moving_mean", "batch_normalization/moving_variance"];

for (const policy of ["fp16", "fp16,bn=fp32"]) {
  Deno.test(`policy pass: ${policy} keeps batch norm in fp32 without casts`, () => {
    const { graph: g, grads, slots } = build(BN_MODEL, policy);
    assertAllFormatted(g);
    const params = g.leaves("param");
    const names = params.map((p) => p.name!);
    for (const n of [...BN_PARAMS]) assert.ok(names.includes(n), `${n} in ${names}`);
    for (const p of params) {
      const bn = BN_PARAMS.includes(p.name!);
      assert.equal(p.format, bn ? "fp32" : "fp16", p.name);
    }
    for (const name of BN_STATS) assert.equal(g.node(g.byName(name)!).format, "fp32", name);
    assert.equal(
      casts(g).length,
      0,
      "batch norm reads its fp32 parameters directly; nothing else needs a cast",
    );
    for (const n of g.nodes) {
      if (n.op === "moments" || n.op === "ema") assert.equal(n.format, "fp32", n.op);
      if (n.op === "batchnorm") assert.equal(n.format, "fp16");
    }
    grads.forEach((id, i) => {
      assert.equal(
        g.node(id).format,
        BN_PARAMS.includes(params[i].name!) ? "fp32" : "fp16",
        `grad of ${params[i].name}`,
      );
    });
    for (const s of slots) {
      const owner = g.node(s).name!.replace(/\/momentum$/, "");
      assert.equal(g.node(s).format, BN_PARAMS.includes(owner) ? "fp32" : "fp16", g.node(s).name);
    }
    const stateNames = g.state.map((s) => s.name);
    for (const name of BN_STATS) assert.ok(stateNames.includes(name), `${name} is updated`);

    // The inference graph: batchnorm_infer reads gamma, beta and the statistics in fp32 directly.
    const e = evalGraph(BN_MODEL, policy);
    assert.equal(casts(e).length, 0);
    const infer = e.nodes.find((n: Node) => n.op === "batchnorm_infer")!;
    assert.deepEqual(infer.inputs.slice(1).map((i) => e.node(i).format), ["fp32", "fp32", "fp32", "fp32"]);
    assert.equal(infer.format, "fp16");
  });
}

Deno.test("policy pass: fp16,bn=fp16 puts batch norm in fp16 too", () => {
  const { graph: g } = build(BN_MODEL, "fp16,bn=fp16");
  for (const p of g.leaves("param")) assert.equal(p.format, "fp16", p.name);
  for (const name of BN_STATS) assert.equal(g.node(g.byName(name)!).format, "fp16", name);
  for (const n of g.nodes) if (n.op === "moments" || n.op === "ema") assert.equal(n.format, "fp16", n.op);
});

Deno.test("policy pass: mixed with batch norm casts only the non-bn parameters", () => {
  const { graph: g } = build(BN_MODEL, "mixed");
  const params = g.leaves("param");
  for (const p of params) assert.equal(p.format, "fp32");
  const casted = new Set(
    casts(g).filter((n) => n.role === "activation").map((n) => g.node(n.inputs[0]).name),
  );
  for (const p of params) assert.equal(casted.has(p.name), !BN_PARAMS.includes(p.name!), p.name);
  for (const name of BN_STATS) assert.equal(g.node(g.byName(name)!).format, "fp32");
});

Deno.test("policy pass: applyPolicy maps every source node and keeps outputs and state bindings", () => {
  // Build a forward graph by hand through the model builder and apply a policy directly.
  const spec = { model: BN_MODEL, modelOptions: { classes: 10, hidden: [] } };
  const g0 = buildEvalGraph(
    { ...spec, policy: NAMED_POLICIES.fp32, optimizer: SGD, inputShape: [1, 28, 28] },
    2,
  );
  const { graph, map } = applyPolicy(g0, NAMED_POLICIES.mixed);
  for (let i = 0; i < g0.nodes.length; i++) {
    const m = map[i];
    assert.ok(m >= 0, `node ${i} mapped`);
    assert.equal(graph.node(m).op, g0.nodes[i].op);
    assert.deepEqual(graph.node(m).shape, g0.nodes[i].shape);
  }
  for (const [name, id] of Object.entries(g0.outputs)) assert.equal(graph.outputs[name], map[id]);
  // Every new node beyond the mapped ones is a cast.
  const mapped = new Set(map);
  for (const n of graph.nodes) if (!mapped.has(n.id)) assert.equal(n.op, "cast");
  // conv2d/kernel, dense/kernel and dense/bias are cast; gamma and beta are read directly by batchnorm_infer.
  assert.equal(graph.nodes.length - g0.nodes.length, 3);
});
