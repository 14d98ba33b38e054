/**
 * Reading run records back from a folder, tolerating damage: a corrupt or
 * truncated file is reported by name and skipped, never fatal.
 *
 * @module
 */

import { RUN_SCHEMA, type RunRecord } from "../record/run_record.ts";

/** Records found in a folder, and the files that could not be read as records. */
export interface RecordScan {
  readonly records: RunRecord[];
  readonly skipped: { readonly file: string; readonly reason: string }[];
}

/** Reads every `<id>.json` run record of `dir` (sorted by file name). */
export async function readRecords(dir: string): Promise<RecordScan> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /^[0-9a-f]{16}\.json$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { records: [], skipped: [] };
    throw e;
  }
  names.sort();
  const records: RunRecord[] = [], skipped: RecordScan["skipped"] = [];
  for (const name of names) {
    try {
      const r = JSON.parse(await Deno.readTextFile(`${dir}/${name}`));
      if (r?.schema !== RUN_SCHEMA) {
        throw new Error(`schema is ${JSON.stringify(r?.schema)}, not ${RUN_SCHEMA}`);
      }
      if (`${r.id}.json` !== name || !Array.isArray(r.epochs) || typeof r.weightHash !== "string") {
        throw new Error("fields are missing or do not match the file name");
      }
      records.push(r);
    } catch (e) {
      skipped.push({ file: `${dir}/${name}`, reason: (e as Error).message.split("\n")[0] });
    }
  }
  return { records, skipped };
}
