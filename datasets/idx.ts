/**
 * Decoding of gzipped IDX files, the format of MNIST and Fashion-MNIST.
 *
 * An IDX file is a 4-byte magic (two zero bytes, an element type byte, a
 * dimension count byte), one big-endian u32 size per dimension, then the
 * elements in row-major order. The decoder checks every part of that against
 * what the caller expects and requires the payload to be exactly as long as
 * the sizes say: a short payload means a truncated download, a long one means
 * the wrong file or a corrupt header, and neither may silently feed training.
 *
 * @module
 */

import { DatasetError, gunzip } from "./gzip.ts";

/** The IDX element type of unsigned bytes (MNIST images and labels). */
export const IDX_UBYTE = 0x08;

/** Bytes per element of each IDX element type. */
const ELEMENT_BYTES: Readonly<Record<number, number>> = {
  0x08: 1, // unsigned byte
  0x09: 1, // signed byte
  0x0b: 2, // short
  0x0c: 4, // int
  0x0d: 4, // float
  0x0e: 8, // double
};

/** A decoded IDX file: its dimension sizes and its raw elements (big-endian for multi-byte types). */
export interface IdxArray {
  readonly dims: number[];
  readonly data: Uint8Array;
}

const hex = (n: number, digits: number) => "0x" + n.toString(16).padStart(digits, "0");

/**
 * Gunzips and decodes an IDX file.
 *
 * @param gz The gzipped file.
 * @param file The file's name, used in error messages.
 * @param expect The number of dimensions and the element type (default
 * {@linkcode IDX_UBYTE}) the file must have.
 * @returns The dimension sizes and the payload.
 * @throws {DatasetError} When the file is not gzip, has the wrong magic, type
 * or number of dimensions, a zero size, or a payload that is shorter
 * (truncated) or longer (trailing bytes) than the sizes say.
 */
export async function decodeIdx(
  gz: Uint8Array,
  file: string,
  expect: { dims: number; type?: number },
): Promise<IdxArray> {
  const type = expect.type ?? IDX_UBYTE;
  const size = ELEMENT_BYTES[type];
  if (size === undefined) throw new RangeError(`${file}: unknown IDX element type ${hex(type, 2)}`);
  const raw = await gunzip(gz, file);
  if (raw.length < 4) throw new DatasetError(`${file}: truncated IDX header (${raw.length} bytes)`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = view.getUint32(0);
  const want = (type << 8) | expect.dims;
  if (raw[0] !== 0 || raw[1] !== 0) {
    throw new DatasetError(`${file}: expected IDX magic ${hex(want, 8)}, found ${hex(magic, 8)}`);
  }
  if (raw[2] !== type) {
    throw new DatasetError(`${file}: expected IDX element type ${hex(type, 2)}, found ${hex(raw[2], 2)}`);
  }
  if (raw[3] !== expect.dims) {
    throw new DatasetError(`${file}: expected ${expect.dims} IDX dimensions, found ${raw[3]}`);
  }
  const header = 4 + 4 * expect.dims;
  if (raw.length < header) {
    throw new DatasetError(`${file}: truncated IDX header (${raw.length} of ${header} bytes)`);
  }
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < expect.dims; d++) {
    const n = view.getUint32(4 + 4 * d);
    if (n === 0) throw new DatasetError(`${file}: IDX dimension ${d} has size 0`);
    dims.push(n);
    elements *= n;
  }
  const expected = elements * size, found = raw.length - header;
  if (found < expected) {
    throw new DatasetError(
      `${file}: truncated IDX payload: dimensions [${dims}] need ${expected} bytes, found ${found}`,
    );
  }
  if (found > expected) {
    throw new DatasetError(
      `${file}: ${found - expected} trailing bytes after the IDX payload of dimensions [${dims}]`,
    );
  }
  return { dims, data: raw.subarray(header) };
}

/**
 * Checks that decoded images [N, height, width] and labels [N] belong
 * together and that every label is a valid class.
 *
 * @param images The decoded image file.
 * @param labels The decoded label file.
 * @param file The names of the pair, used in error messages.
 * @param opts The expected image height and width and the number of classes.
 * @returns The number of examples N.
 * @throws {DatasetError} When the shapes disagree or a label is `>= classes`
 * (naming the first such label's index and value).
 */
export function checkImagesAndLabels(
  images: IdxArray,
  labels: IdxArray,
  file: string,
  opts: { height: number; width: number; classes: number },
): number {
  const [n, h, w] = images.dims;
  if (images.dims.length !== 3 || h !== opts.height || w !== opts.width) {
    throw new DatasetError(
      `${file}: expected images of dimensions [N, ${opts.height}, ${opts.width}], found [${images.dims}]`,
    );
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== n) {
    throw new DatasetError(`${file}: ${n} images but labels of dimensions [${labels.dims}]`);
  }
  const y = labels.data;
  for (let i = 0; i < y.length; i++) {
    if (y[i] >= opts.classes) {
      throw new DatasetError(`${file}: label ${i} is ${y[i]}, expected below ${opts.classes}`);
    }
  }
  return n;
}
