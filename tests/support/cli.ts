/**
 * Runs `f16repro` as a user does, in a fresh `deno run` process with given
 * permissions, and returns its exit code and output.
 *
 * @module
 */

import { ORT } from "../../kernels/ort/spec.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The permissions of `deno task train`, without network access (tests use offline or local data). */
export const TRAIN_PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-sys"];

/**
 * The command that runs `f16repro <args>` with `perms`; NO_COLOR is set so output can be matched. `env` adds
 * variables; one set to undefined is removed from the child's environment (HOME unset, for instance). With
 * --allow-ffi (the ort engine) the process uses the ort engine's lockfile, as `deno task train:ort` does.
 */
export function cliCommand(
  args: readonly string[],
  perms: readonly string[] = TRAIN_PERMS,
  env: Record<string, string | undefined> = {},
): Deno.Command {
  const all: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete all[k];
    else all[k] = v;
  }
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...perms,
      ...(perms.includes("--allow-ffi") ? ORT.denoFlags.filter((f) => !perms.includes(f)) : []),
      MAIN,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    env: all,
    clearEnv: true,
  });
}

/** Runs `f16repro <args>` as {@linkcode cliCommand} makes it and returns its exit code and output. */
export async function runCli(
  args: readonly string[],
  perms: readonly string[] = TRAIN_PERMS,
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await cliCommand(args, perms, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
