/**
 * Loads onnxruntime-node and onnx-proto on first use, and types the small part of each this project uses.
 *
 * Both are imported through computed specifiers. Deno adds every statically written `import("npm:...")`
 * to the module graph of `main.ts` and would download onnxruntime-node (about 290 MB of native binaries
 * for every platform) on the first `deno task reproduce`, even when the ort engine is never asked for.
 * A computed specifier is resolved only when this code runs; the versions are pinned in deno.json's
 * imports and their integrity in deno.lock. Deno does not run the package's install script, so its CUDA
 * download never happens.
 *
 * @module
 */

/** One ONNX tensor as onnxruntime-node holds it. */
export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: ArrayBufferView;
}

/** An onnxruntime inference session. */
export interface OrtSession {
  /** Runs the model; `fetches` may give a preallocated tensor per output, which receives the result. */
  run(
    feeds: Record<string, OrtTensor>,
    fetches?: Record<string, OrtTensor | null>,
  ): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** The parts of onnxruntime-node this project uses. */
export interface Ort {
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: ArrayBufferView, dims: readonly number[]) => OrtTensor;
  env: { versions: Record<string, string | undefined> };
}

/** The parts of onnx-proto's generated protobufjs classes this project uses. */
export interface OnnxProto {
  TensorProto: { DataType: Record<string, number> };
  AttributeProto: { AttributeType: Record<string, number> };
  ModelProto: {
    fromObject(o: Record<string, unknown>): unknown;
    encode(m: unknown): { finish(): Uint8Array };
    decode(bytes: Uint8Array): unknown;
    toObject(m: unknown, options?: Record<string, unknown>): Record<string, unknown>;
  };
}

import { openOrtC, type OrtC } from "./capi.ts";

// Bare names mapped in deno.json ("imports"), joined at run time so that Deno does not prefetch them.
const ORT_SPEC = ["onnxruntime", "node"].join("-");
const PROTO_SPEC = ["onnx", "proto"].join("-");

let ort: Promise<Ort> | undefined;
let proto: Promise<OnnxProto> | undefined;

/** Explains a failed load in terms of what the user can do (a permission error: the CLI prints one line). */
function explain(err: unknown): Error {
  const msg = err instanceof Error ? err.message : String(err);
  const denied = err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
  if (denied || /--allow-ffi/.test(msg)) {
    return new Deno.errors.NotCapable(
      "The ort engine loads onnxruntime's native library and needs --allow-ffi: " +
        "run it through `deno task train:ort` (or add --allow-ffi to your deno run command)",
    );
  }
  return new Error(`Cannot load onnxruntime-node: ${msg}`);
}

/** onnxruntime-node (needs --allow-ffi); a failed load is retried on the next call. */
export function loadOrt(): Promise<Ort> {
  ort ??= import(ORT_SPEC).then((m) => (m.default ?? m) as Ort, (err) => {
    ort = undefined;
    throw explain(err);
  });
  return ort;
}

let orc: Promise<OrtC> | undefined;

/**
 * onnxruntime's C API (kernels/ort/capi.ts) from the library inside the onnxruntime-node package, which
 * is loaded first (it fetches the package on first use and turns a missing --allow-ffi into one message).
 */
export function loadOrtC(): Promise<OrtC> {
  orc ??= loadOrt().then(() => {
    try {
      return openOrtC(import.meta.resolve(ORT_SPEC));
    } catch (err) {
      throw explain(err);
    }
  }).catch((err) => {
    orc = undefined;
    throw err;
  });
  return orc;
}

/** onnx-proto's `onnx` namespace (plain JavaScript: no permission needed). */
export function loadProto(): Promise<OnnxProto> {
  proto ??= import(PROTO_SPEC).then((m) => ((m.default ?? m).onnx) as OnnxProto, (err) => {
    proto = undefined;
    throw new Error(`Cannot load onnx-proto: ${err instanceof Error ? err.message : err}`);
  });
  return proto;
}

/** The onnxruntime version of a loaded binding. */
export function ortVersion(o: Ort): string {
  return o.env.versions.node ?? o.env.versions.common ?? "unknown";
}
