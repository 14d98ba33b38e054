/**
 * Other sources for named data files: `$F16REPRO_SOURCES` names a JSON file that maps a file's cache name
 * (e.g. `cifar10/cifar-10-binary.tar.gz`) to the URLs and checksum to use instead of the publisher's. It is
 * for a local mirror of the data files, and for the tests, which serve a small CIFAR-10 tarball from
 * 127.0.0.1 to the child processes of a reproduction (they inherit the environment). An overridden file is
 * checked against the override's checksum, and a record trained on it says so in its dataset provenance
 * (`sourcesOverride`), so a run on other bytes never passes for one on the publisher's.
 *
 * @module
 */

import type { RemoteFile } from "./download.ts";
import { DatasetError } from "./gzip.ts";

/** The environment variable that names the override file. */
export const SOURCES_ENV = "F16REPRO_SOURCES";

/** The override file's path, or null when the variable is unset (or the environment cannot be read). */
export function sourcesOverridePath(): string | null {
  try {
    return Deno.env.get(SOURCES_ENV) || null;
  } catch {
    return null;
  }
}

const HEX: Readonly<Record<string, number>> = { md5: 32, sha256: 64 };

/** The overrides by file name, checked; a bad file is a one-line error naming it and the bad entry. */
function readOverrides(path: string): Map<string, RemoteFile> {
  const bad = (why: string) => new DatasetError(`Bad ${SOURCES_ENV} file ${path}: ${why}`);
  let v: unknown;
  try {
    v = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("expected an object of file names");
  const out = new Map<string, RemoteFile>();
  for (const [name, e] of Object.entries(v as Record<string, unknown>)) {
    const o = e as { urls?: unknown; checksum?: { algorithm?: unknown; hex?: unknown }; size?: unknown };
    const urls = o?.urls;
    if (!Array.isArray(urls) || urls.length === 0 || !urls.every((u) => typeof u === "string")) {
      throw bad(`"${name}" needs "urls", a non-empty list of strings`);
    }
    for (const u of urls) {
      try {
        new URL(u);
      } catch {
        throw bad(`"${name}" has the bad URL "${u}"`);
      }
    }
    const alg = o.checksum?.algorithm, hex = o.checksum?.hex;
    if (typeof alg !== "string" || !(alg in HEX) || typeof hex !== "string" || hex.length !== HEX[alg]) {
      throw bad(`"${name}" needs "checksum": {"algorithm": "md5" or "sha256", "hex": its digest}`);
    }
    if (o.size !== undefined && !(Number.isInteger(o.size) && (o.size as number) > 0)) {
      throw bad(`"${name}" has the bad size ${JSON.stringify(o.size)}`);
    }
    out.set(name, {
      name,
      urls,
      checksum: { algorithm: alg as RemoteFile["checksum"]["algorithm"], hex: hex.toLowerCase() },
      ...(o.size === undefined ? {} : { size: o.size as number }),
    });
  }
  return out;
}

/** `files` with every file the override file names replaced by its override; unchanged without one. */
export function withSourceOverrides(files: readonly RemoteFile[]): readonly RemoteFile[] {
  const path = sourcesOverridePath();
  if (path === null) return files;
  const o = readOverrides(path);
  return files.map((f) => o.get(f.name) ?? f);
}
