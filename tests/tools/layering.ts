/**
 * The layer and size check that `deno task check` runs.
 *
 * Usage: `deno run --allow-read tests/tools/layering.ts [root]` (root: the repository, by default the one
 * this file sits in; `--help` prints the layers, the budgets and the allowed exceptions).
 *
 * - Layers: every .ts file under main.ts, lib/, kernels/, datasets/ and reports/ (not kernels/wasm/as/,
 *   which is AssemblyScript compiled on its own) belongs to one layer of {@linkcode LAYERS}; a file may import
 *   its own layer and lower ones, never a higher one. Type-only imports count: they are dependencies of
 *   the design. Inside kernels/, an engine folder kernels/<name>/ imports only itself, the contract
 *   (kernels/engine.ts, kernels/spec.ts) and kernels/ref/; only kernels/registry.ts knows every engine. A
 *   file in no layer is an error, so a new folder is placed deliberately.
 * - Sizes: at most {@linkcode SOURCE_BUDGET} lines per source file (kernels/wasm/as/ included) and
 *   {@linkcode TEST_BUDGET} per test file; generated files ({@linkcode GENERATED}) are exempt.
 * - {@linkcode ALLOWED}: known exceptions, each with its reason; an import pair is exact, a size entry is a
 *   ceiling the file may shrink under but not grow past. An entry whose file exists and that no longer
 *   matches anything is an error too, so the list only shrinks.
 *
 * Exit 0 when clean; 1 with one line per violation; 2 for a bad argument or an unreadable folder.
 *
 * @module
 */

import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { importsOf } from "./imports.ts";

/** The layers, lowest first: a path ending in "/" is a folder, `kernels/*` is every engine folder. */
export const LAYERS: readonly { readonly name: string; readonly paths: readonly string[] }[] = [
  { name: "base", paths: ["lib/errors.ts", "lib/io.ts", "lib/math.ts", "lib/random.ts", "lib/formats/"] },
  { name: "graph", paths: ["lib/graph/"] },
  { name: "policy and model", paths: ["lib/policy/", "lib/model/"] },
  { name: "kernels", paths: ["kernels/engine.ts", "kernels/spec.ts", "kernels/registry.ts", "kernels/*/"] },
  { name: "datasets", paths: ["datasets/"] },
  { name: "record", paths: ["lib/record/"] },
  { name: "train", paths: ["lib/train/"] },
  { name: "analysis and export", paths: ["lib/analysis/", "lib/export/"] },
  { name: "reproduce", paths: ["lib/reproduce/"] },
  { name: "reports", paths: ["reports/"] },
  // lib/compile.ts is the entry point of `deno task compile`, a command beside the CLI's.
  { name: "cli", paths: ["lib/cli/", "lib/compile.ts"] },
  { name: "main", paths: ["main.ts"] },
];

/** The most lines a source file under main.ts, lib/, kernels/, datasets/ and reports/ may have. */
export const SOURCE_BUDGET = 500;
/** The most lines a test file under tests/ may have. */
export const TEST_BUDGET = 700;
/** Generated files, exempt from the size budget. */
export const GENERATED: readonly string[] = ["kernels/wasm/kernels_wasm.ts"];

/** A known exception: an exact import pair, or a size ceiling. */
export type Allowed =
  | { readonly file: string; readonly imports: string; readonly reason: string }
  | { readonly file: string; readonly lines: number; readonly reason: string };

/** The exceptions in force; remove an entry when its file is fixed. */
export const ALLOWED: readonly Allowed[] = [];

/** Where a file sits: its layer's index and, inside kernels/, its role. */
interface Place {
  readonly layer: number;
  /** `engine:<name>` for kernels/<name>/, `contract` for kernels/engine.ts and kernels/spec.ts. */
  readonly role?: string;
}

/** The place of a repository-relative path, or undefined when no layer holds it. */
export function placeOf(path: string): Place | undefined {
  for (const [layer, { paths }] of LAYERS.entries()) {
    for (const p of paths) {
      if (p === "kernels/*/") {
        const m = /^kernels\/([^/]+)\/./.exec(path);
        if (m) return { layer, role: `engine:${m[1]}` };
      } else if (p.endsWith("/") ? path.startsWith(p) : path === p) {
        const role = path === "kernels/engine.ts" || path === "kernels/spec.ts" ? "contract" : undefined;
        return { layer, role };
      }
    }
  }
  return undefined;
}

const layerLabel = (layer: number) => `layer ${layer} (${LAYERS[layer].name})`;

/** Why `from` may not import `to` (both repository-relative), or undefined when it may. */
export function importRule(from: string, to: string): string | undefined {
  const a = placeOf(from), b = placeOf(to);
  if (!a) return "the importing file is in no layer";
  if (!b) return "the imported file is in no layer";
  if (b.layer > a.layer) return `${layerLabel(a.layer)} may not import ${layerLabel(b.layer)}`;
  if (b.layer < a.layer || !a.role) return undefined; // lower layers, and kernels/registry.ts
  if (a.role === "contract" && b.role !== "contract") {
    return "the engine contract (kernels/engine.ts, kernels/spec.ts) imports no engine and not the registry";
  }
  if (a.role.startsWith("engine:") && b.role !== a.role && b.role !== "contract" && b.role !== "engine:ref") {
    return "an engine folder imports only itself, kernels/engine.ts, kernels/spec.ts and kernels/ref/";
  }
  return undefined;
}

