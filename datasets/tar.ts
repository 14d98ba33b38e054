/**
 * Reading of a tar archive held in memory (POSIX ustar, with the pax and GNU
 * long-name extensions), for datasets shipped as `.tar.gz`.
 *
 * Only regular files come back; nothing is ever written to disk. Because
 * the archive is untrusted input, the reader is strict: every header's
 * checksum is verified, links and special files are refused rather than
 * followed, names that could escape a folder if ever extracted (absolute
 * paths, `..` components, drive letters, backslashes, NUL) are refused, and
 * a header or file running past the end of the data is reported as
 * truncation.
 *
 * @module
 */

import { DatasetError } from "./gzip.ts";

/** One regular file of an archive. `data` is a view into the archive's bytes, not a copy. */
export interface TarEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

const BLOCK = 512;
const decoder = new TextDecoder();

/** A NUL-terminated string field. */
function field(h: Uint8Array, at: number, len: number): string {
  const f = h.subarray(at, at + len);
  const end = f.indexOf(0);
  return decoder.decode(end < 0 ? f : f.subarray(0, end));
}

/** An octal number field (leading spaces, ending at NUL or space), or GNU base-256 when the top bit is set. */
function number(h: Uint8Array, at: number, len: number): number {
  const f = h.subarray(at, at + len);
  let n = 0, i = 0, digits = 0;
  if (f[0] & 0x80) {
    for (n = f[0] & 0x7f, i = 1; i < len; i++) n = n * 256 + f[i];
    return n;
  }
  while (i < len && f[i] === 0x20) i++;
  for (; i < len && f[i] >= 0x30 && f[i] <= 0x37; i++, digits++) n = n * 8 + f[i] - 0x30;
  for (; i < len; i++) if (f[i] !== 0 && f[i] !== 0x20) return NaN;
  return digits > 0 ? n : NaN;
}

/** Refuses a name that could escape the extraction folder or is not portable. */
function checkName(name: string, file: string): void {
  const bad = name === ""
    ? "is empty"
    : name.startsWith("/")
    ? "is an absolute path"
    : /^[A-Za-z]:/.test(name)
    ? "starts with a drive letter"
    : name.includes("\\")
    ? "contains a backslash"
    : name.includes("\0")
    ? "contains a NUL byte"
    : name.split("/").includes("..")
    ? "contains a '..' component"
    : "";
  if (bad) throw new DatasetError(`${file}: tar entry "${name}" ${bad}; refusing the archive`);
}

/** The path and size overrides of a pax extended header. */
function paxRecords(data: Uint8Array, file: string): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = space < 0 ? NaN : Number(decoder.decode(data.subarray(at, space)));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length) {
      throw new DatasetError(`${file}: malformed pax extended header record at byte ${at}`);
    }
    const rec = decoder.decode(data.subarray(space + 1, at + len - 1));
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at += len;
  }
  return out;
}

/**
 * Lists the regular files of a tar archive held in memory, in archive order.
 * Directories and metadata entries (pax headers, GNU long names) are not
 * listed; the archive ends at a zero block or at the end of the data.
 * Leading `./` components are dropped from names (`tar -C dir .` writes them).
 *
 * @param tar The uncompressed archive.
 * @param file The archive's name, used in error messages.
 * @returns The regular files, each with its full name and contents.
 * @throws {DatasetError} On a bad header checksum, a truncated header or
 * file, a link or special file, or an unsafe name (each naming the entry).
 */
export function tarEntries(tar: Uint8Array, file: string): TarEntry[] {
  const out: TarEntry[] = [];
  let at = 0;
  let longName: string | undefined, pax = new Map<string, string>();
  while (at < tar.length) {
    if (at + BLOCK > tar.length) {
      throw new DatasetError(`${file}: truncated tar header at byte ${at} (${tar.length - at} of 512 bytes)`);
    }
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    // The checksum counts its own field as spaces; some old writers summed signed bytes.
    let sum = 0, signed = 0;
    for (let i = 0; i < BLOCK; i++) {
      const b = i >= 148 && i < 156 ? 0x20 : h[i];
      sum += b;
      signed += b < 128 ? b : b - 256;
    }
    const stored = number(h, 148, 8);
    if (stored !== sum && stored !== signed) {
      throw new DatasetError(
        `${file}: bad tar header checksum at byte ${at} (stored ${stored}, computed ${sum}); ` +
          "the archive is corrupt or not a tar file",
      );
    }
    // POSIX "ustar\0" has a name prefix at 345; old GNU "ustar  " keeps other fields there.
    const prefix = decoder.decode(h.subarray(257, 263)) === "ustar\0" ? field(h, 345, 155) : "";
    let name = pax.get("path") ?? longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const size = pax.has("size") ? Number(pax.get("size")) : number(h, 124, 12);
    const type = String.fromCharCode(h[156]);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new DatasetError(`${file}: tar entry "${name}" has an invalid size field`);
    }
    const start = at + BLOCK;
    if (start + size > tar.length) {
      throw new DatasetError(
        `${file}: tar entry "${name}" is truncated (${size} bytes declared, ${tar.length - start} present)`,
      );
    }
    const data = tar.subarray(start, start + size);
    at = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      if (type === "x") pax = paxRecords(data, file);
      if (type === "L") longName = field(data, 0, data.length);
      continue;
    }
    longName = undefined;
    pax = new Map();
    if (name.startsWith("./")) name = name.replace(/^(\.\/)+/, "") || ".";
    if (name === "." && type === "5") continue;
    checkName(name, file);
    if (type === "5") continue;
    if (type !== "0" && type !== "\0" && type !== "7") {
      const what = type === "1" ? "a hard link" : type === "2" ? "a symbolic link" : `of type '${type}'`;
      throw new DatasetError(`${file}: tar entry "${name}" is ${what}; only regular files are accepted`);
    }
    out.push({ name, data });
  }
  return out;
}
