/**
 * onnxruntime's C API through Deno's FFI: sessions that read and write buffers the caller owns.
 *
 * The ort engine runs its step models through this instead of onnxruntime-node's JavaScript API because
 * that binding copies every output into a fresh ArrayBuffer after the run, even one the caller
 * preallocated (measured under Deno: about 100 µs per 256 KB output). The MLP step returns the first
 * layer's weights and velocity, 800 KB each, every step; the copies were a quarter of its time. Here the
 * model's outputs are written straight into the caller's Float32Arrays and nothing is copied.
 *
 * The library is the one onnxruntime-node ships and its binding loads (same version, same kernels);
 * the session options are the ones kernels/ort/mod.ts gave onnxruntime-node. Only the C API's first,
 * stable table entries are used; their positions are fixed by the header (`struct OrtApi`, append-only).
 * Pointers are 8 bytes: Deno runs on 64-bit platforms only.
 *
 * @module
 */

/** ONNX element types this module passes (TensorProto.DataType). */
const C_ELEM = { FLOAT: 1, BOOL: 9 } as const;

/** A tensor in caller-owned memory: float32, or bool as one byte per element. */
export interface CTensor {
  readonly data: Float32Array | Uint8Array;
  readonly shape: readonly number[];
}

/** Options of a session: the same meaning as onnxruntime-node's session options. */
export interface CSessionOptions {
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  /** ORT_SEQUENTIAL (true) or ORT_PARALLEL. */
  readonly sequential: boolean;
  /** GraphOptimizationLevel: 0 none, 1 basic, 2 extended, 99 all. */
  readonly optimizationLevel: 0 | 1 | 2 | 99;
  /** Session config entries (AddSessionConfigEntry), e.g. session.use_deterministic_compute. */
  readonly config: Readonly<Record<string, string>>;
  /**
   * Development only (tests/bench/ort_step.ts): onnxruntime's profiler writes per-node times to a JSON
   * file whose name starts with this prefix when the session is released; the engine never sets it.
   */
  readonly profilePrefix?: string;
  /** Development only: onnxruntime writes the model as its optimizer left it to this file. */
  readonly optimizedModelPath?: string;
}

/** A session on one model; `run` is synchronous. */
export interface CSession {
  /**
   * Runs the model on `inputs` (by input name) and writes every output into the caller's buffer of
   * `outputs` (by output name; each must have the output's shape).
   */
  run(inputs: Readonly<Record<string, CTensor>>, outputs: Readonly<Record<string, CTensor>>): void;
  release(): void;
}

/** The loaded C API. */
export interface OrtC {
  /** onnxruntime's version string (OrtApiBase.GetVersionString). */
  readonly version: string;
  createSession(
    model: Uint8Array,
    inputNames: readonly string[],
    outputNames: readonly string[],
    options: CSessionOptions,
  ): CSession;
}

/**
 * Positions of the functions used in `struct OrtApi` (onnxruntime_c_api.h). The table only ever grows at
 * its end, so these hold for every later version.
 */
const SLOT = {
  GetErrorMessage: 2,
  CreateEnv: 3,
  CreateSessionFromArray: 8,
  Run: 9,
  CreateSessionOptions: 10,
  SetOptimizedModelFilePath: 11,
  SetSessionExecutionMode: 13,
  EnableProfiling: 14,
  SetSessionGraphOptimizationLevel: 23,
  SetIntraOpNumThreads: 24,
  SetInterOpNumThreads: 25,
  CreateTensorWithDataAsOrtValue: 49,
  CreateCpuMemoryInfo: 69,
  ReleaseStatus: 93,
  ReleaseSession: 95,
  ReleaseValue: 96,
  ReleaseSessionOptions: 100,
  AddSessionConfigEntry: 130,
} as const;

/** The OrtApi version asked for (any library from onnxruntime 1.13 on offers it). */
const API_VERSION = 13;

const P = "pointer", B = "buffer";
const DEFS = {
  GetErrorMessage: { parameters: [P], result: P },
  CreateEnv: { parameters: ["i32", B, B], result: P },
  CreateSessionFromArray: { parameters: [P, B, "usize", P, B], result: P },
  Run: { parameters: [P, P, B, B, "usize", B, "usize", B], result: P },
  CreateSessionOptions: { parameters: [B], result: P },
  SetOptimizedModelFilePath: { parameters: [P, B], result: P },
  SetSessionExecutionMode: { parameters: [P, "i32"], result: P },
  EnableProfiling: { parameters: [P, B], result: P },
  SetSessionGraphOptimizationLevel: { parameters: [P, "i32"], result: P },
  SetIntraOpNumThreads: { parameters: [P, "i32"], result: P },
  SetInterOpNumThreads: { parameters: [P, "i32"], result: P },
  CreateTensorWithDataAsOrtValue: { parameters: [P, P, "usize", B, "usize", "i32", B], result: P },
  CreateCpuMemoryInfo: { parameters: ["i32", "i32", B], result: P },
  ReleaseStatus: { parameters: [P], result: "void" },
  ReleaseSession: { parameters: [P], result: "void" },
  ReleaseValue: { parameters: [P], result: "void" },
  ReleaseSessionOptions: { parameters: [P], result: "void" },
  AddSessionConfigEntry: { parameters: [P, B, B], result: P },
} as const satisfies Record<keyof typeof SLOT, Deno.UnsafeCallbackDefinition>;