/** Line count as `wc -l` gives it, plus a last line without a newline. */
export function lineCount(text: string): number {
  if (text === "") return 0;
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}

/** The .ts files under `dir` (repository-relative, "/"-separated); none when `dir` does not exist. */
function tsFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(join(root, rel))];
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const e of entries) {
      const p = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** One line per violation under `root`, in file order, then stale ALLOWED entries; empty when clean. */
export async function check(root: string, allowed: readonly Allowed[] = ALLOWED): Promise<string[]> {
  const problems: string[] = [];
  const used = new Set<Allowed>();
  const files = ["lib", "kernels", "datasets", "reports", "tests"].flatMap((dir) => tsFiles(root, dir));
  if (existsIn(root, "main.ts")) files.push("main.ts");
  for (const file of files.sort()) {
    const text = await Deno.readTextFile(join(root, file));
    const isTest = file.startsWith("tests/");
    const budget = isTest ? TEST_BUDGET : SOURCE_BUDGET;
    const lines = lineCount(text);
    const ceiling = allowed.find((a) => "lines" in a && a.file === file);
    if (ceiling) used.add(ceiling);
    if (GENERATED.includes(file)) { /* exempt */ }
    else if (ceiling && "lines" in ceiling) {
      if (lines > ceiling.lines) {
        problems.push(`${file}: ${lines} lines, over its allowed ceiling of ${ceiling.lines}`);
      }
      if (lines <= budget) {
        problems.push(`${file}: ${lines} lines, within the budget: remove its ALLOWED ceiling`);
      }
    } else if (lines > budget) {
      problems.push(
        `${file}: ${lines} lines, over the budget of ${budget} for ${isTest ? "test" : "source"} files`,
      );
    }
    if (isTest || file.startsWith("kernels/wasm/as/")) continue;
    if (!placeOf(file)) {
      problems.push(`${file}: unplaced file: add its folder to a layer in tests/tools/layering.ts`);
      continue;
    }
    for (const { specifier, line } of importsOf(text)) {
      if (!specifier.startsWith("./") && !specifier.startsWith("../")) continue;
      const to = normalize(join(dirname(file), specifier)).replaceAll("\\", "/");
      const rule = importRule(file, to);
      if (!rule) continue;
      const pass = allowed.find((a) => "imports" in a && a.file === file && a.imports === to);
      if (pass) used.add(pass);
      else problems.push(`${file}:${line}: imports ${to}: ${rule}`);
    }
  }
  for (const a of allowed) {
    if (used.has(a) || !existsIn(root, a.file)) continue;
    const what = "imports" in a ? `${a.file} -> ${a.imports}` : `${a.file} (${a.lines} lines)`;
    problems.push(`${a.file}: ALLOWED entry ${what} matches nothing: remove it`);
  }
  return problems;
}

function existsIn(root: string, file: string): boolean {
  try {
    return Deno.statSync(join(root, file)).isFile;
  } catch {
    return false;
  }
}

/** The text `--help` prints: usage, the layers, the budgets and every allowed exception with its reason. */
export function helpText(): string {
  const layers = LAYERS.map((l, i) => `  ${String(i).padStart(2)} ${l.name}: ${l.paths.join(", ")}`);
  const allowed = ALLOWED.map((a) =>
    "imports" in a
      ? `  ${a.file} -> ${a.imports}: ${a.reason}`
      : `  ${a.file} up to ${a.lines} lines: ${a.reason}`
  );
  return [
    "Usage: deno run --allow-read tests/tools/layering.ts [root]",
    "Fails (exit 1, one line each) on an import from a lower layer to a higher one, an unplaced file, or a",
    "file past its size budget.",
    "",
    "Layers, lowest first (a layer imports itself and lower ones; kernels/<name>/ imports only itself,",
    "kernels/engine.ts, kernels/spec.ts and kernels/ref/):",
    ...layers,
    "",
    `Size budgets: ${SOURCE_BUDGET} lines per source file, ${TEST_BUDGET} per test file; exempt: ${
      GENERATED.join(", ")
    }.`,
    "",
    `Allowed exceptions (${ALLOWED.length}):`,
    ...(allowed.length > 0 ? allowed : ["  none"]),
  ].join("\n");
}

if (import.meta.main) {
  const args = Deno.args;
  if (args.includes("--help") || args.includes("-h")) {
    console.log(helpText());
    Deno.exit(0);
  }
  const bad = args.find((a) => a.startsWith("-"));
  if (bad !== undefined || args.length > 1) {
    console.error(
      bad !== undefined ? `Unknown flag ${bad}: see --help` : `Expected one root folder, got ${args.length}`,
    );
    Deno.exit(2);
  }
  const root = args[0] ?? fileURLToPath(new URL("../../", import.meta.url));
  if (!existsDir(root)) {
    console.error(`Root folder ${root} is not a directory`);
    Deno.exit(2);
  }
  let problems: string[];
  try {
    problems = await check(root);
  } catch (e) {
    // An unreadable folder is the user's situation; anything else is a bug and keeps its stack trace.
    if (!(e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable)) throw e;
    console.error(`Cannot read under ${root}: ${(e as Error).message.split("\n")[0]}`);
    Deno.exit(2);
  }
  for (const p of problems) console.error(p);
  Deno.exit(problems.length > 0 ? 1 : 0);
}

function existsDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
