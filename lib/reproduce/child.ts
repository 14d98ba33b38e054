/**
 * Runs f16repro subcommands in fresh processes: the way reproduce isolates
 * cells (a crash or divergence in one never stops the others) and the way the
 * determinism check gets a clean runtime for every re-run.
 *
 * @module
 */

import { downloadHosts } from "../../datasets/sources.ts";
import { LAUNCH_ENV, type RunLaunch } from "../record/run_record.ts";
import { ortLockFlag } from "../../kernels/ort/runtime.ts";

const MAIN = new URL("../../main.ts", import.meta.url);

/**
 * The permissions a child `train` needs, the same as `deno task train` (git only to record whether the
 * checkout has uncommitted changes); with `ffi` (the ort engine loads onnxruntime's native library) those of
 * `deno task train:ort`, and its lockfile (kernels/ort/runtime.ts: onnxruntime-node is pinned there, not in
 * deno.lock, so that other runs never download it).
 */
export function childPermissions(ffi = false): string[] {
  return [
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys",
    "--allow-run=git",
    `--allow-net=${downloadHosts().join(",")}`,
    ...(ffi ? ["--allow-ffi", ortLockFlag()] : []),
  ];
}

/** The command line that runs `f16repro <args>` in a new process (a compiled binary calls itself). */
export function childCommand(args: readonly string[]): { cmd: string; args: string[] } {
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args: [...args] };
  const ffi = args.some((a, i) => (a === "--engine" && args[i + 1] === "ort") || a === "--engine=ort");
  return { cmd: Deno.execPath(), args: ["run", ...childPermissions(ffi), MAIN.href, ...args] };
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
  onLine?: (line: string) => void,
  launch?: RunLaunch,
): Promise<ChildResult> {
  const c = childCommand(args);
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
