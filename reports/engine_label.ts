/**
 * How the report names an engine: from the record's own statement of what ran (its environment manifest),
 * with the guarantee it states when that engine is not bit-exact with ref, so a figure made from `--fast`
 * or ort runs (or any engine added later) says so wherever the engine appears. Nothing here knows an engine
 * by its name.
 *
 * @module
 */

import type { RunRecord } from "../lib/record/schema.ts";

/** The engine's name, followed by its caveat in parentheses when the record says it is not bit-exact. */
export function engineLabel(r: RunRecord): string {
  const why = engineCaveat(r);
  return why === undefined ? r.config.engine : `${r.config.engine} (${why})`;
}

/** What the record says its engine guarantees when that is not ref's bits; undefined when it is. */
export function engineCaveat(r: RunRecord): string | undefined {
  const e = r.environment.engine as
    | { capabilities?: { bitExactWithRef?: unknown }; guarantee?: unknown }
    | undefined;
  if (e?.capabilities?.bitExactWithRef === true) return undefined;
  // A record that does not say it is exact is shown as not exact, never the other way round.
  return typeof e?.guarantee === "string" ? e.guarantee : "not bit-exact with ref";
}
