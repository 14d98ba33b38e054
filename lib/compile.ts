/**
 * `deno task compile`: builds the standalone binary `dist/f16repro` with `deno compile`, and turns its
 * failures into one line.
 *
 * Usage: `deno run ... lib/compile.ts [--allow-* ...] [-o FILE] [other deno compile flags]`. The
 * `--allow-*` flags are the permissions baked into the binary (deno.json's compile task lists them);
 * `-o` names the binary (default dist/f16repro); anything else goes to `deno compile` as given (for
 * example `--target aarch64-apple-darwin` or `--no-check`).
 *
 * What this adds to a plain `deno compile`:
 *
 * - It embeds what the program needs and no more: the npm packages the program imports, plus what
 *   `deno compile` cannot see by itself (embeddedExtras), so that the binary needs no Deno cache.
 * - `deno compile` needs the Deno runtime for the target (denort), which it downloads from dl.deno.land.
 *   Where that fails, it prints a backtrace and leaves an empty output folder; here the failure is one line
 *   that says what is needed, and nothing is left behind: the binary is built in a temporary folder and
 *   moved into place only when it is complete.
 *
 * It needs --allow-run (it starts `deno compile`, which reads the project and writes the binary itself),
 * --allow-read and --allow-write (the temporary folder and the output) and --allow-env (DENORT_BIN, to
 * name it in the message).
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { npmSetFiles } from "../datasets/npm_sets.ts";
import { ENGINES } from "../kernels/registry.ts";

/** Where the binary goes unless -o says otherwise. */
export const DEFAULT_OUTPUT = "dist/f16repro";

/**
 * Modules and files the binary needs that `deno compile` does not find by itself: the modules engines start
 * dynamically (their specs' compileIncludes: the wasm engine's worker), the npm sets' class files and
 * onnx-proto (`export`),
 * which are imported through computed specifiers, and vega-embed, whose browser build the report reads as
 * a file (reports/vendor.ts). `imports` is deno.json's import map, which pins the packages' versions.
 */
export function embeddedExtras(imports: Readonly<Record<string, string>>): string[] {
  const pinned = (name: string) => {
    const spec = imports[name];
    if (!spec) throw new Error(`deno.json's imports do not pin ${name}`);
    return spec;
  };
  const root = new URL("../", import.meta.url).pathname;
  // Each engine's spec names the modules it starts dynamically (the wasm engine's worker).
  const engines = ENGINES.flatMap((e) => e.compileIncludes ?? []).map((u) => u.pathname.slice(root.length));
  return [...engines, ...npmSetFiles(), pinned("vega-embed"), pinned("onnx-proto")];
}

/** deno.json's import map. */
export async function importMap(): Promise<Record<string, string>> {
  return JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).imports;
}

/** A command line split into the binary's permissions, its path and the rest for `deno compile`. */
export interface CompileRequest {
  readonly permissions: string[];
  readonly output: string;
  readonly passThrough: string[];
}

/** Splits this script's arguments; a bad one is a one-line error (thrown as a plain Error). */
export function parseCompileArgs(args: readonly string[]): CompileRequest {
  const permissions: string[] = [], passThrough: string[] = [];
  let output = DEFAULT_OUTPUT;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-o" || a === "--output") {
      const v = args[++i];
      if (!v || v.startsWith("-")) throw new Error(`${a} needs a file name`);
      output = v;
    } else if (a.startsWith("--allow-")) permissions.push(a);
    else passThrough.push(a);
  }
  if (permissions.some((p) => p === "--allow-all")) {
    throw new Error("Refusing --allow-all: list the permissions");
  }
  return { permissions, output, passThrough };
}

/** The `deno compile` arguments that write the binary to `target`, embedding `extras`. */
export function compileArgs(
  req: CompileRequest,
  extras: readonly string[],
  target: string,
  main: string,
): string[] {
  return [
    "compile",
    // Without it the binary embeds every package of deno.lock, assemblyscript's compiler among them.
    "--exclude-unused-npm",
    ...req.permissions,
    ...extras.flatMap((f) => ["--include", f]),
    ...req.passThrough,
    "-o",
    target,
    main,
  ];
}

/**
 * One line for a failed `deno compile`, from its stderr. A missing runtime (denort) names what to do;
 * anything else is Deno's own first error line.
 */
export function explainFailure(stderr: string, denortBin?: string): string {
  // Deno's error, then its causes ("0: ...", "1: ..."), then a backtrace whose frames are numbered too.
  const all = stderr.split("\n").map((l) => l.trim());
  const end = all.findIndex((l) => l.startsWith("Stack backtrace"));
  const lines = (end < 0 ? all : all.slice(0, end)).filter((l) => l !== "");
  const version = Deno.version.deno, platform = Deno.build.target;
  const fix = `download denort-${platform}.zip from https://dl.deno.land/release/v${version}/ ` +
    `where that site is reachable, unzip it, and set DENORT_BIN to the denort file`;
  const missing = lines.find((l) => /Could not find denort at/.test(l));
  if (missing) {
    const at = /at '([^']*)'/.exec(missing)?.[1] ?? denortBin ?? "";
    return `Cannot compile: DENORT_BIN is ${at}, which does not exist; ${fix}`;
  }
  if (lines.some((l) => /denort|dl\.deno\.land|Setting up base binary/.test(l))) {
    // The last "N: ..." cause is the most specific (for example the DNS error).
    const causes = lines.filter((l) => /^\d+: /.test(l)).map((l) => l.replace(/^\d+: /, ""));
    const why = causes.length > 0 ? ` (${causes[causes.length - 1]})` : "";
    return `Cannot compile: deno compile needs the Deno ${version} runtime for ${platform} (denort), ` +
      `and downloading it failed${why}; ${fix}`;
  }
  const error = lines.find((l) => /^error: /.test(l));
  return `Cannot compile: ${
    (error ?? lines[lines.length - 1] ?? "deno compile failed").replace(/^error: /, "")
  }`;
}

/** Runs `deno compile`; returns the exit code (0: the binary is at its path; 1: nothing was written). */
export async function compile(args: readonly string[]): Promise<number> {
  let req: CompileRequest;
  try {
    req = parseCompileArgs(args);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const root = new URL("..", import.meta.url).pathname;
  const output = resolve(root, req.output);
  // The temporary folder sits beside the output folder, so the final move is a rename on one file system.
  const parent = dirname(dirname(output));
  await Deno.mkdir(parent, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: parent, prefix: ".f16repro-compile-" });
  try {
    console.error(`Compiling main.ts into ${req.output} (type check and embedding take about a minute)`);
    const built = join(tmp, basename(output));
    const result = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(req, embeddedExtras(await importMap()), built, join(root, "main.ts")),
      cwd: root,
      // deno compile colours its errors even when piped.
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!result.success) {
      const stderr = new TextDecoder().decode(result.stderr);
      console.error(explainFailure(stderr, Deno.env.get("DENORT_BIN")));
      return 1;
    }
    await Deno.mkdir(dirname(output), { recursive: true });
    await Deno.rename(built, output);
    const mb = (await Deno.stat(output)).size / 2 ** 20;
    console.error(`Wrote ${req.output} (${mb.toFixed(0)} MB)`);
    return 0;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await compile(Deno.args));
