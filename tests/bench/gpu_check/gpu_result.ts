/**
 * The last part of the GPU check (tests/bench/gpu_check/run.sh): reads what the other parts left in one
 * folder and writes result.json and result.md. Inputs, each optional (a missing one is reported as not run):
 * prepared.json (prepare.sh's commit and date), machine.txt ("key: value" lines: when it ran, the mode, the
 * GPU and CPU), steps.json (gpu_steps.ts), hash.json (cell_hash.ts
 * on this machine), expected_hash.json (cell_hash.ts where prepare.sh ran), conformance.txt and
 * conformance.rc (`deno test` of tests/conformance_webgpu_test.ts and its exit code).
 *
 * A time is a GPU figure only when the check ran in full mode on a real adapter (webgpu: not a fallback
 * adapter; torch: CUDA). Other times are printed under a heading that says what they are, and the issue's
 * targets are evaluated on GPU figures alone.
 *
 * @module
 */

import type { CellHash } from "./cell_hash.ts";
import type { GpuSteps, StepRow } from "./gpu_steps.ts";
import { markdownTable } from "../timing.ts";

/** One conformance test's outcome, as `deno test` printed it. */
export interface TestOutcome {
  readonly name: string;
  readonly ok: boolean;
}

/** The outcomes `deno test` printed (its default reporter, NO_COLOR set): "name ... ok (1s)" lines. */
export function parseTestOutput(text: string): TestOutcome[] {
  return [...text.matchAll(/^(.+?) \.\.\. (ok|FAILED)\b/gm)].map((m) => ({ name: m[1], ok: m[2] === "ok" }));
}

/** The targets on a real GPU (issue 20): what gpu_result.ts checks the figures against. */
export const TARGETS = { fp16OverFp32: 1.3, fp32OverTorch: 0.25, models: ["resnet32", "vgg16"] } as const;

const readJson = async <T>(path: string): Promise<T | undefined> => {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`${path}: ${(e as Error).message}`);
  }
};
const readText = (path: string) => Deno.readTextFile(path).catch(() => undefined);

/** Median ms of `model` in `config` among `rows`, when it was measured. */
const msOf = (rows: readonly StepRow[], model: string, config: string) =>
  rows.find((r) => r.model === model && r.config === config)?.medianMs;

/** Networks whose parameter counts differ between webgpu and the peer: the two would not run one network. */
function paramMismatches(steps: GpuSteps | undefined): string[] {
  const out: string[] = [];
  for (const w of steps?.webgpu ?? []) {
    const t = steps?.torch.find((r) => r.model === w.model && r.params !== undefined);
    if (
      w.params !== undefined && t && t.params !== w.params && !out.some((l) => l.startsWith(`${w.model}:`))
    ) {
      out.push(`${w.model}: webgpu has ${w.params} parameters, the peer ${t.params}`);
    }
  }
  return out;
}

/** The result of the check, from the parts in `dir`. */
export async function gpuResult(dir: string) {
  const prepared = await readJson<Record<string, string | boolean>>(`${dir}/prepared.json`) ?? {};
  const machine = Object.fromEntries(
    (await readText(`${dir}/machine.txt`) ?? "").split("\n").filter((l) => l.includes(": "))
      .map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]),
  );
  const meta = { ...prepared, ...machine };
  const steps = await readJson<GpuSteps>(`${dir}/steps.json`);
  const hash = await readJson<CellHash>(`${dir}/hash.json`);
  const expected = await readJson<CellHash>(`${dir}/expected_hash.json`);
  const testText = await readText(`${dir}/conformance.txt`);
  const testRc = await readText(`${dir}/conformance.rc`);
  const full = steps !== undefined && !steps.smoke;
  const env = steps?.webgpuEnvironment;
  const webgpuOnGpu = full && env?.fallbackAdapter === "false";
  const torchOnGpu = full && "device" in steps.peer && steps.peer.device === "cuda";
  const tests = testText === undefined ? undefined : parseTestOutput(testText);
  const targets = TARGETS.models.map((model) => {
    const [f32, f16] = [msOf(steps?.webgpu ?? [], model, "fp32"), msOf(steps?.webgpu ?? [], model, "fp16")];
    const torch32 = msOf(steps?.torch ?? [], model, "fp32");
    const fp16Speedup = webgpuOnGpu && f32 && f16 ? f32 / f16 : undefined;
    const vsTorch = webgpuOnGpu && torchOnGpu && f32 && torch32 ? torch32 / f32 : undefined;
    return {
      model,
      fp16Speedup,
      fp16Met: fp16Speedup === undefined ? undefined : fp16Speedup >= TARGETS.fp16OverFp32,
      fp32ThroughputVsTorch: vsTorch,
      fp32Met: vsTorch === undefined ? undefined : vsTorch >= TARGETS.fp32OverTorch,
    };
  });
  return {
    schema: "f16repro.gpu-check/1",
    mode: steps === undefined ? "unknown" : steps.smoke ? "smoke" : "full",
    meta,
    gpuFigures: { webgpu: webgpuOnGpu, torch: torchOnGpu },
    conformance: tests === undefined ? { run: false } : {
      run: true,
      exitCode: testRc === undefined ? undefined : Number(testRc.trim()),
      passed: tests.filter((t) => t.ok).length,
      failed: tests.filter((t) => !t.ok).map((t) => t.name),
      tests,
    },
    steps: steps ?? { run: false },
    hash: {
      here: hash ?? null,
      expected: expected ?? null,
      identical: hash && expected ? hash.weightHash === expected.weightHash : undefined,
    },
    targets,
    mismatches: paramMismatches(steps),
  };
}