type Fns = { [K in keyof typeof DEFS]: Deno.UnsafeFnPointer<(typeof DEFS)[K]> };

const cstr = (s: string) => new TextEncoder().encode(s + "\0");

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a === b || (a.length === b.length && a.every((d, i) => d === b[i]));

/** The library file of onnxruntime-node's native binaries for this platform. */
function libraryUrl(packageEntry: string): URL {
  const os = { linux: "linux", darwin: "darwin", windows: "win32" }[Deno.build.os as string];
  const arch = { x86_64: "x64", aarch64: "arm64" }[Deno.build.arch as string];
  const file = { linux: "libonnxruntime.so.1", darwin: "libonnxruntime.1.dylib", win32: "onnxruntime.dll" }[
    os ?? ""
  ];
  if (!os || !arch || !file) {
    throw new Error(`onnxruntime-node ships no library for ${Deno.build.os} ${Deno.build.arch}`);
  }
  return new URL(`../bin/napi-v6/${os}/${arch}/${file}`, packageEntry);
}

class Api {
  readonly fns: Fns;
  readonly env: Deno.PointerValue;
  readonly cpu: Deno.PointerValue;
  readonly version: string;
  /** OrtValues over caller buffers, reused while the buffer lives (an OrtValue does not own its data). */
  readonly #values = new WeakMap<ArrayBufferView, { address: bigint; shape: readonly number[] }>();
  readonly #finalizer: FinalizationRegistry<Deno.PointerValue>;

  constructor(path: URL) {
    const lib = Deno.dlopen(path, { OrtGetApiBase: { parameters: [], result: P } });
    const base = new Deno.UnsafePointerView(lib.symbols.OrtGetApiBase()!);
    const getApi = new Deno.UnsafeFnPointer(base.getPointer(0)!, { parameters: ["u32"], result: P });
    const getVersion = new Deno.UnsafeFnPointer(base.getPointer(8)!, { parameters: [], result: P });
    this.version = Deno.UnsafePointerView.getCString(getVersion.call()!);
    const api = getApi.call(API_VERSION);
    if (!api) throw new Error(`onnxruntime ${this.version} does not offer C API version ${API_VERSION}`);
    const table = new Deno.UnsafePointerView(api);
    const fns: Record<string, unknown> = {};
    for (const [name, slot] of Object.entries(SLOT)) {
      fns[name] = new Deno.UnsafeFnPointer(
        table.getPointer(slot * 8)!,
        DEFS[name as keyof typeof DEFS] as Deno.UnsafeCallbackDefinition,
      );
    }
    this.fns = fns as Fns;
    // The environment and the CPU memory description live as long as the process (sessions need both).
    this.env = this.out((o) => this.fns.CreateEnv.call(3, cstr("f16repro"), o)); // 3: ORT_LOGGING_LEVEL_ERROR
    this.cpu = this.out((o) => this.fns.CreateCpuMemoryInfo.call(1, 0, o)); // arena allocator, default mem
    this.#finalizer = new FinalizationRegistry((v) => this.fns.ReleaseValue.call(v));
  }

  /** Throws the message of a non-null OrtStatus (and releases it). */
  check(status: Deno.PointerValue): void {
    if (status === null) return;
    const msg = Deno.UnsafePointerView.getCString(this.fns.GetErrorMessage.call(status)!);
    this.fns.ReleaseStatus.call(status);
    throw new Error(`onnxruntime: ${msg}`);
  }

  /** Calls `f` with an out-pointer slot and returns what it wrote there. */
  out(f: (slot: BigUint64Array) => Deno.PointerValue): Deno.PointerValue {
    const slot = new BigUint64Array(1);
    this.check(f(slot));
    return Deno.UnsafePointer.create(slot[0]);
  }

