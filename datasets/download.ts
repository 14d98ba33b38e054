/**
 * The downloader: fetches one file into the cache so that a corrupt or
 * partial file never reaches training.
 *
 * - Data goes to `<name>.part`; only a verified file is renamed to `<name>`.
 * - An interrupted download resumes with an HTTP Range request when the
 *   server answers 206; otherwise it restarts.
 * - Mirrors are tried in order; each is retried a bounded number of times with
 *   exponential backoff; a connection that stalls longer than the timeout is
 *   aborted.
 * - A lock file (`<name>.lock`, created exclusively, holding its owner's PID
 *   under an OS file lock) keeps two processes from writing the same file; the
 *   second waits and then uses the verified result. The OS releases the file
 *   lock when its owner ends, however it ends, so a lock left by a process
 *   that has ended is taken over at once. Where the file system has no file
 *   locks, a lock its owner has stopped refreshing is stale after a while.
 * - A complete `.part` left by an interrupted run whose checksum matches is
 *   used as it is, without a request.
 * - `offline` never touches the network.
 *
 * @module
 */

import { type Checksum, verifyFile } from "./checksum.ts";
import { DatasetError } from "./gzip.ts";
import { writeAll } from "../lib/io.ts";

/** A file to fetch: its cache name, its mirrors in fallback order, and its checksum. */
export interface RemoteFile {
  /** Path below the cache folder, e.g. `mnist/train-images-idx3-ubyte.gz`. */
  readonly name: string;
  readonly urls: readonly string[];
  readonly checksum: Checksum;
  /** Size in bytes when known (for progress). */
  readonly size?: number;
}

/** Progress of one download, reported every chunk. */
export interface Progress {
  readonly name: string;
  readonly url: string;
  readonly received: number;
  readonly total: number | null;
}

/** Options of {@linkcode ensureFile}. */
export interface DownloadOptions {
  readonly cacheDir: string;
  readonly offline?: boolean;
  /** Abort a connection that delivers nothing for this long (default 30 s). */
  readonly stallTimeoutMs?: number;
  /** Tries per mirror (default 3). */
  readonly attempts?: number;
  /** First backoff delay, doubled per retry (default 1 s). */
  readonly backoffMs?: number;
  /** How long to wait for another process's lock before giving up (default 30 min). */
  readonly lockWaitMs?: number;
  /** A lock its holder has not refreshed for this long is stale (default 60 s; holders refresh every 5 s). */
  readonly staleLockMs?: number;
  readonly onProgress?: (p: Progress) => void;
  /** One line per notable event (retry, fallback to the next mirror, resume). */
  readonly onEvent?: (message: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Why one try failed, and whether trying the same mirror again can help. */
class TryError extends Error {
  constructor(message: string, readonly retry: boolean) {
    super(message);
  }
}

/**
 * Makes sure `<cacheDir>/<file.name>` exists and has the expected checksum,
 * downloading it if needed. Returns its path. Throws a {@linkcode DatasetError}
 * naming every mirror's failure when no mirror delivers a verified file.
 */
export async function ensureFile(file: RemoteFile, o: DownloadOptions): Promise<string> {
  const path = `${o.cacheDir}/${file.name}`;
  // Another process may replace or delete the file at any moment: a vanished file is just "not cached".
  const valid = () =>
    verifyFile(path, file.checksum).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    });
  if (await valid()) return path;
  if (o.offline) {
    throw new DatasetError(
      (await exists(path))
        ? `${file.name}: the cached file fails its ${file.checksum.algorithm} check (and --offline forbids downloading)`
        : `${file.name}: not in the cache (${path}) and --offline forbids downloading`,
    );
  }
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const { path: lock, file: held } = await acquireLock(`${path}.lock`, o);
  const refresh = setInterval(() => Deno.utime(lock, new Date(), new Date()).catch(() => {}), 5000);
  try {
    // Under the lock: another process may have finished meanwhile; a corrupt file is removed only here.
    if (await valid()) return path;
    if (await exists(path)) {
      o.onEvent?.(`${file.name}: cached file fails its checksum; downloading it again`);
      await Deno.remove(path);
    }
    return await download(file, path, o);
  } finally {
    clearInterval(refresh);
    // Removed before the OS lock is released: a waiter that gets the OS lock then finds another file there.
    await Deno.remove(lock).catch(() => {});
    held.close();
  }
}

