/**
 * Where downloaded dataset files live: `--cache-dir`, else the
 * `F16REPRO_CACHE` environment variable, else `$XDG_CACHE_HOME/f16repro`,
 * else `~/.cache/f16repro`.
 *
 * @module
 */

import { DatasetError } from "./gzip.ts";

/** The environment variable that overrides the default cache folder. */
export const CACHE_ENV = "F16REPRO_CACHE";

/** Resolves the cache folder from a flag value (may be undefined) and the environment. */
export function cacheDir(flag?: string): string {
  if (flag) return flag;
  const env = (k: string) => {
    try {
      return Deno.env.get(k);
    } catch {
      return undefined;
    }
  };
  const explicit = env(CACHE_ENV);
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/f16repro`;
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) {
    throw new DatasetError(
      `Cannot find a cache folder (HOME is not set): set ${CACHE_ENV} or pass --cache-dir`,
    );
  }
  return `${home}/.cache/f16repro`;
}
