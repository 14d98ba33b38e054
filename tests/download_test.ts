/**
 * Tests of the downloader (`ensureFile`) against a real HTTP server on
 * 127.0.0.1 that serves generated fixtures and injects faults per path:
 * truncated and dropped bodies, resumption with Range, servers that ignore
 * Range, wrong bytes, 5xx / 404 answers with mirror fallback, stalls, offline
 * mode, corrupt cached files, and the lock file. Every case ends in a
 * verified file or a clear DatasetError, and afterwards the cache holds no
 * unverified file under the final name, no `.part` and no `.lock`.
 *
 * Run with `--allow-net=127.0.0.1 --allow-read --allow-write`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type DownloadOptions, ensureFile, type Progress, type RemoteFile } from "../datasets/download.ts";
import { type Checksum, verifyFile } from "../datasets/checksum.ts";
import { DatasetError, gunzip } from "../datasets/gzip.ts";
import { checkImagesAndLabels, decodeIdx } from "../datasets/idx.ts";
import { decodeCifar10 } from "../datasets/cifar.ts";
import { tarEntries } from "../datasets/tar.ts";
import {
  gzip,
  makeCifarTarGz,
  makeIdx,
  makeTar,
  md5Hex,
  seededBytes,
  sha256Hex,
} from "./support/fixtures.ts";
import { type Fault, FaultServer } from "./support/http_server.ts";

// ---------------------------------------------------------------------------
// Fixtures (generated once; checksums computed here)

const N_IMAGES = 4;
const IDX_RAW = makeIdx([N_IMAGES, 28, 28], seededBytes(N_IMAGES * 28 * 28, 7, 1));
const IDX_GZ = await gzip(IDX_RAW);
const LABELS_GZ = await gzip(makeIdx([N_IMAGES], Uint8Array.from([3, 1, 4, 1])));
const CIFAR_TGZ = await makeCifarTarGz(2);

const IMG_NAME = "mnist/train-images-idx3-ubyte.gz";
const LBL_NAME = "mnist/train-labels-idx1-ubyte.gz";
const CIFAR_NAME = "cifar10/cifar-10-binary.tar.gz";

const sha256 = (b: Uint8Array): Checksum => ({ algorithm: "sha256", hex: sha256Hex(b) });
const md5 = (b: Uint8Array): Checksum => ({ algorithm: "md5", hex: md5Hex(b) });

function remote(
  name: string,
  urls: string[],
  bytes: Uint8Array,
  checksum: Checksum = sha256(bytes),
): RemoteFile {
  return { name, urls, checksum, size: bytes.length };
}

// ---------------------------------------------------------------------------
// Harness

interface Ctx {
  server: FaultServer;
  cacheDir: string;
  events: string[];
  progress: Progress[];
  /** Fast options for tests; `extra` overrides. */
  opts(extra?: Partial<DownloadOptions>): DownloadOptions;
}

/** Runs `fn` with a fresh server and temp cache folder, then checks the cache and cleans both up. */
async function withServer(fn: (c: Ctx) => Promise<void>): Promise<void> {
  const server = new FaultServer();
  const cacheDir = await Deno.makeTempDir({ prefix: "f16repro_download_test_" });
  const events: string[] = [], progress: Progress[] = [];
  const ctx: Ctx = {
    server,
    cacheDir,
    events,
    progress,
    opts: (extra = {}) => ({
      cacheDir,
      stallTimeoutMs: 300,
      attempts: 3,
      backoffMs: 10,
      lockWaitMs: 5_000,
      onEvent: (m) => events.push(m),
      onProgress: (p) => progress.push(p),
      ...extra,
    }),
  };
  try {
    await fn(ctx);
  } finally {
    try {
      await server.close();
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  }
}

/** Every file below `dir`, as paths relative to it. */
async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix + e.name;
    if (e.isDirectory) out.push(...await listFiles(`${dir}/${e.name}`, `${rel}/`));
    else out.push(rel);
  }
  return out.sort();
}

/**
 * The cache invariant: the final file is absent or verified, and no `.part`
 * or `.lock` file is left anywhere in the cache.
 */
