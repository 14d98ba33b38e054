/**
 * The host's side of the wasm boundary (generated into kernels/wasm/kernels_wasm.ts by kernels/wasm/build.ts)
 * matches the committed kernel modules: every exported enum value, and every exported function with its
 * arity; the bindings parser reads asc's declarations and refuses what it cannot type; comments in the
 * AssemblyScript sources point to files that exist.
 */

import assert from "node:assert/strict";
import { enums, signatures } from "../kernels/wasm/boundary.ts";
import * as generated from "../kernels/wasm/kernels_wasm.ts";
import { EXACT_WASM, FAST_WASM, KERNEL_PARAMS } from "../kernels/wasm/kernels_wasm.ts";
import { positional } from "../kernels/wasm/lowering.ts";

const decode = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

function instantiate(wasm: Uint8Array<ArrayBuffer>) {
  const module = new WebAssembly.Module(wasm);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  return { module, exports: new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }).exports };
}

for (const [name, b64] of [["exact", EXACT_WASM], ["fast", FAST_WASM]] as const) {
  Deno.test(`wasm boundary: the generated enums are the ${name} module's exported values`, () => {
    const { module, exports } = instantiate(decode(b64));
    const globals = WebAssembly.Module.exports(module).filter((e) => e.kind === "global");
    assert.ok(globals.length > 0);
    for (const { name: exported } of globals) {
      const [group, member] = exported.split(".");
      const table = (generated as unknown as Record<string, Record<string, number>>)[group];
      assert.equal(table?.[member], (exports[exported] as WebAssembly.Global).value, exported);
    }
    const count = Object.values(generated).filter((v) => typeof v === "object" && v !== KERNEL_PARAMS)
      .reduce((n, v) => n + Object.keys(v).length, 0);
    assert.equal(count, globals.length, "a generated enum member is not exported by the module");
  });

  Deno.test(`wasm boundary: KERNEL_PARAMS names every function of the ${name} module with its arity`, () => {
    const { module, exports } = instantiate(decode(b64));
    const functions = WebAssembly.Module.exports(module).filter((e) => e.kind === "function").map((e) =>
      e.name
    );
    assert.deepEqual(Object.keys(KERNEL_PARAMS).sort(), functions.sort());
    for (const [fn, params] of Object.entries(KERNEL_PARAMS)) {
      assert.equal((exports[fn] as (...a: number[]) => number).length, params.length, fn);
    }
  });
}

Deno.test("wasm boundary: named arguments are passed in call order, booleans as 0 and 1", () => {
  const args = { src: 1, dst: 2, sum: 3, acc: 4, fs: 5, fd: 6, grad: true } as const;
  assert.deepEqual(positional("avgpool", args), [1, 5, 2, 6, 3, 1, 4]);
});

const DTS = `declare namespace __AdaptedExports {
  /** Exported memory */
  export const memory: WebAssembly.Memory;
  /** /somewhere/kernels/wasm/as/pointwise/Map1 */
  export enum Map1 {
    /** @type \`i32\` */
    RELU,
  }
  /**
   * /somewhere/kernels/wasm/as/norm/normalize
   * @param x \`usize\`
   * @param perGroup \`bool\`
   * @returns \`i32\`
   */
  export function normalize(x: number, perGroup: boolean): number;
  /**
   * kernels/wasm/as/index/heapBase
   * @returns \`usize\`
   */
  export function heapBase(): number;
}`;

Deno.test("wasm boundary: the bindings parser reads names, types and modules, wherever the sources lie", () => {
  assert.deepEqual(signatures(DTS), [
    {
      name: "normalize",
      module: "kernels/wasm/as/norm.ts",
      params: [{ name: "x", ts: "number", as: "usize" }, { name: "perGroup", ts: "boolean", as: "bool" }],
      result: "number",
      asResult: "i32",
    },
    { name: "heapBase", module: "kernels/wasm/as/index.ts", params: [], result: "number", asResult: "usize" },
  ]);
  assert.throws(() => signatures(DTS.replace("perGroup: boolean", "perGroup: bigint")), /Unexpected type/);
  assert.throws(() => signatures("declare namespace x {}"), /no function/);
});

Deno.test("wasm boundary: a global the bindings declare in no enum is refused", () => {
  const { module } = instantiate(decode(EXACT_WASM));
  assert.throws(() => enums(decode(EXACT_WASM), DTS), /not a member of an exported enum/);
  assert.ok(WebAssembly.Module.exports(module).some((e) => e.name === "Map1.RELU"));
});

Deno.test("wasm boundary: the AssemblyScript sources point only to files that exist", async () => {
  const root = new URL("../", import.meta.url);
  for await (const entry of Deno.readDir(new URL("kernels/wasm/as/", root))) {
    const text = await Deno.readTextFile(new URL(`kernels/wasm/as/${entry.name}`, root));
    for (const [path] of text.matchAll(/\b(?:kernels|lib)\/[\w/]+\.ts\b/g)) {
      const exists = await Deno.stat(new URL(path, root)).then(() => true, () => false);
      assert.ok(exists, `kernels/wasm/as/${entry.name} points to ${path}, which does not exist`);
    }
  }
});
