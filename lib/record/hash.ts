/**
 * SHA-256 fingerprints of weights and metrics, the currency of the
 * determinism checks.
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { storedBytes } from "../formats/stored.ts";

/** Hex SHA-256 of bytes. */
export async function sha256Hex(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** One tensor as it is stored: its name, format, shape and stored bytes. */
export interface StoredTensor {
  readonly name: string;
  readonly format: string;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/**
 * SHA-256 over stored tensors in name order: each name, format, shape and stored bytes. The one definition
 * of a weight hash: {@linkcode hashTensors} hashes a run's tensors with it, and a weight file's raw bytes
 * hash the same way without being decoded.
 */
export async function hashStored(tensors: readonly StoredTensor[]): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    parts.push(enc.encode(`${t.name}\0${t.format}\0${t.shape.join("x")}\0`), t.bytes);
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, at), (at += p.length);
  return await sha256Hex(all);
}

/** SHA-256 over tensors in name order: each name, format, shape and stored bytes. */
export async function hashTensors(tensors: Readonly<Record<string, HostTensor>>): Promise<string> {
  return await hashStored(
    Object.entries(tensors).map(([name, t]) => ({
      name,
      format: t.format,
      shape: t.shape,
      bytes: storedBytes(t),
    })),
  );
}