async function download(file: RemoteFile, path: string, o: DownloadOptions): Promise<string> {
  const part = `${path}.part`;
  // An earlier run may have received every byte and stopped before the rename.
  if (await verifyFile(part, file.checksum).catch(() => false)) {
    o.onEvent?.(`${file.name}: using the complete ${part} of an earlier download`);
    await Deno.rename(part, path);
    return path;
  }
  const failures: string[] = [];
  for (const url of file.urls) {
    const attempts = o.attempts ?? 3;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await fetchInto(url, part, file, o);
        if (!(await verifyFile(part, file.checksum))) {
          await Deno.remove(part);
          throw new TryError(`${file.checksum.algorithm} mismatch`, true);
        }
        await Deno.rename(part, path);
        return path;
      } catch (e) {
        if (!(e instanceof TryError)) throw e;
        const last = attempt === attempts || !e.retry;
        o.onEvent?.(`${file.name}: ${url}: ${e.message}${last ? "" : `; retrying (${attempt}/${attempts})`}`);
        if (last) {
          failures.push(`${url}: ${e.message}`);
          break;
        }
        await sleep((o.backoffMs ?? 1000) * 2 ** (attempt - 1));
      }
    }
    // A partial file from one mirror is not resumed from another.
    await Deno.remove(part).catch(() => {});
  }
  throw new DatasetError(`${file.name}: every source failed:\n  ${failures.join("\n  ")}`);
}