async function assertCacheClean(cacheDir: string, files: RemoteFile[]): Promise<void> {
  for (const f of files) {
    const path = `${cacheDir}/${f.name}`;
    let present = true;
    try {
      await Deno.lstat(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      present = false;
    }
    if (present) {
      assert.ok(await verifyFile(path, f.checksum), `${f.name}: unverified file under the final name`);
    }
  }
  const leftovers = (await listFiles(cacheDir)).filter((p) => p.endsWith(".part") || p.endsWith(".lock"));
  assert.deepEqual(leftovers, [], "no .part or .lock may be left in the cache");
}

/** Asserts that `p` rejects with a DatasetError whose message matches every regex. */
async function rejectsDataset(p: Promise<unknown>, ...res: RegExp[]): Promise<DatasetError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${err}`);
  for (const re of res) assert.match(err.message, re);
  return err;
}

async function assertFileBytes(path: string, bytes: Uint8Array): Promise<void> {
  const got = await Deno.readFile(path);
  assert.equal(got.length, bytes.length, `${path}: length`);
  assert.ok(got.every((b, i) => b === bytes[i]), `${path}: bytes differ`);
}

const t = (name: string, fn: (c: Ctx) => Promise<void>, ignore = false) =>
  Deno.test({ name: `download: ${name}`, ignore, fn: () => withServer(fn) });

// ---------------------------------------------------------------------------
// 1. Plain success

t("a plain download lands verified; a second call makes no request", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  const path = await ensureFile(file, c.opts());
  assert.equal(path, `${c.cacheDir}/${IMG_NAME}`);
  await assertFileBytes(path, IDX_GZ);
  assert.equal(c.server.requests().length, 1);
  assert.equal(c.server.requests()[0].range, null, "a fresh download sends no Range");
  const last = c.progress.at(-1)!;
  assert.deepEqual([last.received, last.total, last.name], [IDX_GZ.length, IDX_GZ.length, IMG_NAME]);

  assert.equal(await ensureFile(file, c.opts()), path);
  assert.equal(c.server.requests().length, 1, "a verified cached file needs no request");
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 2. Truncated body

t("a body shorter than its Content-Length is retried and resumed to a verified file", async (c) => {
  const half = Math.floor(CIFAR_TGZ.length / 2);
  const file = remote(
    CIFAR_NAME,
    [c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "cut", after: half }])],
    CIFAR_TGZ,
  );
  const path = await ensureFile(file, c.opts());
  await assertFileBytes(path, CIFAR_TGZ);
  const reqs = c.server.requests("/c.tgz");
  assert.equal(reqs.length, 2);
  assert.equal(reqs[1].range, `bytes=${half}-`);
  assert.equal(reqs[1].status, 206);
  assert.ok(
    c.events.some((m) => /retrying \(1\/3\)/.test(m) && m.includes(file.urls[0])),
    c.events.join("\n"),
  );
  assert.ok(c.events.some((m) => m.includes(`byte ${half}`)), c.events.join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

t("a consistently short response (its own smaller length) fails the checksum and is retried", async (c) => {
  const half = IDX_GZ.subarray(0, IDX_GZ.length >> 1);
  const url = c.server.route("/img.gz", IDX_GZ, [{ kind: "body", bytes: half }]);
  const file = remote(IMG_NAME, [url], IDX_GZ);
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.equal(c.server.requests().length, 2);
  assert.equal(c.server.requests()[1].range, null, "a file that failed its check is not resumed");
  assert.ok(c.events.some((m) => /sha256 mismatch; retrying \(1\/3\)/.test(m)), c.events.join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 3. Wrong bytes everywhere

t("wrong bytes from every mirror give a DatasetError naming the mismatch, and no file", async (c) => {
  const wrong = seededBytes(IDX_GZ.length, 99, 0);
  const bad: Fault = { kind: "body", bytes: wrong };
  const a = c.server.route("/a/img.gz", IDX_GZ, [], bad), b = c.server.route("/b/img.gz", IDX_GZ, [], bad);
  const file = remote(IMG_NAME, [a, b], IDX_GZ);
  const err = await rejectsDataset(
    ensureFile(file, c.opts({ attempts: 2 })),
    /every source failed/,
    /mismatch/,
  );
  assert.ok(err.message.includes(`${a}: sha256 mismatch`) && err.message.includes(`${b}: sha256 mismatch`));
  assert.ok(err.message.startsWith(IMG_NAME), "the message starts with the file's name");
  assert.equal(c.server.requests("/a/img.gz").length, 2);
  assert.equal(c.server.requests("/b/img.gz").length, 2);
  assert.deepEqual(await listFiles(c.cacheDir), [], "no final file and no .part");
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 4. Status codes and mirror fallback

t("a 500 is retried `attempts` times, then the next mirror serves a verified file", async (c) => {
  const a = c.server.route("/a/img.gz", IDX_GZ, [], { kind: "status", status: 500 });
  const b = c.server.route("/b/img.gz", IDX_GZ);
  const file = remote(IMG_NAME, [a, b], IDX_GZ);
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.equal(c.server.requests("/a/img.gz").length, 3);
  assert.equal(c.server.requests("/b/img.gz").length, 1);
  assert.deepEqual(c.server.log.map((r) => r.path), ["/a/img.gz", "/a/img.gz", "/a/img.gz", "/b/img.gz"]);
  assert.ok(c.events.some((m) => m.includes(`${a}: HTTP 500; retrying (2/3)`)), c.events.join("\n"));
  assert.ok(c.events.some((m) => m.endsWith(`${a}: HTTP 500`)), "the last try says no more retries");
  await assertCacheClean(c.cacheDir, [file]);
});

t("a 404 is not retried: the next mirror is tried at once", async (c) => {
  const a = c.server.route("/a/img.gz", IDX_GZ, [], { kind: "status", status: 404 });
  const b = c.server.route("/b/img.gz", IDX_GZ);
  const file = remote(IMG_NAME, [a, b], IDX_GZ);
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.equal(c.server.requests("/a/img.gz").length, 1);
  assert.equal(c.server.requests("/b/img.gz").length, 1);
  await assertCacheClean(c.cacheDir, [file]);
});

t("every mirror failing with a status gives a DatasetError listing each", async (c) => {
  const a = c.server.route("/a/img.gz", IDX_GZ, [], { kind: "status", status: 404 });
  const b = c.server.route("/b/img.gz", IDX_GZ, [], { kind: "status", status: 503 });
  const file = remote(IMG_NAME, [a, b], IDX_GZ);
  const err = await rejectsDataset(ensureFile(file, c.opts({ attempts: 2 })), /every source failed/);
  assert.ok(err.message.includes(`${a}: HTTP 404`), err.message);
  assert.ok(err.message.includes(`${b}: HTTP 503`), err.message);
  assert.equal(c.server.requests("/a/img.gz").length, 1);
  assert.equal(c.server.requests("/b/img.gz").length, 2);
  await assertCacheClean(c.cacheDir, [file]);
});

t("a 429 is retried like a 5xx", async (c) => {
  const url = c.server.route("/img.gz", IDX_GZ, [{ kind: "status", status: 429 }]);
  const file = remote(IMG_NAME, [url], IDX_GZ);
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.equal(c.server.requests().length, 2);
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 5 and 6. Dropped connections: resume with Range, or restart

t("a connection dropped mid-file is resumed with Range, and no byte is fetched twice", async (c) => {
  const n = 10_000;
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "cut", after: n }]);
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ);
  await assertFileBytes(await ensureFile(file, c.opts()), CIFAR_TGZ);
  const reqs = c.server.requests("/c.tgz");
  assert.deepEqual(reqs.map((r) => [r.range, r.status, r.sent]), [
    [null, 200, n],
    [`bytes=${n}-`, 206, CIFAR_TGZ.length - n],
  ]);
  assert.equal(c.server.bytesSent("/c.tgz"), CIFAR_TGZ.length, "the bytes were not downloaded twice");
  assert.ok(c.events.some((m) => m.includes(`resuming at byte ${n}`)), c.events.join("\n"));
  const last = c.progress.at(-1)!;
  assert.deepEqual([last.received, last.total], [CIFAR_TGZ.length, CIFAR_TGZ.length]);
  await assertCacheClean(c.cacheDir, [file]);
});

t("two drops in a row resume twice from the right offsets", async (c) => {
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "cut", after: 5000 }, {
    kind: "cut",
    after: 7000,
  }]);
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ);
  await assertFileBytes(await ensureFile(file, c.opts()), CIFAR_TGZ);
  assert.deepEqual(c.server.requests().map((r) => r.range), [null, "bytes=5000-", "bytes=12000-"]);
  assert.equal(c.server.bytesSent("/c.tgz"), CIFAR_TGZ.length);
  await assertCacheClean(c.cacheDir, [file]);
});

t("a server that ignores Range after a drop makes the download restart, still verified", async (c) => {
  const n = 10_000;
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "cut", after: n }], { kind: "ignoreRange" });
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ);
  await assertFileBytes(await ensureFile(file, c.opts()), CIFAR_TGZ);
  const reqs = c.server.requests();
  assert.deepEqual(reqs.map((r) => [r.range, r.status]), [[null, 200], [`bytes=${n}-`, 200]]);
  assert.equal(c.server.bytesSent("/c.tgz"), n + CIFAR_TGZ.length);
  assert.ok(c.events.some((m) => m.includes("server ignored the range; restarting")), c.events.join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

t("a leftover .part as long as the file gets a 416 and the download restarts", async (c) => {
  const url = c.server.route("/img.gz", IDX_GZ);
  const file = remote(IMG_NAME, [url], IDX_GZ);
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  await Deno.writeFile(`${c.cacheDir}/${IMG_NAME}.part`, new Uint8Array(IDX_GZ.length + 10));
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.deepEqual(c.server.requests().map((r) => [r.range, r.status]), [
    [`bytes=${IDX_GZ.length + 10}-`, 416],
    [null, 200],
  ]);
  assert.ok(c.events.some((m) => m.includes("range not satisfiable")), c.events.join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

t("a leftover .part with wrong bytes is resumed, fails its check, and is fetched afresh", async (c) => {
  const url = c.server.route("/img.gz", IDX_GZ);
  const file = remote(IMG_NAME, [url], IDX_GZ);
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  await Deno.writeFile(`${c.cacheDir}/${IMG_NAME}.part`, new Uint8Array(100).fill(0xee));
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.deepEqual(c.server.requests().map((r) => r.range), ["bytes=100-", null]);
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 7. Stalls

t("a body that stalls is aborted after about the stall timeout, then recovers", async (c) => {
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "stall", after: 4000 }]);
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ);
  const t0 = performance.now();
  await assertFileBytes(await ensureFile(file, c.opts()), CIFAR_TGZ);
  const ms = performance.now() - t0;
  assert.ok(ms >= 250 && ms < 1500, `took ${ms} ms for a 300 ms stall timeout`);
  assert.ok(c.events.some((m) => m.includes("stalled for 300 ms at byte 4000")), c.events.join("\n"));
  assert.deepEqual(c.server.requests().map((r) => r.range), [null, "bytes=4000-"]);
  await assertCacheClean(c.cacheDir, [file]);
});

t("a server that always stalls gives a DatasetError that mentions the stall", async (c) => {
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [], { kind: "stall", after: 1000 });
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ);
  const t0 = performance.now();
  await rejectsDataset(ensureFile(file, c.opts({ attempts: 2 })), /stalled for 300 ms/);
  const ms = performance.now() - t0;
  assert.ok(ms >= 550 && ms < 2500, `two stalled tries took ${ms} ms`);
  assert.equal(c.server.requests().length, 2);
  // The second try resumed the part of the first; both stalled.
  assert.deepEqual(c.server.requests().map((r) => r.range), [null, "bytes=1000-"]);
  await assertCacheClean(c.cacheDir, [file]);
});

t("a server that sends no headers is aborted after the stall timeout", async (c) => {
  const url = c.server.route("/img.gz", IDX_GZ, [{ kind: "stallHeaders" }]);
  const file = remote(IMG_NAME, [url], IDX_GZ);
  const t0 = performance.now();
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  const ms = performance.now() - t0;
  assert.ok(ms >= 250 && ms < 1500, `took ${ms} ms`);
  assert.ok(c.events.some((m) => m.includes("no response within 300 ms")), c.events.join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

t("a slow body that keeps delivering is not mistaken for a stall", async (c) => {
  // 5 chunks 150 ms apart: 600 ms in all, each gap under the 300 ms stall timeout.
  const url = c.server.route("/img.gz", IDX_GZ, [{ kind: "slow", chunks: 5, delayMs: 150 }]);
  const file = remote(IMG_NAME, [url], IDX_GZ);
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.equal(c.server.requests().length, 1);
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 8. Offline

t("offline with nothing cached fails without a request", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  await rejectsDataset(ensureFile(file, c.opts({ offline: true })), /offline/, /not in the cache/);
  assert.equal(c.server.requests().length, 0);
  await assertCacheClean(c.cacheDir, [file]);
});

t("offline with a valid cached file returns it without a request", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  await Deno.writeFile(`${c.cacheDir}/${IMG_NAME}`, IDX_GZ);
  assert.equal(await ensureFile(file, c.opts({ offline: true })), `${c.cacheDir}/${IMG_NAME}`);
  assert.equal(c.server.requests().length, 0);
  await assertCacheClean(c.cacheDir, [file]);
});

t("offline with a corrupt cached file fails its check, without a request", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  const path = `${c.cacheDir}/${IMG_NAME}`;
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  const corrupt = IDX_GZ.slice();
  corrupt[100] ^= 0xff;
  await Deno.writeFile(path, corrupt);
  await rejectsDataset(ensureFile(file, c.opts({ offline: true })), /fails its sha256 check/);
  // Offline mode leaves the (test-planted) corrupt file alone but keeps refusing it.
  await rejectsDataset(ensureFile(file, c.opts({ offline: true })), /fails its sha256 check/);
  assert.equal(c.server.requests().length, 0);
  await Deno.remove(path);
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 9. Corrupt cache, online

t("a corrupt cached file is replaced by a fresh verified download", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  await Deno.writeFile(`${c.cacheDir}/${IMG_NAME}`, IDX_GZ.subarray(0, 50));
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.equal(c.server.requests().length, 1);
  assert.equal(c.server.requests()[0].range, null, "the corrupt file is not resumed");
  assert.ok(c.events.some((m) => m.includes("cached file fails its checksum")), c.events.join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 10. Locks

t("two concurrent calls share one download through the lock", async (c) => {
  // A slow body (about 300 ms) keeps the first call busy while the second looks.
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "slow", chunks: 4, delayMs: 100 }]);
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ);
  const e1: string[] = [], e2: string[] = [];
  const [p1, p2] = await Promise.all([
    ensureFile(file, c.opts({ onEvent: (m) => e1.push(m) })),
    ensureFile(file, c.opts({ onEvent: (m) => e2.push(m) })),
  ]);
  assert.equal(p1, `${c.cacheDir}/${CIFAR_NAME}`);
  assert.equal(p2, p1);
  await assertFileBytes(p1, CIFAR_TGZ);
  assert.equal(c.server.requests().length, 1, "the body was served once");
  assert.equal(c.server.bytesSent("/c.tgz"), CIFAR_TGZ.length);
  assert.ok([...e1, ...e2].some((m) => m.includes("waiting for another process")), [...e1, ...e2].join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

// Regression: the check-and-delete of a corrupt cached file once ran outside the lock, so a concurrent call
// could see the file vanish and fail with NotFound.
t("two concurrent calls over a corrupt cached file both end verified", async (c) => {
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "slow", chunks: 4, delayMs: 50 }]);
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ);
  await Deno.mkdir(`${c.cacheDir}/cifar10`, { recursive: true });
  await Deno.writeFile(`${c.cacheDir}/${CIFAR_NAME}`, new Uint8Array(10));
  const results = await Promise.allSettled([ensureFile(file, c.opts()), ensureFile(file, c.opts())]);
  assert.deepEqual(
    results.map((r) => r.status === "fulfilled" ? r.value : String(r.reason)),
    [`${c.cacheDir}/${CIFAR_NAME}`, `${c.cacheDir}/${CIFAR_NAME}`],
  );
  assert.equal(c.server.requests().length, 1);
  await assertCacheClean(c.cacheDir, [file]);
});

t("a stale lock is removed and the download proceeds", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  const lock = `${c.cacheDir}/${IMG_NAME}.lock`;
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  await Deno.writeFile(lock, new TextEncoder().encode("12345\n"));
  const past = new Date(Date.now() - 3_600_000);
  await Deno.utime(lock, past, past);
  await assertFileBytes(await ensureFile(file, c.opts({ staleLockMs: 1000 })), IDX_GZ);
  assert.ok(c.events.some((m) => m.includes("removing a stale lock")), c.events.join("\n"));
  assert.equal(c.server.requests().length, 1);
  await assertCacheClean(c.cacheDir, [file]);
});

t("a live lock held past lockWaitMs gives a DatasetError and no request", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  const lock = `${c.cacheDir}/${IMG_NAME}.lock`;
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  // The "other process" holds the OS lock on its lock file, as a live downloader does.
  const holder = await Deno.open(lock, { write: true, createNew: true });
  await holder.lock(true);
  await holder.write(new TextEncoder().encode("12345\n"));
  try {
    await rejectsDataset(
      ensureFile(file, c.opts({ lockWaitMs: 300 })),
      /another process holds this download/,
    );
    assert.ok(c.events.some((m) => m.includes("waiting for another process (12345)")), c.events.join("\n"));
    assert.equal(c.server.requests().length, 0);
    // The lock belongs to the "other process": it must still be there.
    await Deno.lstat(lock);
  } finally {
    await Deno.remove(lock);
    holder.close();
  }
  await assertCacheClean(c.cacheDir, [file]);
});

// Regression: a lock left by a process that had ended (no OS lock on it, a fresh mtime) was waited on for
// the whole stale period (about 63 s) with "waiting for another process".
t("a lock whose process has ended is taken over at once", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  const lock = `${c.cacheDir}/${IMG_NAME}.lock`;
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  // A downloader that was killed: its lock file holds its PID, and the OS released its lock.
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const f = await Deno.open(${JSON.stringify(lock)}, { write: true, createNew: true });` +
      `await f.lock(true); await f.write(new TextEncoder().encode(Deno.pid + "\\n")); Deno.exit(9);`,
    ],
  }).output();
  assert.equal(child.code, 9);
  const pid = (await Deno.readTextFile(lock)).trim();
  const t0 = performance.now();
  // lockWaitMs 3 s and the default 60 s stale period: waiting on the lock would fail this test.
  await assertFileBytes(await ensureFile(file, c.opts({ lockWaitMs: 3_000 })), IDX_GZ);
  assert.ok(performance.now() - t0 < 2_000, `took ${performance.now() - t0} ms`);
  assert.ok(
    c.events.some((m) => m.includes(`removing a stale lock (its process ${pid} has ended)`)),
    c.events.join("\n"),
  );
  assert.ok(!c.events.some((m) => m.includes("waiting")), c.events.join("\n"));
  assert.equal(c.server.requests().length, 1);
  await assertCacheClean(c.cacheDir, [file]);
});

