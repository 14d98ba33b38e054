/**
 * Streaming file checksums (SHA-256 or MD5, whichever the publisher lists).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** An expected checksum of a file. */
export interface Checksum {
  readonly algorithm: "sha256" | "md5";
  readonly hex: string;
}

/** Hex digest of a file, read in chunks. */
export async function fileDigest(path: string, algorithm: Checksum["algorithm"]): Promise<string> {
  const h = createHash(algorithm);
  const f = await Deno.open(path, { read: true }); // consuming `readable` closes it
  for await (const chunk of f.readable) h.update(chunk);
  return h.digest("hex");
}

/** True when the file at `path` has the expected checksum. */
export async function verifyFile(path: string, c: Checksum): Promise<boolean> {
  return (await fileDigest(path, c.algorithm)) === c.hex.toLowerCase();
}