  /** The address of the OrtValue over `t`'s memory (one per buffer and shape, released with the buffer). */
  value(t: CTensor): bigint {
    const known = this.#values.get(t.data);
    if (known && sameShape(known.shape, t.shape)) return known.address;
    const elem = t.data instanceof Float32Array ? C_ELEM.FLOAT : C_ELEM.BOOL;
    const dims = BigInt64Array.from(t.shape, (d) => BigInt(d));
    const value = this.out((o) =>
      this.fns.CreateTensorWithDataAsOrtValue.call(
        this.cpu,
        Deno.UnsafePointer.of(t.data),
        BigInt(t.data.byteLength),
        dims,
        BigInt(dims.length),
        elem,
        o,
      )
    );
    const address = BigInt(Deno.UnsafePointer.value(value));
    this.#values.set(t.data, { address, shape: t.shape });
    this.#finalizer.register(t.data, value);
    return address;
  }
}

class Session implements CSession {
  readonly #api: Api;
  #session: Deno.PointerValue;
  readonly #inputNames: readonly string[];
  readonly #outputNames: readonly string[];
  /** Name pointers, kept alive with the session (the C strings they point into are held in #keep). */
  readonly #inNamePtrs: BigUint64Array;
  readonly #outNamePtrs: BigUint64Array;
  readonly #inValues: BigUint64Array;
  readonly #outValues: BigUint64Array;
  readonly #keep: Uint8Array[];

  constructor(
    api: Api,
    model: Uint8Array,
    inputs: readonly string[],
    outputs: readonly string[],
    o: CSessionOptions,
  ) {
    this.#api = api;
    const f = api.fns;
    const opts = api.out((slot) => f.CreateSessionOptions.call(slot));
    try {
      api.check(f.SetIntraOpNumThreads.call(opts, o.intraOpThreads));
      api.check(f.SetInterOpNumThreads.call(opts, o.interOpThreads));
      api.check(f.SetSessionExecutionMode.call(opts, o.sequential ? 0 : 1));
      api.check(f.SetSessionGraphOptimizationLevel.call(opts, o.optimizationLevel));
      for (const [k, v] of Object.entries(o.config)) {
        api.check(f.AddSessionConfigEntry.call(opts, cstr(k), cstr(v)));
      }
      // Paths are char* on Linux and macOS (ORTCHAR_T); the profiler is not used on Windows here.
      if (o.profilePrefix) api.check(f.EnableProfiling.call(opts, cstr(o.profilePrefix)));
      if (o.optimizedModelPath) api.check(f.SetOptimizedModelFilePath.call(opts, cstr(o.optimizedModelPath)));
      this.#session = api.out((slot) =>
        f.CreateSessionFromArray.call(api.env, model, BigInt(model.byteLength), opts, slot)
      );
    } finally {
      f.ReleaseSessionOptions.call(opts);
    }
    this.#inputNames = inputs;
    this.#outputNames = outputs;
    this.#keep = [...inputs, ...outputs].map(cstr);
    const ptr = (b: Uint8Array) => Deno.UnsafePointer.value(Deno.UnsafePointer.of(b));
    this.#inNamePtrs = BigUint64Array.from(this.#keep.slice(0, inputs.length), ptr);
    this.#outNamePtrs = BigUint64Array.from(this.#keep.slice(inputs.length), ptr);
    this.#inValues = new BigUint64Array(inputs.length);
    this.#outValues = new BigUint64Array(outputs.length);
  }

  run(inputs: Readonly<Record<string, CTensor>>, outputs: Readonly<Record<string, CTensor>>): void {
    if (this.#session === null) throw new Error("The onnxruntime session was released");
    const api = this.#api;
    this.#inputNames.forEach((n, i) => {
      const t = inputs[n];
      if (!t) throw new Error(`Missing onnxruntime input ${n}`);
      this.#inValues[i] = api.value(t);
    });
    this.#outputNames.forEach((n, i) => {
      const t = outputs[n];
      if (!t) throw new Error(`Missing onnxruntime output buffer ${n}`);
      this.#outValues[i] = api.value(t);
    });
    api.check(
      api.fns.Run.call(
        this.#session,
        null,
        this.#inNamePtrs,
        this.#inValues,
        BigInt(this.#inputNames.length),
        this.#outNamePtrs,
        BigInt(this.#outputNames.length),
        this.#outValues,
      ),
    );
  }

  release(): void {
    if (this.#session !== null) this.#api.fns.ReleaseSession.call(this.#session);
    this.#session = null;
  }
}

let loaded: OrtC | undefined;

/**
 * The C API of the onnxruntime library inside the onnxruntime-node package whose entry module is
 * `packageEntry` (a file URL, from `import.meta.resolve`). Needs --allow-ffi.
 */
export function openOrtC(packageEntry: string): OrtC {
  if (loaded) return loaded;
  const api = new Api(libraryUrl(packageEntry));
  loaded = {
    version: api.version,
    createSession: (model, inputs, outputs, options) => new Session(api, model, inputs, outputs, options),
  };
  return loaded;
}
