/**
 * Training checkpoints: everything a killed training needs to continue with the bits of an uninterrupted
 * one, in one file `<out>/<id>.ckpt`.
 *
 * Layout: the ASCII line "f16repro-checkpoint/1\n", the hex SHA-256 of everything after its line, "\n", a
 * little-endian u32 header length, a JSON header (the config id, the position and the host-side state),
 * then the persistent tensors as a weight file (lib/record/weights.ts: the one tensor encoding). A file
 * whose hash, config id or structure is wrong is refused with a {@linkcode CheckpointError}: a run never
 * continues from state it cannot trust.
 *
 * @module
 */

import type { HostTensor } from "../../kernels/engine.ts";
import { writeAtomic } from "../record/atomic.ts";
import { sha256Hex } from "../record/hash.ts";
import type { EpochMetrics } from "../record/schema.ts";
import { decodeWeights, encodeWeights } from "../record/weights.ts";
import type { LossScalerState } from "./loss_scaler.ts";

const MAGIC = "f16repro-checkpoint/1\n";
const HASH_HEX = 64;

/** The running sums of the epoch in progress (what its metrics are computed from at its end). */
export interface EpochSums {
  lossSum: number;
  correct: number;
  seen: number;
  lostSum: number;
  applied: number;
  /** The loss scaler's skipped count when the epoch began. */
  skippedBefore: number;
  /** Training seconds of the epoch so far (a timing: no hash covers it). */
  trainSeconds: number;
}

/** Where a training stands between two steps: what the training loop saves and resumes from. */
export interface TrainPosition {
  /** The epoch in progress, from 1; one past the last when every epoch is done. */
  readonly epoch: number;
  /** Batches of that epoch done. */
  readonly batch: number;
  /** Steps done over the whole run (the step count that dropout and stochastic rounding seeds use). */
  readonly step: number;
  /** Adam's t (applied steps). */
  readonly adamT: number;
  /** The shuffle stream's position before the permutation of `epoch`, which is drawn again on resume. */
  readonly shuffle: readonly [number, number, number, number];
  readonly scaler: LossScalerState;
  /** Metrics of the finished epochs. */
  readonly epochs: readonly EpochMetrics[];
  readonly sums: EpochSums;
  /** Seconds spent so far over every process of the run (a timing). */
  readonly elapsedSeconds: number;
  /** Every persistent tensor: parameters, moving statistics, optimizer slots. */
  readonly state: Readonly<Record<string, HostTensor>>;
}

/** A checkpoint: a position tied to its run's config id, with the time it was written. */
export interface Checkpoint extends TrainPosition {
  readonly configId: string;
  /** ISO 8601 time of writing. */
  readonly writtenAt: string;
}

/** A checkpoint that cannot be trusted (damaged, truncated, another run's). */
export class CheckpointError extends Error {}

// JSON has no NaN, Infinity or -0, and a loss sum can hold any of them: they travel as tagged strings.
const replacer = (_k: string, v: unknown) =>
  typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0))
    ? { $number: Object.is(v, -0) ? "-0" : String(v) }
    : v;
const reviver = (_k: string, v: unknown) =>
  v && typeof v === "object" && typeof (v as { $number?: unknown }).$number === "string"
    ? Number((v as { $number: string }).$number)
    : v;

/** Encodes a checkpoint (reads every state tensor's data now). */
export async function encodeCheckpoint(c: Checkpoint): Promise<Uint8Array> {
  const { state, ...header } = c;
  const json = new TextEncoder().encode(JSON.stringify(header, replacer));
  const tensors = encodeWeights(state);
  const body = new Uint8Array(4 + json.length + tensors.length);
  new DataView(body.buffer).setUint32(0, json.length, true);
  body.set(json, 4);
  body.set(tensors, 4 + json.length);
  const head = new TextEncoder().encode(`${MAGIC}${await sha256Hex(body)}\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** Decodes and checks a checkpoint of the run `configId`; throws a {@linkcode CheckpointError} saying why not. */
export async function decodeCheckpoint(bytes: Uint8Array, configId: string): Promise<Checkpoint> {
  const fail = (why: string): never => {
    throw new CheckpointError(why);
  };
  const magic = new TextEncoder().encode(MAGIC), start = magic.length + HASH_HEX + 1;
  if (bytes.length < start + 4 || magic.some((b, i) => bytes[i] !== b)) fail("not an f16repro checkpoint");
  const body = bytes.subarray(start);
  const hash = new TextDecoder().decode(bytes.subarray(magic.length, magic.length + HASH_HEX));
  if (hash !== await sha256Hex(body.slice())) fail("its SHA-256 does not match its content");
  const len = new DataView(body.buffer, body.byteOffset).getUint32(0, true);
  if (4 + len > body.length) fail("truncated header");
  let h: Omit<Checkpoint, "state">;
  try {
    h = JSON.parse(new TextDecoder().decode(body.subarray(4, 4 + len)), reviver);
  } catch {
    return fail("corrupt header");
  }
  if (h?.configId !== configId) fail(`it belongs to run ${String(h?.configId)}`);
  const s = h.sums, sh = h.shuffle, sc = h.scaler;
  if (
    ![h.epoch, h.batch, h.step, h.adamT].every(isCount) || h.epoch < 1 || !Array.isArray(h.epochs) ||
    h.epochs.length !== h.epoch - 1 || !Array.isArray(sh) || sh.length !== 4 || !sc || !s ||
    ![s.correct, s.seen, s.applied, s.skippedBefore].every(isCount) || typeof h.writtenAt !== "string"
  ) {
    fail("corrupt header (a position field is missing or out of range)");
  }
  let state: Record<string, HostTensor>;
  try {
    state = decodeWeights(body.subarray(4 + len), "tensors");
  } catch (e) {
    return fail((e as Error).message);
  }
  return { ...h, state };
}

/** Writes a checkpoint to `path` atomically. */
export async function writeCheckpoint(path: string, c: Checkpoint): Promise<void> {
  await writeAtomic(path, await encodeCheckpoint(c));
}

/**
 * Reads the checkpoint at `path` for the run `configId`: null when there is none, a {@linkcode
 * CheckpointError} when there is one that cannot be trusted.
 */
export async function readCheckpoint(path: string, configId: string): Promise<Checkpoint | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new CheckpointError(`cannot be read (${(e as Error).message})`);
  }
  return await decodeCheckpoint(bytes, configId);
}

/**
 * Why `saved` cannot stand in for the fresh state `fresh` of the same graph (a tensor missing, extra, or of
 * another shape or format), or null when it can.
 */
export function stateMismatch(
  saved: Readonly<Record<string, HostTensor>>,
  fresh: Readonly<Record<string, HostTensor>>,
): string | null {
  for (const name of new Set([...Object.keys(saved), ...Object.keys(fresh)])) {
    const a = saved[name], b = fresh[name];
    if (!a || !b) return `tensor ${name} is ${a ? "not in the model" : "missing"}`;
    if (a.format !== b.format || a.shape.join("x") !== b.shape.join("x")) {
      return `tensor ${name} is [${a.shape}] ${a.format}, the model has [${b.shape}] ${b.format}`;
    }
  }
  return null;
}
