/**
 * Tests of the dataset file decoders (gzip, IDX, tar, CIFAR-10 binary) on
 * fixtures built in memory: valid files decode exactly, and every kind of
 * malformed or unsafe input is refused with an error that names the file and
 * the problem.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatasetError, gunzip } from "../datasets/gzip.ts";
import { checkImagesAndLabels, decodeIdx } from "../datasets/idx.ts";
import { tarEntries } from "../datasets/tar.ts";
import { decodeCifar10 } from "../datasets/cifar.ts";
import {
  cifarBatch,
  cifarEntries,
  gzip,
  makeCifarTarGz,
  makeIdx,
  makeTar,
  md5Hex,
  sha256Hex,
} from "./support/fixtures.ts";

const IMG = "mnist/train-images-idx3-ubyte.gz", LBL = "mnist/train-labels-idx1-ubyte.gz";
const bytes = (n: number, f: (i: number) => number) => Uint8Array.from({ length: n }, (_, i) => f(i));

/** Asserts that `p` rejects with a DatasetError whose message matches `re`. */
async function rejects(p: Promise<unknown> | (() => unknown), re: RegExp): Promise<void> {
  await assert.rejects(async () => await (typeof p === "function" ? p() : p), (e: unknown) => {
    assert.ok(e instanceof DatasetError, `expected a DatasetError, got ${e}`);
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("fixture hashes match known digests", () => {
  const abc = new TextEncoder().encode("abc");
  assert.equal(md5Hex(abc), "900150983cd24fb0d6963f7d28e17f72");
  assert.equal(sha256Hex(abc), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

Deno.test("gunzip round-trips and refuses non-gzip and truncated input", async () => {
  const raw = bytes(5000, (i) => (i * 7) % 13);
  const gz = await gzip(raw);
  assert.deepEqual(await gunzip(gz, "a.gz"), raw);
  await rejects(gunzip(raw, "a.gz"), /^a\.gz: expected gzip magic 1f 8b, found 00 07$/);
  await rejects(gunzip(new Uint8Array(0), "a.gz"), /^a\.gz: expected gzip magic 1f 8b, found an empty file$/);
  await rejects(gunzip(gz.subarray(0, gz.length - 6), "a.gz"), /^a\.gz: gzip data is corrupt, truncated/);
  const bad = gz.slice();
  bad[15] ^= 0x55;
  await rejects(gunzip(bad, "a.gz"), /^a\.gz: gzip data is corrupt/);
});

Deno.test("decodeIdx decodes images and labels with exact dims and values", async () => {
  const pixels = bytes(3 * 4 * 5, (i) => (i * 37) % 256), labels = Uint8Array.of(3, 0, 9);
  const images = await decodeIdx(await gzip(makeIdx([3, 4, 5], pixels)), IMG, { dims: 3 });
  const ys = await decodeIdx(await gzip(makeIdx([3], labels)), LBL, { dims: 1, type: 0x08 });
  assert.deepEqual(images.dims, [3, 4, 5]);
  assert.deepEqual(images.data, pixels);
  assert.deepEqual(ys.dims, [3]);
  assert.deepEqual(ys.data, labels);
  assert.equal(checkImagesAndLabels(images, ys, "mnist/train", { height: 4, width: 5, classes: 10 }), 3);
});

Deno.test("decodeIdx refuses malformed files", async () => {
  const ok = makeIdx([2, 2, 2], new Uint8Array(8));
  const edit = async (at: number, v: number) => {
    const b = ok.slice();
    b[at] = v;
    return await gzip(b);
  };
  const idx = async (b: Uint8Array, dims = 3) => await decodeIdx(await gzip(b), IMG, { dims });
  await rejects(decodeIdx(ok, IMG, { dims: 3 }), /^mnist\/train-images-idx3-ubyte\.gz: expected gzip magic/);
  await rejects(
    decodeIdx(await edit(0, 0x1f), IMG, { dims: 3 }),
    /^mnist\/train-images-idx3-ubyte\.gz: expected IDX magic 0x00000803, found 0x1f000803$/,
  );
  await rejects(
    decodeIdx(await edit(2, 0x0d), IMG, { dims: 3 }),
    /expected IDX element type 0x08, found 0x0d$/,
  );
  await rejects(idx(ok, 1), /: expected 1 IDX dimensions, found 3$/);
  await rejects(idx(ok.subarray(0, 10)), /: truncated IDX header \(10 of 16 bytes\)$/);
  await rejects(idx(makeIdx([2, 0, 2], new Uint8Array(0))), /: IDX dimension 1 has size 0$/);
  await rejects(idx(ok.subarray(0, ok.length - 1)), /: truncated IDX payload: .* need 8 bytes, found 7$/);
  await rejects(
    idx(Uint8Array.of(...ok, 1, 2)),
    /: 2 trailing bytes after the IDX payload of dimensions \[2,2,2\]$/,
  );
});

Deno.test("checkImagesAndLabels refuses mismatched counts, shapes and out-of-range labels", () => {
  const images = { dims: [3, 4, 5], data: new Uint8Array(60) };
  const opts = { height: 4, width: 5, classes: 10 };
  const check = (labels: { dims: number[]; data: Uint8Array }, o = opts) => () =>
    checkImagesAndLabels(images, labels, "mnist/train", o);
  assert.throws(
    check({ dims: [4], data: new Uint8Array(4) }),
    /^DatasetError: mnist\/train: 3 images but labels of dimensions \[4\]$/,
  );
  assert.throws(
    check({ dims: [3], data: Uint8Array.of(1, 2, 3) }, { ...opts, height: 28 }),
    /\[N, 28, 5\], found \[3,4,5\]$/,
  );
  assert.throws(
    check({ dims: [3], data: Uint8Array.of(1, 10, 12) }),
    /mnist\/train: label 1 is 10, expected below 10$/,
  );
});

Deno.test("tarEntries reads files back exactly and skips directories", () => {
  const a = bytes(1000, (i) => i % 251), b = new TextEncoder().encode("hello");
  const long = "d/" + "x".repeat(120) + "/file.bin";
  const tar = makeTar([
    { name: "d/", type: "5" },
    { name: "d/a.bin", data: a },
    { name: "d/empty" },
    { name: "./d/b.txt", data: b },
    { name: long, data: b },
  ]);
  const got = tarEntries(tar, "t.tar");
  assert.deepEqual(got.map((e) => e.name), ["d/a.bin", "d/empty", "d/b.txt", long]);
  assert.deepEqual(got[0].data, a);
  assert.equal(got[1].data.length, 0);
  assert.deepEqual(got[2].data, b);
  assert.deepEqual(got[3].data, b);
  // Without the final zero blocks the archive still ends cleanly at the end of the data.
  assert.equal(tarEntries(tar.subarray(0, tar.length - 1024), "t.tar").length, 4);
});

Deno.test("tarEntries refuses unsafe names, links and damaged archives", () => {
  const refuse = (spec: Parameters<typeof makeTar>[0][0], re: RegExp) =>
    assert.throws(() => tarEntries(makeTar([{ name: "ok", data: Uint8Array.of(1) }, spec]), "t.tar"), (e) => {
      assert.ok(e instanceof DatasetError);
      assert.match(e.message, re);
      return true;
    });
  refuse({ name: "/etc/passwd" }, /^t\.tar: tar entry "\/etc\/passwd" is an absolute path/);
  refuse({ name: "../x" }, /^t\.tar: tar entry "\.\.\/x" contains a '\.\.' component/);
  refuse({ name: "a/../../x" }, /tar entry "a\/\.\.\/\.\.\/x" contains a '\.\.' component/);
  refuse({ name: "../up", type: "5" }, /tar entry "\.\.\/up" contains a '\.\.' component/);
  refuse({ name: "C:\\x" }, /tar entry "C:\\x" starts with a drive letter/);
  refuse({ name: "a\\b" }, /tar entry "a\\b" contains a backslash/);
  refuse({ name: "link", type: "2", linkname: "/etc/passwd" }, /tar entry "link" is a symbolic link/);
  refuse({ name: "hard", type: "1", linkname: "ok" }, /tar entry "hard" is a hard link/);
  refuse({ name: "fifo", type: "6" }, /tar entry "fifo" is of type '6'; only regular files/);

  const tar = makeTar([{ name: "a.bin", data: new Uint8Array(700) }]);
  const bad = tar.slice();
  bad[0] ^= 1;
  assert.throws(() => tarEntries(bad, "t.tar"), /^DatasetError: t\.tar: bad tar header checksum at byte 0/);
  assert.throws(
    () => tarEntries(tar.subarray(0, 900), "t.tar"),
    /tar entry "a\.bin" is truncated \(700 bytes declared, 388 present\)/,
  );
  assert.throws(
    () => tarEntries(tar.subarray(0, 300), "t.tar"),
    /truncated tar header at byte 0 \(300 of 512 bytes\)/,
  );
  assert.throws(() => tarEntries(new Uint8Array(512).fill(7), "t.tar"), /bad tar header checksum/);
});

Deno.test("decodeCifar10 decodes a small archive into NCHW pixels and labels", async () => {
  const per = 3;
  const { train, test } = await decodeCifar10(await makeCifarTarGz(per, 5), "cifar-10-binary.tar.gz");
  assert.equal(train.count, 5 * per);
  assert.equal(test.count, per);
  assert.equal(train.x.length, 5 * per * 3072);
  assert.equal(test.x.length, per * 3072);
  for (let b = 0; b < 6; b++) {
    const batch = cifarBatch(per, 5, b), split = b < 5 ? train : test, base = b < 5 ? b * per : 0;
    for (let r = 0; r < per; r++) {
      assert.equal(split.y[base + r], batch[r * 3073]);
      assert.ok(split.y[base + r] < 10);
      assert.deepEqual(
        split.x.subarray((base + r) * 3072, (base + r + 1) * 3072),
        batch.subarray(r * 3073 + 1, (r + 1) * 3073),
      );
    }
  }
});

Deno.test("decodeCifar10 refuses missing members, bad lengths and bad labels", async () => {
  const file = "cifar-10-binary.tar.gz";
  const entries = cifarEntries(2);
  const without = entries.filter((e) => !e.name.endsWith("data_batch_3.bin"));
  await rejects(
    decodeCifar10(await gzip(makeTar(without)), file),
    /^cifar-10-binary\.tar\.gz: missing member "cifar-10-batches-bin\/data_batch_3\.bin"$/,
  );
  const short = entries.map((e) =>
    e.name.endsWith("test_batch.bin") ? { ...e, data: e.data!.subarray(1) } : e
  );
  await rejects(
    decodeCifar10(await gzip(makeTar(short)), file),
    /member "cifar-10-batches-bin\/test_batch\.bin" is 6145 bytes, expected a positive multiple of 3073/,
  );
  const label = entries.map((e) => e.name.endsWith("data_batch_2.bin") ? { ...e, data: e.data!.slice() } : e);
  label.find((e) => e.name.endsWith("data_batch_2.bin"))!.data![3073] = 10;
  await rejects(
    decodeCifar10(await gzip(makeTar(label)), file),
    /member "cifar-10-batches-bin\/data_batch_2\.bin" record 1 has label 10, expected below 10$/,
  );
  await rejects(decodeCifar10(makeTar(entries), file), /expected gzip magic 1f 8b/);
});
