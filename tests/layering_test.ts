/**
 * The layer and size check (tests/tools/layering.ts): it passes on the
 * repository, and fails on a planted upward import (static, type-only,
 * dynamic or re-export), an engine folder reaching into another engine, an
 * unplaced file, a file past its size budget and an allowed exception that no
 * longer matches. Plants go into a temporary root with the repository's
 * layout, which the checker takes as its argument.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { importsOf } from "./tools/imports.ts";
import { ALLOWED, type Allowed, check } from "./tools/layering.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const TOOL = fileURLToPath(new URL("./tools/layering.ts", import.meta.url));

/** A temporary root holding `files` (path -> text), removed after `f`. */
async function withRoot(files: Record<string, string>, f: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "layering_" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(dirname(join(root, path)), { recursive: true });
      await Deno.writeTextFile(join(root, path), text);
    }
    await f(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const lines = (n: number) => "export const x = 1;\n".repeat(n);

/** Runs the checker as `deno task check` does (plus `denoFlags`); its exit code and its stderr lines. */
async function runTool(
  args: string[],
  denoFlags: string[] = [],
): Promise<{ code: number; out: string; err: string[] }> {
  const cmd = ["run", "--no-config", "--allow-read", ...denoFlags, TOOL, ...args];
  const p = await new Deno.Command(Deno.execPath(), { args: cmd }).output();
  const err = new TextDecoder().decode(p.stderr).split("\n").filter((l) => l !== "");
  return { code: p.code, out: new TextDecoder().decode(p.stdout), err };
}

Deno.test("the repository keeps its layers and budgets", async () => {
  assert.deepEqual(await check(REPO), []);
});

Deno.test("a planted upward import in a copy of lib/graph fails the check with one line naming it", async () => {
  const graph = await Deno.readTextFile(join(REPO, "lib/graph/graph.ts"));
  await withRoot({ "lib/graph/graph.ts": graph }, async (root) => {
    assert.deepEqual(await check(root), [], "the unplanted copy passes");
    const clean = await runTool([root]);
    assert.equal(clean.code, 0);
  });
  const planted = `import { trainCommand } from "../cli/train.ts";\n${graph}`;
  await withRoot({ "lib/graph/graph.ts": planted }, async (root) => {
    const want =
      "lib/graph/graph.ts:1: imports lib/cli/train.ts: layer 1 (graph) may not import layer 10 (cli)";
    assert.deepEqual(await check(root), [want]);
    const run = await runTool([root]);
    assert.equal(run.code, 1);
    assert.deepEqual(run.err, [want]);
  });
});

Deno.test("type-only imports, dynamic imports and re-exports count; comments and strings do not", async () => {
  await withRoot({
    "lib/model/a.ts": 'import type { Page } from "../../reports/page.ts";\n',
    "lib/record/b.ts": 'export * from "../train/train.ts";\nexport type { X } from "../analysis/x.ts";\n',
    "datasets/c.ts":
      'const m = await import("../lib/reproduce/runner.ts");\ntype T = import("../main.ts").T;\n',
    "lib/policy/d.ts": [
      '// import { a } from "../cli/train.ts";',
      '/* export * from "../cli/train.ts"; */',
      'const s = "import x from \\"../cli/train.ts\\"";',
      'const r = /"import("/.test(s) ? `import("../cli/a.ts") ${s}` : "";',
      'import { ok } from "../graph/graph.ts";',
    ].join("\n"),
  }, async (root) => {
    assert.deepEqual(await check(root), [
      "datasets/c.ts:1: imports lib/reproduce/runner.ts: layer 4 (datasets) may not import layer 8 (reproduce)",
      "datasets/c.ts:2: imports main.ts: layer 4 (datasets) may not import layer 11 (main)",
      "lib/model/a.ts:1: imports reports/page.ts: layer 2 (policy and model) may not import layer 9 (reports)",
      "lib/record/b.ts:1: imports lib/train/train.ts: layer 5 (record) may not import layer 6 (train)",
      "lib/record/b.ts:2: imports lib/analysis/x.ts: layer 5 (record) may not import layer 7 (analysis and export)",
    ]);
  });
});

Deno.test("the lexer finds multi-line imports and imports inside template substitutions", () => {
  const src = [
    "import {",
    "  a,",
    "  b,",
    '} from "./a.ts";',
    'const t = `x ${await import("./b.ts")} y ${`${"}"}`}`;',
    'export { c } from "./c.ts";',
    "export { d };",
    'import "./side.ts";',
    "const o = { import: 1 }; o.import;",
  ].join("\n");
  assert.deepEqual(importsOf(src), [
    { specifier: "./a.ts", line: 1 },
    { specifier: "./b.ts", line: 5 },
    { specifier: "./c.ts", line: 6 },
    { specifier: "./side.ts", line: 8 },
  ]);
});

Deno.test("an engine folder imports only itself, the contract and kernels/ref/", async () => {
  await withRoot({
    "kernels/wasm/ok.ts": [
      'import "./mod.ts";',
      'import "../engine.ts";',
      'import "../spec.ts";',
      'import "../ref/mod.ts";',
      'import "../../lib/graph/graph.ts";',
    ].join("\n"),
    "kernels/wasm/bad.ts": 'import "../ort/mod.ts";\nimport "../registry.ts";\n',
    "kernels/spec.ts": 'import "./engine.ts";\nimport "./wasm/spec.ts";\n',
    "kernels/registry.ts": 'import "./wasm/spec.ts";\nimport "./ort/spec.ts";\n',
  }, async (root) => {
    const engine =
      "an engine folder imports only itself, kernels/engine.ts, kernels/spec.ts and kernels/ref/";
    assert.deepEqual(await check(root), [
      `kernels/spec.ts:2: imports kernels/wasm/spec.ts: the engine contract (kernels/engine.ts, kernels/spec.ts) imports no engine and not the registry`,
      `kernels/wasm/bad.ts:1: imports kernels/ort/mod.ts: ${engine}`,
      `kernels/wasm/bad.ts:2: imports kernels/registry.ts: ${engine}`,
    ]);
  });
});

Deno.test("an unplaced file, and an import of one, fail the check", async () => {
  await withRoot({
    "lib/plugins/x.ts": "export const x = 1;\n",
    "kernels/helpers.ts": "export const y = 1;\n",
    "lib/train/z.ts": 'import { fixture } from "../../tests/support/fixtures.ts";\n',
  }, async (root) => {
    assert.deepEqual(await check(root), [
      "kernels/helpers.ts: unplaced file: add its folder to a layer in tests/tools/layering.ts",
      "lib/plugins/x.ts: unplaced file: add its folder to a layer in tests/tools/layering.ts",
      "lib/train/z.ts:1: imports tests/support/fixtures.ts: the imported file is in no layer",
    ]);
  });
});

Deno.test("a file past its size budget fails; the generated wasm module is exempt", async () => {
  await withRoot({
    "lib/graph/at.ts": lines(500),
    "lib/graph/over.ts": lines(501),
    // AssemblyScript compiles on its own: its size counts, its imports are not the Deno module graph.
    "kernels/wasm/as/over.ts": 'import { page } from "../../../reports/page.ts";\n' + lines(500),
    "kernels/wasm/kernels_wasm.ts": lines(2000),
    "tests/at_test.ts": lines(700),
    "tests/support/over.ts": lines(700) + "// one more, without a final newline",
  }, async (root) => {
    assert.deepEqual(await check(root), [
      "kernels/wasm/as/over.ts: 501 lines, over the budget of 500 for source files",
      "lib/graph/over.ts: 501 lines, over the budget of 500 for source files",
      "tests/support/over.ts: 701 lines, over the budget of 700 for test files",
    ]);
    const run = await runTool([root]);
    assert.equal(run.code, 1);
    assert.equal(run.err.length, 3);
  });
});

Deno.test("an allowed exception passes only while it matches: exact pairs, size ceilings, stale entries", async () => {
  const allowed: Allowed[] = [
    { file: "lib/graph/a.ts", imports: "lib/cli/train.ts", reason: "test" },
    { file: "lib/graph/big.ts", lines: 520, reason: "test" },
    { file: "lib/graph/gone.ts", imports: "lib/cli/x.ts", reason: "its file is absent: not stale" },
  ];
  await withRoot({
    "lib/graph/a.ts": 'import "../cli/train.ts";\nimport "../cli/main.ts";\n',
    "lib/graph/big.ts": lines(520),
  }, async (root) => {
    assert.deepEqual(await check(root, allowed), [
      "lib/graph/a.ts:2: imports lib/cli/main.ts: layer 1 (graph) may not import layer 10 (cli)",
    ]);
    await Deno.writeTextFile(join(root, "lib/graph/a.ts"), "");
    await Deno.writeTextFile(join(root, "lib/graph/big.ts"), lines(521));
    assert.deepEqual(await check(root, allowed), [
      "lib/graph/big.ts: 521 lines, over its allowed ceiling of 520",
      "lib/graph/a.ts: ALLOWED entry lib/graph/a.ts -> lib/cli/train.ts matches nothing: remove it",
    ]);
    await Deno.writeTextFile(join(root, "lib/graph/big.ts"), lines(499));
    assert.deepEqual((await check(root, allowed)).slice(0, 1), [
      "lib/graph/big.ts: 499 lines, within the budget: remove its ALLOWED ceiling",
    ]);
  });
});

Deno.test("--help prints the layers, the budgets and every allowed exception with its reason", async () => {
  const run = await runTool(["--help"]);
  assert.equal(run.code, 0);
  for (const a of ALLOWED) {
    const head = "imports" in a ? `${a.file} -> ${a.imports}` : `${a.file} up to ${a.lines} lines`;
    assert.ok(run.out.includes(`${head}: ${a.reason}`), head);
  }
  assert.match(run.out, /10 cli: lib\/cli\/, lib\/compile\.ts/);
  assert.match(run.out, /500 lines per source file, 700 per test file/);
});

Deno.test("a bad argument or an unreadable folder is one line and exit code 2", async () => {
  const missing = join(await Deno.makeTempDir(), "absent");
  for (
    const [args, line] of [
      [[missing], `Root folder ${missing} is not a directory`],
      [["--fast"], "Unknown flag --fast: see --help"],
      [[REPO, REPO], "Expected one root folder, got 2"],
    ] as const
  ) {
    const run = await runTool([...args]);
    assert.equal(run.code, 2);
    assert.deepEqual(run.err, [line]);
  }
  await Deno.remove(dirname(missing));
  await withRoot({ "lib/graph/a.ts": "" }, async (root) => {
    const run = await runTool([root], [`--deny-read=${join(root, "lib")}`]);
    assert.equal(run.code, 2);
    assert.equal(run.err.length, 1);
    assert.match(run.err[0], /^Cannot read under .*lib/);
  });
});
