/** The reproduction matrix as data: the quick profile's cells, seed overrides, and the full-data switch. */

import assert from "node:assert/strict";
import { resolveRun } from "../lib/train/config.ts";
import { configId } from "../lib/record/run_record.ts";
import { cellsOf, PROFILES } from "../lib/reproduce/profiles.ts";

Deno.test("quick profile: 24 main cells and 8 pitfall cells, each a valid and distinct train run", async () => {
  const cells = cellsOf(PROFILES.quick);
  assert.equal(cells.length, 32);
  const kinds = cells.map((c) => PROFILES.quick.experiments[c.experiment].kind);
  assert.equal(kinds.filter((k) => k === "main").length, 24);
  assert.equal(kinds.filter((k) => k === "epsilon").length, 6);
  assert.equal(kinds.filter((k) => k === "accumulation").length, 2);
  const ids = await Promise.all(
    cells.map((c) => configId(resolveRun({ ...c.request, engine: "wasm" }).config)),
  );
  assert.equal(new Set(ids).size, 32, "every cell is its own config");
  assert.equal(new Set(cells.map((c) => c.label)).size, 32);
  assert.ok(cells.every((c) => c.request.dataset.endsWith("-npm")));
});

Deno.test("--seeds overrides the main experiments only; --full-data swaps the npm sets for the downloads", () => {
  const cells = cellsOf(PROFILES.quick, [0, 7]);
  assert.equal(cells.filter((c) => PROFILES.quick.experiments[c.experiment].kind === "main").length, 16);
  assert.ok(
    cells.filter((c) => c.experiment >= 2).every((c) => c.seed === 1),
    "pitfall experiments keep seed 1",
  );
  const full = cellsOf(PROFILES.quick, undefined, true);
  const datasets = new Set(full.map((c) => c.request.dataset));
  assert.deepEqual([...datasets].sort(), ["fashion-mnist", "mnist"]);
});
