/**
 * When a cell counts as finished: its record parses, has this schema, this
 * cell's id (also recomputed from the config it holds, so a renamed copy of
 * another cell's record does not pass), and a weights file whose tensors hash
 * to the record's weight hash. Anything less is rerun, with the reason said.
 *
 * @module
 */

import { readJson, recordProblem } from "../record/read.ts";
import { configId } from "../record/run_record.ts";
import { checkWeights, WeightsError } from "../record/weights.ts";
import type { RunRecord } from "../record/schema.ts";

/** A verified record, or why the cell is not finished. */
export type Verified =
  | { readonly ok: true; readonly record: RunRecord }
  | { readonly ok: false; readonly missing: boolean; readonly reason: string };

/** Checks `<out>/<id>.json` and `<out>/<id>.weights` (see the module doc). */
export async function verifiedRecord(out: string, id: string): Promise<Verified> {
  const path = `${out}/${id}.json`;
  if (!(await Deno.lstat(path).then(() => true, () => false))) {
    return { ok: false, missing: true, reason: "no record" };
  }
  const fail = (reason: string): Verified => ({ ok: false, missing: false, reason });
  const read = await readJson(path);
  if ("error" in read) return fail(`${id}.json: ${read.error}`);
  const problem = recordProblem(read.value);
  if (problem) return fail(`${id}.json: ${problem}`);
  const record = read.value as RunRecord;
  if (record.id !== id) return fail(`${id}.json holds the record of another cell (${record.id})`);
  const own = await configId(record.config);
  if (own !== id) return fail(`${id}.json holds a config whose id is ${own}`);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(`${out}/${id}.weights`);
  } catch (e) {
    return fail(
      e instanceof Deno.errors.NotFound ? `${id}.weights is missing` : `${id}.weights cannot be read`,
    );
  }
  try {
    await checkWeights(bytes, `${id}.weights`, record.weightHash);
  } catch (e) {
    if (e instanceof WeightsError) return fail(e.message);
    throw e;
  }
  return { ok: true, record };
}
