/**
 * Gzip decompression of a whole file held in memory, and the error type that
 * every dataset decoder throws.
 *
 * Dataset archives arrive as bytes (already read and checksummed by the
 * caller), so decoding works on a `Uint8Array` rather than a path. The
 * runtime's `DecompressionStream("gzip")` does the inflating; this module
 * only checks the gzip magic first, so that a file that is not gzip at all
 * is reported as such instead of as a vague stream error, and turns any
 * failure of the stream (corrupt data, a truncated file) into a
 * {@linkcode DatasetError} that names the file.
 *
 * @module
 */

/**
 * A dataset file is malformed: wrong format, corrupt, truncated, or holding
 * values outside their allowed range. Messages start with the file's name.
 */
export class DatasetError extends Error {
  /** Creates the error; `message` should start with the file's name. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DatasetError";
  }
}

/** Formats the first `n` bytes of `bytes` as hex, for error messages. */
function hexPrefix(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/**
 * Decompresses a complete gzip file held in memory.
 *
 * @param bytes The compressed file.
 * @param file The file's name, used in error messages.
 * @returns The decompressed bytes.
 * @throws {DatasetError} When `bytes` does not start with the gzip magic
 * `1f 8b`, or the stream is corrupt, truncated, or followed by more bytes
 * (the runtime's decoder reads a single gzip member).
 */
export async function gunzip(bytes: Uint8Array, file: string): Promise<Uint8Array> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    const found = bytes.length === 0 ? "an empty file" : hexPrefix(bytes, 2);
    throw new DatasetError(`${file}: expected gzip magic 1f 8b, found ${found}`);
  }
  const ds = new DecompressionStream("gzip");
  const writer = ds.writable.getWriter();
  // Failures surface on the readable side; these promises only need handling.
  const input = bytes.buffer instanceof ArrayBuffer
    ? bytes as Uint8Array<ArrayBuffer>
    : new Uint8Array(bytes);
  writer.write(input).catch(() => {});
  writer.close().catch(() => {});
  try {
    return new Uint8Array(await new Response(ds.readable).arrayBuffer());
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new DatasetError(`${file}: gzip data is corrupt, truncated or followed by other bytes (${why})`, {
      cause: e,
    });
  }
}