/** One HTTP try: appends to `part` when the server honours a Range request, else rewrites it. */
async function fetchInto(url: string, part: string, file: RemoteFile, o: DownloadOptions): Promise<void> {
  const have = (await exists(part)) ? (await Deno.stat(part)).size : 0;
  const ctrl = new AbortController();
  const stallMs = o.stallTimeoutMs ?? 30_000;
  let timer = setTimeout(() => ctrl.abort(), stallMs);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(), stallMs);
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: ctrl.signal, headers: have > 0 ? { range: `bytes=${have}-` } : {} });
    } catch (e) {
      throw new TryError(
        ctrl.signal.aborted ? `no response within ${stallMs} ms` : `${(e as Error).message}`,
        true,
      );
    }
    if (res.status === 416) { // our partial file is complete or longer than the resource: start over
      await res.body?.cancel();
      await Deno.remove(part);
      throw new TryError("range not satisfiable; restarting", true);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new TryError(`HTTP ${res.status}`, res.status >= 500 || res.status === 429);
    }
    const resumed = res.status === 206 && have > 0;
    if (have > 0) {
      o.onEvent?.(
        `${file.name}: ${resumed ? `resuming at byte ${have}` : "server ignored the range; restarting"}`,
      );
    }
    const length = Number(res.headers.get("content-length") ?? NaN);
    const total = Number.isFinite(length) ? length + (resumed ? have : 0) : file.size ?? null;
    const out = await Deno.open(part, { write: true, create: true, append: resumed, truncate: !resumed });
    let received = resumed ? have : 0;
    try {
      for await (const chunk of res.body!) {
        touch();
        await writeAll(out, chunk);
        received += chunk.length;
        o.onProgress?.({ name: file.name, url, received, total });
      }
    } catch (e) {
      throw new TryError(
        ctrl.signal.aborted
          ? `stalled for ${stallMs} ms at byte ${received}`
          : `connection broke at byte ${received}: ${(e as Error).message}`,
        true,
      );
    } finally {
      out.close();
    }
    if (total !== null && received !== total) {
      throw new TryError(`truncated: ${received} of ${total} bytes`, true);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A lock held by this process: its path and the open file that holds the OS lock on it. */
interface HeldLock {
  readonly path: string;
  readonly file: Deno.FsFile;
}

/**
 * Creates `lockPath` exclusively, takes the OS lock on it, then writes this process's PID into it. Waits
 * while another live process holds it; takes over a lock whose process has ended.
 */
async function acquireLock(lockPath: string, o: DownloadOptions): Promise<HeldLock> {
  const waitMs = o.lockWaitMs ?? 30 * 60_000;
  const start = Date.now();
  let told = false;
  for (;;) {
    let f: Deno.FsFile | undefined;
    try {
      f = await Deno.open(lockPath, { write: true, createNew: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    if (f) {
      try {
        // The PID is written only once the OS lock is held: a lock file with a PID and no OS lock is stale.
        await f.lock(true).catch(() => {});
        await writeAll(f, new TextEncoder().encode(`${Deno.pid}\n`));
        return { path: lockPath, file: f };
      } catch (e) {
        await Deno.remove(lockPath).catch(() => {});
        f.close();
        throw e;
      }
    }
    const owner = await lockOwner(lockPath);
    if (owner.state === "ended") {
      o.onEvent?.(`${lockPath}: removing a stale lock (its process ${owner.pid} has ended)`);
      continue;
    }
    if (owner.state === "unknown" && (await removedAsStale(lockPath, o))) continue;
    if (owner.state === "gone") continue;
    if (Date.now() - start > waitMs) {
      throw new DatasetError(`${lockPath}: another process holds this download`);
    }
    if (!told) {
      const who = owner.state === "alive" ? ` (${owner.pid})` : "";
      o.onEvent?.(`${lockPath}: waiting for another process${who} to finish this download`), (told = true);
    }
    await sleep(200);
  }
}

/** What is known of a lock file's owner. */
type Owner =
  | { state: "gone" }
  | { state: "alive" | "ended"; pid: string }
  | { state: "unknown" };

/**
 * Looks at the lock file's owner through the OS lock: a lock file whose OS lock is free and that holds a PID
 * belongs to a process that has ended, and is removed here (only if it is still the same file). "unknown":
 * no OS locks on this file system, or an owner between creating the file and writing its PID.
 */
async function lockOwner(lockPath: string): Promise<Owner> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(lockPath, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { state: "gone" };
    throw e;
  }
  try {
    const buf = new Uint8Array(32);
    const n = (await f.read(buf)) ?? 0;
    const pid = /^(\d+)\n/.exec(new TextDecoder().decode(buf.subarray(0, n)))?.[1];
    const free = await f.tryLock(true).catch(() => undefined);
    if (free === false) return { state: "alive", pid: pid ?? "?" };
    if (free === undefined || pid === undefined) return { state: "unknown" };
    // Holding the OS lock now: the file is removed only if the path still names it (not a newer lock).
    const [mine, there] = await Promise.all([f.stat(), Deno.stat(lockPath).catch(() => null)]);
    if (!there || there.ino !== mine.ino || there.dev !== mine.dev) return { state: "gone" };
    await Deno.remove(lockPath).catch(() => {});
    return { state: "ended", pid };
  } finally {
    f.close();
  }
}

/**
 * The fallback where the OS lock tells nothing: a lock its holder has not refreshed for `staleLockMs` is
 * removed. Returns whether it was.
 */
async function removedAsStale(lockPath: string, o: DownloadOptions): Promise<boolean> {
  const staleMs = o.staleLockMs ?? 60_000;
  const age = () => Deno.stat(lockPath).then((s) => Date.now() - (s.mtime?.getTime() ?? 0), () => 0);
  if ((await age()) <= staleMs) return false;
  // Wait longer than a live holder's refresh interval (5 s) and look again: a live holder, or another
  // waiter that has just taken the lock, will have touched it by then and is left alone.
  await sleep(Math.min(staleMs, 6000));
  if ((await age()) <= staleMs) return false;
  o.onEvent?.(`${lockPath}: removing a stale lock`);
  await Deno.remove(lockPath).catch(() => {});
  return true;
}
