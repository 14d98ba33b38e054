/**
 * Test helpers that build dataset files in memory (gzip, IDX, tar and a small
 * CIFAR-10 binary archive) and hash bytes, so decoder tests need no network
 * and no files on disk. The tar writer can produce unsafe entries (absolute
 * names, `..`, links) on purpose, for negative tests.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { mix32 } from "../../lib/random.ts";

/** Gzips bytes with the runtime's `CompressionStream`. */
export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([new Uint8Array(bytes)]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A raw (not gzipped) IDX file of unsigned bytes with the given dimension sizes. */
export function makeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, (0x08 << 8) | dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** One entry for {@linkcode makeTar}: `type` is the typeflag character (default "0", a regular file). */
export interface TarSpec {
  name: string;
  data?: Uint8Array;
  type?: string;
  linkname?: string;
}

const encoder = new TextEncoder();

/** Writes `s` as ASCII into `h` at `at`, at most `len` bytes. */
function put(h: Uint8Array, at: number, len: number, s: string): void {
  h.set(encoder.encode(s).subarray(0, len), at);
}

/** Writes `n` as zero-padded octal of `len - 1` digits followed by NUL. */
function octal(h: Uint8Array, at: number, len: number, n: number): void {
  put(h, at, len, n.toString(8).padStart(len - 1, "0") + "\0");
}

/**
 * A ustar archive of the given entries with correct checksums, ending with
 * two zero blocks. Names longer than 100 bytes are split into prefix and
 * name at a `/`. Names are written as given, unsafe ones included.
 */
export function makeTar(entries: TarSpec[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const data = e.data ?? new Uint8Array(0);
    const h = new Uint8Array(512);
    let name = e.name, prefix = "";
    if (name.length > 100) {
      const cut = name.lastIndexOf("/", name.length - 2);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    const type = e.type ?? "0";
    put(h, 0, 100, name);
    octal(h, 100, 8, type === "5" ? 0o755 : 0o644);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, data.length);
    octal(h, 136, 12, 1_700_000_000);
    put(h, 156, 1, type);
    put(h, 157, 100, e.linkname ?? "");
    put(h, 257, 8, "ustar\x0000");
    put(h, 265, 32, "test");
    put(h, 297, 32, "test");
    put(h, 345, 155, prefix);
    h.fill(0x20, 148, 156);
    const sum = h.reduce((s, b) => s + b, 0);
    put(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h);
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((s, b) => s + b.length, 0));
  let at = 0;
  for (const b of blocks) out.set(b, at), at += b.length;
  return out;
}

/** Deterministic bytes: `n` values below `below` from (seed, stream). */
export function seededBytes(n: number, seed: number, stream: number, below = 256): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = mix32(mix32(seed ^ Math.imul(stream, 0x9e3779b9)) ^ i) % below;
  return out;
}

/** The names of the six batches of the CIFAR-10 binary archive, training batches first. */
export const CIFAR_BATCHES: readonly string[] = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`)
  .concat("test_batch.bin");

/** One CIFAR-10 batch of `records` seeded records (label byte below 10, then 3072 pixel bytes). */
export function cifarBatch(records: number, seed: number, batch: number): Uint8Array {
  const out = seededBytes(records * 3073, seed, batch);
  const labels = seededBytes(records, seed, 100 + batch, 10);
  for (let r = 0; r < records; r++) out[r * 3073] = labels[r];
  return out;
}

/** The tar entries of a small valid CIFAR-10 binary archive (a folder, a meta file and six batches). */
export function cifarEntries(perBatch: number, seed = 1): TarSpec[] {
  return [
    { name: "cifar-10-batches-bin/", type: "5" },
    { name: "cifar-10-batches-bin/batches.meta.txt", data: encoder.encode("airplane\nautomobile\n") },
    ...CIFAR_BATCHES.map((n, b) => ({
      name: `cifar-10-batches-bin/${n}`,
      data: cifarBatch(perBatch, seed, b),
    })),
  ];
}

/** A small valid `cifar-10-binary.tar.gz` with `perBatch` records in each of its six batches. */
export async function makeCifarTarGz(perBatch: number, seed = 1): Promise<Uint8Array> {
  return await gzip(makeTar(cifarEntries(perBatch, seed)));
}

/** MD5 of bytes as lowercase hex. */
export function md5Hex(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** SHA-256 of bytes as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
