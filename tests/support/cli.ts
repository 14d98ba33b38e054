/**
 * Runs `f16repro` as a user does, in a fresh `deno run` process with given
 * permissions, and returns its exit code and output.
 *
 * @module
 */

import { ortLockFlag } from "../../kernels/ort/runtime.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The permissions of `deno task train`, without network access (tests use offline or local data). */
export const TRAIN_PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys"];

/**
 * Runs `f16repro <args>` with `perms`; NO_COLOR is set so output can be matched. With --allow-ffi (the
 * ort engine) the process uses the ort engine's lockfile, as `deno task train:ort` does.
 */
export async function runCli(
  args: readonly string[],
  perms: readonly string[] = TRAIN_PERMS,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, ...(perms.includes("--allow-ffi") ? [ortLockFlag()] : []), MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
