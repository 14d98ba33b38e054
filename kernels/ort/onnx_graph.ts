/**
 * A small builder for an ONNX graph: nodes, constants, inputs and outputs as the plain objects that
 * onnx-proto's `ModelProto.fromObject` takes. The protobuf encoding itself is onnx-proto's (protobufjs).
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { OnnxProto } from "./runtime.ts";

/** ONNX element types (TensorProto.DataType) used here. */
export const ELEM = { FLOAT: 1, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16 } as const;

/** The ONNX element type a tensor of each format is stored in. */
export const ELEM_OF: Readonly<Record<FormatName, number>> = {
  fp32: ELEM.FLOAT,
  fp16: ELEM.FLOAT16,
  bf16: ELEM.BFLOAT16,
  fp64: ELEM.DOUBLE,
};

/**
 * Attribute values: a number is an INT, a number list INTS, a string STRING, `{ float }` a FLOAT (float
 * constants are inputs, except where an operator takes them as attributes).
 */
export type OnnxAttr = number | readonly number[] | string | { readonly float: number };

/** The opset the lowerings are written against (ReduceMean and friends take axes as an input from 18). */
export const OPSET = 18;

type Obj = Record<string, unknown>;

function attribute(name: string, v: OnnxAttr): Obj {
  if (typeof v === "string") return { name, type: 3, s: new TextEncoder().encode(v) };
  if (typeof v === "number") return { name, type: 2, i: v };
  if ("float" in v) return { name, type: 1, f: v.float };
  return { name, type: 7, ints: [...v] };
}

function valueInfo(name: string, elemType: number, dims: readonly number[]): Obj {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

/** An ONNX graph under construction. */
export class OnnxGraph {
  readonly #nodes: Obj[] = [];
  readonly #inits: Obj[] = [];
  readonly #inputs: Obj[] = [];
  readonly #outputs: Obj[] = [];
  readonly #consts = new Map<string, string>();
  readonly #domains = new Set<string>();
  #count = 0;

  /** A fresh tensor name. */
  fresh(hint = "t"): string {
    return `${hint}_${this.#count++}`;
  }

  /** Adds one node and returns the names of its `outputs` outputs. */
  nodeN(op: string, inputs: readonly string[], attrs: Record<string, OnnxAttr>, outputs: number): string[] {
    // "domain:Op" names an operator of another domain (onnxruntime's contrib operators).
    const at = op.lastIndexOf(":"), domain = at < 0 ? "" : op.slice(0, at), opType = op.slice(at + 1);
    if (domain) this.#domains.add(domain);
    const out = Array.from({ length: outputs }, () => this.fresh(opType));
    this.#nodes.push({
      opType,
      ...(domain ? { domain } : {}),
      name: out[0],
      input: [...inputs],
      output: out,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Adds one single-output node and returns its output name. */
  node(op: string, inputs: readonly string[], attrs: Record<string, OnnxAttr> = {}): string {
    return this.nodeN(op, inputs, attrs, 1)[0];
  }

  /** A node writing to a given name (graph outputs). */
  nodeTo(op: string, inputs: readonly string[], output: string, attrs: Record<string, OnnxAttr> = {}): void {
    this.#nodes.push({
      opType: op,
      name: output,
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
  }

  /**
   * Renames the output `from` of the last node to `to`, when the last node produced it (a graph output
   * then needs no Identity copy). Returns false, changing nothing, otherwise.
   */
  renameLast(from: string, to: string): boolean {
    const last = this.#nodes.at(-1);
    const out = last?.output as string[] | undefined;
    if (!out || out[0] !== from) return false;
    out[0] = to;
    return true;
  }

  /** A constant tensor (an initializer) of raw little-endian bytes; equal constants are shared. */
  tensor(elemType: number, dims: readonly number[], bytes: Uint8Array, name?: string): string {
    // Small constants (scalars, axes, shapes) are shared; large ones are unique anyway.
    const key = name === undefined && bytes.length <= 256
      ? `${elemType}|${dims}|${bytes.join(",")}`
      : undefined;
    const known = key === undefined ? undefined : this.#consts.get(key);
    if (known) return known;
    const n = name ?? this.fresh("c");
    this.#inits.push({ name: n, dataType: elemType, dims: [...dims], rawData: bytes });
    if (key !== undefined) this.#consts.set(key, n);
    return n;
  }

  /** A float32 constant (a scalar when `dims` is empty). */
  f32(values: number | readonly number[], dims: readonly number[] = []): string {
    const a = Float32Array.from(typeof values === "number" ? [values] : values);
    return this.tensor(ELEM.FLOAT, dims, new Uint8Array(a.buffer));
  }

  /** An int64 constant (shapes, axes, indices). */
  i64(values: number | readonly number[], dims?: readonly number[]): string {
    const list = typeof values === "number" ? [values] : values;
    const a = BigInt64Array.from(list, (v) => BigInt(v));
    return this.tensor(
      ELEM.INT64,
      dims ?? (typeof values === "number" ? [] : [list.length]),
      new Uint8Array(a.buffer),
    );
  }

  /** Declares a graph input. */
  input(name: string, elemType: number, dims: readonly number[]): void {
    this.#inputs.push(valueInfo(name, elemType, dims));
  }

  /** Declares a graph output. */
  output(name: string, elemType: number, dims: readonly number[]): void {
    this.#outputs.push(valueInfo(name, elemType, dims));
  }

  /** The serialised ModelProto. */
  encode(onnx: OnnxProto, name: string, docString = ""): Uint8Array {
    const model = onnx.ModelProto.fromObject({
      irVersion: 8,
      producerName: "f16repro",
      docString,
      opsetImport: [
        { domain: "", version: OPSET },
        ...[...this.#domains].map((domain) => ({ domain, version: 1 })),
      ],
      graph: {
        name,
        node: this.#nodes,
        initializer: this.#inits,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
