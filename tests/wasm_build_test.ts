/**
 * The committed wasm kernels are the build of the committed AssemblyScript sources: rebuilding gives the
 * same bytes (kernels/wasm/build.ts, deno task build:wasm).
 */

import assert from "node:assert/strict";
import { generate } from "../kernels/wasm/build.ts";

Deno.test("wasm: rebuilding kernels/wasm/as gives kernels/wasm/kernels_wasm.ts byte for byte", async () => {
  const committed = await Deno.readTextFile(new URL("../kernels/wasm/kernels_wasm.ts", import.meta.url));
  assert.ok(
    committed === await generate(),
    "kernels/wasm/kernels_wasm.ts is stale: run deno task build:wasm",
  );
});
