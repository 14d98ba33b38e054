/**
 * Decoding of CIFAR-10's binary version, `cifar-10-binary.tar.gz`.
 *
 * The archive's folder `cifar-10-batches-bin/` holds five training batches
 * `data_batch_1.bin` to `data_batch_5.bin` and `test_batch.bin`. Each is a
 * sequence of 3073-byte records: one label byte, then 1024 red, 1024 green
 * and 1024 blue bytes of a 32x32 image in row-major order. That is already
 * channel-major, so the pixels of the records, concatenated, are the NCHW
 * tensor training wants, and decoding only separates labels from pixels.
 *
 * The real batches hold 10000 records each; any whole number of records is
 * accepted (so tests can use small archives) and the counts are returned for
 * the caller to check and record.
 *
 * @module
 */

import { DatasetError, gunzip } from "./gzip.ts";
import { tarEntries } from "./tar.ts";

/** One decoded split: pixels [N, 3, 32, 32] as bytes, labels [N]. */
export interface CifarSplit {
  readonly x: Uint8Array;
  readonly y: Uint8Array;
  readonly count: number;
}

/** The folder inside the archive. */
const FOLDER = "cifar-10-batches-bin/";
const TRAIN = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const TEST = ["test_batch.bin"];
const PIXELS = 3 * 32 * 32, RECORD = 1 + PIXELS, CLASSES = 10;

/**
 * Gunzips, unpacks and decodes the CIFAR-10 binary archive. Other members
 * (`batches.meta.txt`, `readme.html`) are ignored.
 *
 * @param tgz The file `cifar-10-binary.tar.gz`.
 * @param file The file's name, used in error messages.
 * @returns The training split (batches 1 to 5 in order) and the test split.
 * @throws {DatasetError} When the file is not a valid gzipped tar, a batch is
 * missing or present twice, a batch's length is not a positive multiple of
 * 3073 bytes, or a label is not below 10.
 */
export async function decodeCifar10(
  tgz: Uint8Array,
  file: string,
): Promise<{ train: CifarSplit; test: CifarSplit }> {
  const members = new Map<string, Uint8Array>();
  for (const e of tarEntries(await gunzip(tgz, file), file)) {
    if (!e.name.startsWith(FOLDER)) continue;
    const base = e.name.slice(FOLDER.length);
    if (members.has(base)) throw new DatasetError(`${file}: member "${e.name}" appears more than once`);
    members.set(base, e.data);
  }
  for (const n of [...TRAIN, ...TEST]) {
    const data = members.get(n);
    if (!data) throw new DatasetError(`${file}: missing member "${FOLDER}${n}"`);
    if (data.length === 0 || data.length % RECORD !== 0) {
      throw new DatasetError(
        `${file}: member "${FOLDER}${n}" is ${data.length} bytes, expected a positive multiple of ${RECORD} ` +
          `(1 label byte and ${PIXELS} pixel bytes per record)`,
      );
    }
  }
  const split = (names: string[]): CifarSplit => {
    const batches = names.map((n) => ({ n, data: members.get(n)! }));
    const count = batches.reduce((s, b) => s + b.data.length / RECORD, 0);
    const x = new Uint8Array(count * PIXELS), y = new Uint8Array(count);
    let k = 0;
    for (const { n, data } of batches) {
      for (let r = 0; r < data.length / RECORD; r++, k++) {
        const label = data[r * RECORD];
        if (label >= CLASSES) {
          throw new DatasetError(
            `${file}: member "${FOLDER}${n}" record ${r} has label ${label}, expected below ${CLASSES}`,
          );
        }
        y[k] = label;
        x.set(data.subarray(r * RECORD + 1, (r + 1) * RECORD), k * PIXELS);
      }
    }
    return { x, y, count };
  };
  return { train: split(TRAIN), test: split(TEST) };
}
