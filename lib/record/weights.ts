/**
 * Weight files: the final persistent tensors of a run, stored beside its run
 * record as `<id>.weights`, in each tensor's own format (fp16 as IEEE half,
 * bf16 as the top 16 bits of fp32), so the file is as small as the model and
 * hashes to the record's `weightHash`.
 *
 * Layout: the ASCII line "f16repro-weights/1\n", a little-endian u32 header
 * length, a JSON header `{ tensors: [{ name, format, shape }] }`, then the
 * tensors' stored bytes in header order.
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { type FormatName, roundArray } from "../formats/format.ts";
import type { Graph } from "../graph/graph.ts";
import { hashStored, type StoredTensor } from "./hash.ts";
import { storedBytes } from "../formats/stored.ts";
import { writeAtomic } from "./atomic.ts";
import { UserError } from "../errors.ts";
import { sizeOf } from "../graph/graph.ts";

const MAGIC = "f16repro-weights/1\n";

/** Encodes tensors (sorted by name) as a weight file. */
export function encodeWeights(tensors: Readonly<Record<string, HostTensor>>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header = new TextEncoder().encode(JSON.stringify({
    tensors: names.map((name) => ({ name, format: tensors[name].format, shape: tensors[name].shape })),
  }));
  const parts: Uint8Array[] = [
    new TextEncoder().encode(MAGIC),
    new Uint8Array(Uint32Array.of(header.length).buffer),
    header,
  ];
  for (const n of names) parts.push(storedBytes(tensors[n]));
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

const BYTES_PER: Readonly<Record<string, number>> = { fp64: 8, fp32: 4, fp16: 2, bf16: 2 };

/**
 * Splits a weight file into its tensors' stored bytes (views into `bytes`), checking the header's shape;
 * throws a {@linkcode WeightsError} naming `file` when the file is damaged.
 */
export function parseWeights(bytes: Uint8Array, file: string): StoredTensor[] {
  const fail = (why: string): never => {
    throw new WeightsError(`${file}: ${why}`);
  };
  const magic = new TextEncoder().encode(MAGIC);
  if (bytes.length < magic.length + 4 || magic.some((b, i) => bytes[i] !== b)) {
    fail("not an f16repro weight file");
  }
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(magic.length, true);
  const start = magic.length + 4;
  if (start + len > bytes.length) fail("truncated header");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(start, start + len)));
  } catch {
    return fail("corrupt header");
  }
  const list = (header as { tensors?: unknown })?.tensors;
  if (!Array.isArray(list)) return fail("corrupt header (no tensor list)");
  const out: StoredTensor[] = [];
  let at = start + len;
  for (const t of list as { name?: unknown; format?: unknown; shape?: unknown }[]) {
    const shape = t?.shape;
    if (
      typeof t?.name !== "string" || typeof t.format !== "string" || !(t.format in BYTES_PER) ||
      !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      return fail("corrupt header (a tensor entry without a name, a known format or a shape)");
    }
    const size = sizeOf(shape) * BYTES_PER[t.format];
    if (at + size > bytes.length) fail(`truncated data for ${t.name}`);
    out.push({ name: t.name, format: t.format, shape, bytes: bytes.subarray(at, at + size) });
    at += size;
  }
  if (at !== bytes.length) fail("trailing bytes");
  return out;
}

/** Decodes a weight file; throws a {@linkcode WeightsError} naming `file` when it is damaged. */
export function decodeWeights(bytes: Uint8Array, file: string): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const t of parseWeights(bytes, file)) {
    const raw = t.bytes.slice(), n = raw.length / BYTES_PER[t.format];
    let data: Float64Array;
    if (t.format === "fp64") data = new Float64Array(raw.buffer);
    else if (t.format === "fp32") data = Float64Array.from(new Float32Array(raw.buffer));
    else if (t.format === "fp16") data = Float64Array.from(new Float16Array(raw.buffer));
    else {
      const h = new Uint16Array(raw.buffer), u = new Uint32Array(n);
      for (let i = 0; i < n; i++) u[i] = h[i] << 16;
      data = Float64Array.from(new Float32Array(u.buffer));
    }
    out[t.name] = { shape: t.shape as number[], format: t.format as FormatName, data };
  }
  return out;
}

/**
 * Checks a weight file's bytes against a record's weight hash without decoding them (the stored bytes are
 * what the hash covers); throws a {@linkcode WeightsError} naming `file` when it is damaged or differs.
 */
export async function checkWeights(bytes: Uint8Array, file: string, expectedHash: string): Promise<void> {
  const hash = await hashStored(parseWeights(bytes, file));
  if (hash !== expectedHash) {
    throw new WeightsError(
      `${file}: its SHA-256 ${hash.slice(0, 12)}... does not match the record's weightHash ${
        String(expectedHash).slice(0, 12)
      }...`,
    );
  }
}

/** Writes `<dir>/<id>.weights` atomically. */
export async function writeWeights(
  dir: string,
  id: string,
  tensors: Readonly<Record<string, HostTensor>>,
): Promise<string> {
  const path = `${dir.replace(/\/+$/, "")}/${id}.weights`;
  await writeAtomic(path, encodeWeights(tensors));
  return path;
}

/** A weight file that is missing, damaged or does not match its record. */
export class WeightsError extends UserError {}

/** Reads `<id>.weights` beside a record and checks it against the record's weight hash. */
export async function readWeights(path: string, expectedHash: string): Promise<Record<string, HostTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new WeightsError(
      e instanceof Deno.errors.NotFound
        ? `${path}: no weight file (records written before weights were saved have none; rerun the cell)`
        : `${path}: cannot be read (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  await checkWeights(bytes, path, expectedHash);
  return decodeWeights(bytes, path);
}

/**
 * The feeds of `graph`'s parameter and state leaves from saved weights, each rounded to its leaf's format (a
 * mixed-precision evaluation graph may read an fp32 weight in fp16). `missing` makes the error for a leaf the
 * weights lack.
 */
export function weightFeeds(
  graph: Graph,
  weights: Readonly<Record<string, HostTensor>>,
  missing: (name: string) => Error = (name) => new WeightsError(`The weights have no tensor ${name}`),
): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const leaf of graph.nodes) {
    if (leaf.op !== "param" && leaf.op !== "state") continue;
    const w = weights[leaf.name!];
    if (!w) throw missing(leaf.name!);
    feeds[leaf.name!] = {
      shape: w.shape,
      format: leaf.format!,
      data: roundArray(leaf.format!, Float64Array.from(w.data)),
    };
  }
  return feeds;
}