// Regression: a .part holding every byte (the run ended before the rename) was fetched again.
t("a complete .part whose checksum matches is used without a request", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  await Deno.mkdir(`${c.cacheDir}/mnist`, { recursive: true });
  await Deno.writeFile(`${c.cacheDir}/${IMG_NAME}.part`, IDX_GZ);
  await assertFileBytes(await ensureFile(file, c.opts()), IDX_GZ);
  assert.equal(c.server.requests().length, 0);
  assert.ok(c.events.some((m) => m.includes("using the complete")), c.events.join("\n"));
  await assertCacheClean(c.cacheDir, [file]);
});

// ---------------------------------------------------------------------------
// 11. End to end: download, then decode

t("a downloaded IDX pair decodes and checks end to end", async (c) => {
  const img = remote(IMG_NAME, [c.server.route("/img.gz", IDX_GZ)], IDX_GZ);
  const lbl = remote(LBL_NAME, [c.server.route("/lbl.gz", LABELS_GZ)], LABELS_GZ);
  const images = await decodeIdx(await Deno.readFile(await ensureFile(img, c.opts())), IMG_NAME, { dims: 3 });
  const labels = await decodeIdx(await Deno.readFile(await ensureFile(lbl, c.opts())), LBL_NAME, { dims: 1 });
  assert.deepEqual(images.dims, [N_IMAGES, 28, 28]);
  assert.deepEqual([...images.data], [...IDX_RAW.subarray(16)]);
  assert.deepEqual([...labels.data], [3, 1, 4, 1]);
  assert.equal(
    checkImagesAndLabels(images, labels, IMG_NAME, { height: 28, width: 28, classes: 10 }),
    N_IMAGES,
  );
  await assertCacheClean(c.cacheDir, [img, lbl]);
});