/** The Markdown page of a result. */
export function resultMarkdown(r: Awaited<ReturnType<typeof gpuResult>>): string {
  const lines = [`# GPU check (${r.mode} mode)`, ""];
  for (const [k, v] of Object.entries(r.meta)) lines.push(`- ${k}: ${v}`);
  const label = (gpu: boolean) => gpu ? "GPU figures" : "NOT GPU figures (smoke mode or a CPU device)";
  lines.push("", "## Conformance suite on this adapter", "");
  if (!r.conformance.run) lines.push("not run");
  else {
    const c = r.conformance;
    const stopped = c.exitCode === 124
      ? " (stopped at its time limit: the tests not listed did not finish)"
      : "";
    lines.push(
      `exit code ${c.exitCode ?? "unknown"}${stopped}; ${c.passed} passed, ${c.failed?.length} failed`,
    );
    for (const name of c.failed ?? []) lines.push(`- FAILED: ${name}`);
  }
  const s = "webgpu" in r.steps ? r.steps : undefined;
  if (!s) lines.push("", "## Training steps", "", "not run");
  else {
    const env = s.webgpuEnvironment;
    lines.push("", `## webgpu, one training step at batch ${s.batch}: ${label(r.gpuFigures.webgpu)}`, "");
    lines.push(
      env.error !== undefined
        ? `the webgpu engine did not load: ${env.error}`
        : `adapter: ${env.adapter}; driver: ${env.driver}; fallback adapter: ${env.fallbackAdapter}`,
      "",
    );
    lines.push(table(s.webgpu, s.batch));
    const peer = "label" in s.peer
      ? `${s.peer.label} on ${s.peer.gpu ?? s.peer.device}`
      : `skipped (${s.peer.skipped})`;
    lines.push("", `## PyTorch peer: ${peer}: ${label(r.gpuFigures.torch)}`, "");
    if (s.torch.length) lines.push(table(s.torch, s.batch));
  }
  lines.push("", "## wasm weight hash of one quick-profile cell on this machine's CPU", "");
  const h = r.hash;
  if (!h.here) lines.push("not run");
  else {
    lines.push(`- ${h.here.cell}, on this machine (${h.here.cpu}): ${h.here.weightHash}`);
    lines.push(
      `- where prepare.sh ran (${h.expected?.cpu ?? "not recorded"}): ${h.expected?.weightHash ?? "none"}`,
    );
    lines.push(`- identical: ${h.identical ?? "unknown"}`);
  }
  for (const m of r.mismatches) lines.push("", `PARAMETER COUNT MISMATCH: ${m}`);
  lines.push("", "## Targets (issue 20), on GPU figures only", "");
  const yes = (v: boolean | undefined) => v === undefined ? "not evaluated" : v ? "met" : "NOT met";
  const x = (v: number | undefined) => v === undefined ? "-" : `${v.toFixed(2)}x`;
  lines.push(markdownTable(
    [
      "network",
      `webgpu fp16 over fp32 (>= ${TARGETS.fp16OverFp32}x)`,
      "",
      `webgpu fp32 over torch fp32 (>= ${TARGETS.fp32OverTorch}x)`,
      "",
    ],
    r.targets.map((
      t,
    ) => [t.model, x(t.fp16Speedup), yes(t.fp16Met), x(t.fp32ThroughputVsTorch), yes(t.fp32Met)]),
  ));
  return lines.join("\n") + "\n";
}

/** Median ms and images per second of each row. */
function table(rows: readonly StepRow[], batch: number): string {
  return markdownTable(
    ["network", "config", "median ms/step", "images/s", "steps timed", "note"],
    rows.map((r) => [
      r.model,
      r.config,
      r.medianMs?.toFixed(2) ?? "-",
      r.medianMs ? (batch / (r.medianMs / 1000)).toFixed(1) : "-",
      r.ms?.length ?? 0,
      r.error?.replaceAll("|", "/") ?? "",
    ]),
  );
}

if (import.meta.main) {
  const [dir, out] = Deno.args;
  if (!dir || !out || Deno.args.length !== 2) {
    console.error("gpu_result: expected two arguments, the parts folder and the output folder");
    Deno.exit(2);
  }
  try {
    const r = await gpuResult(dir);
    await Deno.writeTextFile(`${out}/result.json`, JSON.stringify(r, null, 2) + "\n");
    await Deno.writeTextFile(`${out}/result.md`, resultMarkdown(r));
  } catch (e) {
    console.error(`gpu_result: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
    Deno.exit(1);
  }
}
