/**
 * Writing a whole buffer to an open file: `FsFile.write` may write fewer bytes than asked, so every writer
 * of the project (atomic writes, lock notes, downloads) loops through this one function.
 *
 * @module
 */

/** Writes all of `bytes` to `file` at its current position. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}