t("a downloaded CIFAR archive decodes end to end", async (c) => {
  const file = remote(
    CIFAR_NAME,
    [c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "cut", after: 3000 }])],
    CIFAR_TGZ,
  );
  const { train, test } = await decodeCifar10(
    await Deno.readFile(await ensureFile(file, c.opts())),
    CIFAR_NAME,
  );
  assert.equal(train.count, 10);
  assert.equal(test.count, 2);
  assert.equal(train.x.length, 10 * 3072);
  await assertCacheClean(c.cacheDir, [file]);
});

t("a downloaded tar.gz with a ../evil entry is refused by the decoder", async (c) => {
  const evil = await gzip(makeTar([{ name: "../evil", data: new TextEncoder().encode("pwned") }]));
  const file = remote(CIFAR_NAME, [c.server.route("/evil.tgz", evil)], evil);
  const bytes = await Deno.readFile(await ensureFile(file, c.opts()));
  await rejectsDataset(decodeCifar10(bytes, CIFAR_NAME), /tar entry "\.\.\/evil"/, /refusing the archive/);
  const tar = await gunzip(bytes, CIFAR_NAME);
  assert.throws(
    () => tarEntries(tar, CIFAR_NAME),
    (e: unknown) =>
      e instanceof DatasetError && e.message.startsWith(CIFAR_NAME) && e.message.includes("../evil"),
  );
  await assertCacheClean(c.cacheDir, [file]);
});

