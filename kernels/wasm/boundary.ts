/**
 * Generates the host's side of the wasm boundary for kernels/wasm/build.ts: the values of the enums that
 * kernels/wasm/as/index.ts exports (read from the compiled module, so they are the compiler's own), and the
 * typed signature and argument names of each exported function (from AssemblyScript's raw bindings).
 *
 * @module
 */

/** One exported function: its AssemblyScript module, parameters and result. */
interface Signature {
  readonly name: string;
  readonly module: string;
  readonly params: readonly { readonly name: string; readonly ts: string; readonly as: string }[];
  readonly result: string;
  readonly asResult: string;
}

// A declaration of asc's raw bindings: its doc comment, kind, name and the rest of its first line.
const DECLARATION = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*export (function|enum) (\w+)([^\n]*)/g;

/** The AssemblyScript module a bindings doc comment names (its first line ends in <module>/<name>). */
function moduleOf(doc: string, name: string): string {
  const path = doc.match(/^\s*\*?\s*(\S+)/)?.[1] ?? "";
  const parts = path.split("/");
  if (parts.at(-1) !== name || parts.length < 2) throw new Error(`No module in the bindings of ${name}`);
  return `kernels/wasm/as/${parts.at(-2)}.ts`;
}

/** The exported functions of asc's raw bindings (`.d.ts`), in export order. */
export function signatures(dts: string): Signature[] {
  const out: Signature[] = [];
  for (const [, doc, kind, name, rest] of dts.matchAll(DECLARATION)) {
    if (kind !== "function") continue;
    const m = rest.match(/^\(([^)]*)\): (number|void|boolean);$/);
    if (!m) throw new Error(`Unexpected signature in the bindings: ${name}${rest}`);
    const asTypes = new Map([...doc.matchAll(/@param (\w+) `(\w+)`/g)].map(([, p, t]) => [p, t]));
    const params = m[1] === "" ? [] : m[1].split(", ").map((p) => {
      const [pname, ts] = p.split(": ");
      if (ts !== "number" && ts !== "boolean") {
        throw new Error(`Unexpected type of ${name}'s ${pname}: ${ts}`);
      }
      return { name: pname, ts, as: asTypes.get(pname) ?? "?" };
    });
    const asResult = doc.match(/@returns `(\w+)`/)?.[1] ?? "void";
    out.push({ name, module: moduleOf(doc, name), params, result: m[2], asResult });
  }
  if (!out.length) throw new Error("The bindings declare no function");
  return out;
}

/** The exported enums of the module: name -> member -> value, with the AssemblyScript module of each. */
export function enums(
  wasm: Uint8Array<ArrayBuffer>,
  dts: string,
): Map<string, { module: string; members: [string, number][] }> {
  const module = new WebAssembly.Module(wasm);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  const exports = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }).exports;
  const modules = new Map<string, string>();
  for (const [, doc, kind, name] of dts.matchAll(DECLARATION)) {
    if (kind === "enum") modules.set(name, moduleOf(doc, name));
  }
  const out = new Map<string, { module: string; members: [string, number][] }>();
  for (const { name, kind } of WebAssembly.Module.exports(module)) {
    if (kind !== "global") continue;
    const [group, member] = name.split(".");
    if (!member || !modules.has(group)) throw new Error(`Export ${name} is not a member of an exported enum`);
    const global = exports[name] as WebAssembly.Global;
    if (!out.has(group)) out.set(group, { module: modules.get(group)!, members: [] });
    out.get(group)!.members.push([member, global.value as number]);
  }
  return out;
}

/** The TypeScript text of the boundary, appended to kernels_wasm.ts. */
export function boundary(wasm: Uint8Array<ArrayBuffer>, dts: string): string {
  const text: string[] = [];
  for (const [name, { module, members }] of enums(wasm, dts)) {
    text.push(`\n/** \`enum ${name}\` of ${module}. */`, `export const ${name} = {`);
    for (const [member, value] of members) text.push(`  ${member}: ${value},`);
    text.push("} as const;");
  }
  const fns = signatures(dts);
  const asSignature = (f: Signature) =>
    `${f.name}(${f.params.map((p) => `${p.name}: ${p.as}`).join(", ")}): ${f.asResult}`;
  text.push(
    "",
    "/** The kernel module's exported functions (AssemblyScript's usize, i32, u32, f64: number; bool: boolean). */",
    "export interface KernelExports {",
  );
  for (const f of fns) {
    text.push(`  /** ${f.module}: ${asSignature(f)} */`);
    text.push(`  ${f.name}(${f.params.map((p) => `${p.name}: ${p.ts}`).join(", ")}): ${f.result};`);
  }
  text.push("}", "", "/** Each exported function's arguments by name. */", "export interface KernelArgs {");
  for (const f of fns) {
    const fields = f.params.map((p) => `readonly ${p.name}: ${p.ts};`).join(" ");
    text.push(`  ${f.name}: ${fields ? `{ ${fields} }` : "Record<never, never>"};`);
  }
  text.push(
    "}",
    "",
    "/** Each exported function's parameter names, in call order. */",
    "export const KERNEL_PARAMS: { readonly [K in keyof KernelArgs]: readonly (keyof KernelArgs[K])[] } = {",
  );
  for (const f of fns) text.push(`  ${f.name}: [${f.params.map((p) => `"${p.name}"`).join(", ")}],`);
  text.push("};", "");
  return text.join("\n");
}
