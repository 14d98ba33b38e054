/**
 * Loads onnxruntime-node and onnx-proto on first use, and types the small part of each this project uses.
 *
 * onnxruntime-node is about 290 MB (native builds for every platform), and only the ort engine needs it,
 * so a run on any other engine must not download it. Deno installs every npm package that deno.json's
 * imports or its lockfile name before a task runs (and `deno run` installs every package of the
 * lockfile), whether the program imports it or not. So onnxruntime-node is in neither: it is imported
 * here through a computed `npm:` specifier with its exact version, and the processes that may load it
 * (`deno task train:ort`, `deno task test`, `deno task bench:engines`, and the children that
 * `reproduce --engine ort` and `verify` start) use their own lockfile, ORT_LOCKFILE, which pins its
 * integrity and that of its dependencies. A process that loaded it under deno.lock would write it into
 * deno.lock, and every later run would download it again; tests/npm_deps_test.ts guards against that.
 * onnx-proto (the ONNX protobuf classes, about 25 MB with protobufjs) is a plain import-map entry because
 * `export` needs it without onnxruntime. Deno does not run onnxruntime-node's install script, so its CUDA
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

/** onnxruntime-node's specifier, joined at run time so that neither Deno nor the type checker sees it. */
const ORT_SPEC = ["npm:onnxruntime", "node@1.30.0"].join("-");
// A bare name mapped in deno.json ("imports"), joined at run time so that the type checker does not load it.
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
        "run it through `deno task train:ort` (which also uses the lockfile that pins onnxruntime-node)",
    );
  }
  return new Error(`Cannot load onnxruntime-node: ${msg}`);
}

/**
 * onnxruntime-node (needs --allow-ffi); a failed load is retried on the next call. The permission is
 * checked first, so a run that cannot use the package never downloads it.
 */
export function loadOrt(): Promise<Ort> {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return Promise.reject(
      explain(new Deno.errors.NotCapable("Requires ffi access, run again with --allow-ffi")),
    );
  }
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