t("a downloaded 'gzip' that is not gzip is refused by decodeIdx", async (c) => {
  const file = remote(IMG_NAME, [c.server.route("/img.gz", IDX_RAW)], IDX_RAW);
  const bytes = await Deno.readFile(await ensureFile(file, c.opts()));
  await rejectsDataset(
    decodeIdx(bytes, IMG_NAME, { dims: 3 }),
    /^mnist\/train-images-idx3-ubyte\.gz: /,
    /gzip magic/,
  );
  await assertCacheClean(c.cacheDir, [file]);
});

t("a downloaded IDX with the wrong image width gives an error naming the file", async (c) => {
  const narrow = await gzip(makeIdx([N_IMAGES, 28, 27], seededBytes(N_IMAGES * 28 * 27, 3, 3)));
  const img = remote(IMG_NAME, [c.server.route("/img.gz", narrow)], narrow);
  const lbl = remote(LBL_NAME, [c.server.route("/lbl.gz", LABELS_GZ)], LABELS_GZ);
  const images = await decodeIdx(await Deno.readFile(await ensureFile(img, c.opts())), IMG_NAME, { dims: 3 });
  const labels = await decodeIdx(await Deno.readFile(await ensureFile(lbl, c.opts())), LBL_NAME, { dims: 1 });
  assert.throws(
    () => checkImagesAndLabels(images, labels, IMG_NAME, { height: 28, width: 28, classes: 10 }),
    (e: unknown) =>
      e instanceof DatasetError && e.message.startsWith(IMG_NAME) && e.message.includes("[N, 28, 28]") &&
      e.message.includes("[4,28,27]"),
  );
  await assertCacheClean(c.cacheDir, [img, lbl]);
});

