/**
 * `deno task compile` (lib/compile.ts): a missing Deno runtime (denort) is one line that says what to do,
 * and nothing is left behind; the binary embeds what the program reads at run time.
 *
 * The success path needs denort, which these machines cannot download, so it is not tested here
 * (docs/testing.md).
 */

import assert from "node:assert/strict";
import { compileArgs, embeddedExtras, explainFailure, importMap, parseCompileArgs } from "../lib/compile.ts";
import { npmSetFiles } from "../datasets/npm_sets.ts";

const SCRIPT = new URL("../lib/compile.ts", import.meta.url).pathname;

Deno.test("compile: DENORT_BIN naming no file gives one line, exit 1, and no output folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-run",
        SCRIPT,
        "--allow-read",
        "-o",
        `${dir}/dist/f16repro`,
        "--no-check", // the type check is deno task check's job; this keeps the test fast
      ],
      env: { DENORT_BIN: `${dir}/missing/denort`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
    assert.equal(out.code, 1);
    assert.equal(lines.length, 2, lines.join("\n")); // "Compiling ..." and the reason
    assert.match(
      lines[1],
      /^Cannot compile: DENORT_BIN is .*missing\/denort, which does not exist; download denort-/,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), [], "something was left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// deno compile's own output when dl.deno.land cannot be reached (Deno 2.9.6, recorded on this machine).
const DOWNLOAD_FAILED = `Compile main.ts to dist/f16repro
error: Writing deno compile executable to temporary file 'dist/f16repro.tmp-a70313e9899e5325'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known
    2: client error (Connect)
    3: dns error
    4: failed to lookup address information: Name or service not known

Stack backtrace:
   0: <unknown>
   1: <unknown>
`;

Deno.test("compile: a failed runtime download is one line naming the cause and the fix", () => {
  const line = explainFailure(DOWNLOAD_FAILED);
  assert.doesNotMatch(line, /\n/);
  assert.match(line, /^Cannot compile: deno compile needs the Deno \S+ runtime for \S+ \(denort\)/);
  assert.match(line, /\(failed to lookup address information: Name or service not known\)/);
  assert.match(line, /set DENORT_BIN to the denort file$/);
  assert.doesNotMatch(line, /<unknown>|backtrace/i);
});

Deno.test("compile: any other failure is Deno's first error line", () => {
  const line = explainFailure('Check main.ts\nerror: Module not found "file:///x/main.ts".\n');
  assert.equal(line, 'Cannot compile: Module not found "file:///x/main.ts".');
});

Deno.test("compile: arguments split into the binary's permissions, its path and deno compile's flags", () => {
  const req = parseCompileArgs(["--allow-read", "--allow-net=a.org", "-o", "out/x", "--target", "t"]);
  assert.deepEqual(req, {
    permissions: ["--allow-read", "--allow-net=a.org"],
    output: "out/x",
    passThrough: ["--target", "t"],
  });
  assert.equal(parseCompileArgs([]).output, "dist/f16repro");
  assert.throws(() => parseCompileArgs(["-o"]), /-o needs a file name/);
  assert.throws(() => parseCompileArgs(["--allow-all"]), /Refusing --allow-all/);
});

Deno.test("compile: the binary embeds the worker, every npm set file, vega-embed and onnx-proto, and no unused package", async () => {
  const imports = await importMap();
  const extras = embeddedExtras(imports);
  const args = compileArgs(parseCompileArgs(["--allow-read"]), extras, "/tmp/f", "main.ts");
  const included = args.flatMap((a, i) => (args[i - 1] === "--include" ? [a] : []));
  assert.deepEqual(included, extras);
  assert.equal(npmSetFiles().length, 20);
  const expected = ["kernels/wasm/worker.ts", ...npmSetFiles(), imports["vega-embed"], imports["onnx-proto"]];
  for (const f of expected) assert.ok(included.includes(f), f);
  assert.match(imports["vega-embed"], /^npm:vega-embed@/);
  assert.ok(args.includes("--exclude-unused-npm"));
  assert.deepEqual(args.slice(-3), ["-o", "/tmp/f", "main.ts"]);
  assert.throws(() => embeddedExtras({}), /do not pin vega-embed/);
});
