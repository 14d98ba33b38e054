/**
 * Runs f16repro subcommands in fresh processes: the way reproduce isolates
 * cells (a crash or divergence in one never stops the others) and the way the
 * determinism check gets a clean runtime for every re-run.
 *
 * @module
 */

import { downloadHosts } from "../../datasets/sources.ts";
import { LAUNCH_ENV } from "../record/run_record.ts";
import { DEFAULT_ENGINE, engineSpec } from "../../kernels/registry.ts";
import type { RunLaunch } from "../record/schema.ts";

const MAIN = new URL("../../main.ts", import.meta.url);

/**
 * The Deno flags a child `train` on `engine` needs: those of `deno task train` (git only to record whether
 * the checkout has uncommitted changes) and the engine's own (its spec's denoFlags: ort's --allow-ffi and
 * lockfile).
 */
export function childPermissions(engine: string = DEFAULT_ENGINE): string[] {
  return [
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys",
    "--allow-run=git",
    `--allow-net=${downloadHosts().join(",")}`,
    ...engineSpec(engine).spec.denoFlags,
  ];
}

/**
 * The command line that runs `f16repro <args>` in a new process for a run on `engine` (a compiled binary
 * calls itself and has its permissions baked in).
 */
export function childCommand(args: readonly string[], engine?: string): { cmd: string; args: string[] } {
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args: [...args] };
  return { cmd: Deno.execPath(), args: ["run", ...childPermissions(engine), MAIN.href, ...args] };
}

/** Result of a child run. */
export interface ChildResult {
  readonly code: number;
  readonly stdout: string;
  /** The last lines of stderr (for failure reports). */
  readonly stderrTail: string;
}

/** Runs `f16repro <args>`, passing each stderr line to `onLine` as it arrives. */
export async function runChild(
  args: readonly string[],
  o: { engine?: string; onLine?: (line: string) => void; launch?: RunLaunch } = {},
): Promise<ChildResult> {
  const { onLine, launch } = o;
  const c = childCommand(args, o.engine);
  const env = launch ? { [LAUNCH_ENV]: JSON.stringify(launch) } : undefined;
  const proc = new Deno.Command(c.cmd, { args: c.args, env, stdout: "piped", stderr: "piped", stdin: "null" })
    .spawn();
  const tail: string[] = [];
  const readErr = (async () => {
    let buf = "";
    for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const l of lines) {
        tail.push(l);
        if (tail.length > 20) tail.shift();
        onLine?.(l);
      }
    }
    if (buf) tail.push(buf), onLine?.(buf);
  })();
  const stdout = new Response(proc.stdout).text();
  const [status, out] = await Promise.all([proc.status, stdout, readErr]).then(([s, o]) => [s, o] as const);
  return { code: status.code, stdout: out, stderrTail: tail.join("\n") };
}