// ---------------------------------------------------------------------------
// 12. Checksum algorithms

t("an md5 checksum verifies a download (and upper-case hex is accepted)", async (c) => {
  const sum: Checksum = { algorithm: "md5", hex: md5Hex(CIFAR_TGZ).toUpperCase() };
  const url = c.server.route("/c.tgz", CIFAR_TGZ, [{ kind: "cut", after: 2000 }]);
  const file = remote(CIFAR_NAME, [url], CIFAR_TGZ, sum);
  await assertFileBytes(await ensureFile(file, c.opts()), CIFAR_TGZ);
  assert.equal(await ensureFile(file, c.opts({ offline: true })), `${c.cacheDir}/${CIFAR_NAME}`);
  await assertCacheClean(c.cacheDir, [file]);
});

t("an md5 mismatch is reported as such", async (c) => {
  const url = c.server.route("/img.gz", IDX_GZ, [], { kind: "body", bytes: LABELS_GZ });
  const file = remote(IMG_NAME, [url], IDX_GZ, md5(IDX_GZ));
  await rejectsDataset(ensureFile(file, c.opts({ attempts: 1 })), /md5 mismatch/);
  assert.equal(c.server.requests().length, 1);
  await assertCacheClean(c.cacheDir, [file]);
});

t(
  "a sha256 checksum verifies a download; an md5 of the same bytes under the sha256 name does not",
  async (c) => {
    const url = c.server.route("/img.gz", IDX_GZ);
    const good = remote(IMG_NAME, [url], IDX_GZ, sha256(IDX_GZ));
    await assertFileBytes(await ensureFile(good, c.opts()), IDX_GZ);
    const wrongAlgo = remote("other/img.gz", [url], IDX_GZ, { algorithm: "sha256", hex: md5Hex(IDX_GZ) });
    await rejectsDataset(ensureFile(wrongAlgo, c.opts({ attempts: 1 })), /sha256 mismatch/);
    await assertCacheClean(c.cacheDir, [good, wrongAlgo]);
  },
);
