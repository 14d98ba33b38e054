/**
 * The CLI dispatcher: `f16repro <command> [options]`.
 *
 * @module
 */

import { dataCommand } from "./data.ts";
import { exportCommand } from "./export.ts";
import { reportCommand, reproduceCommand, verifyCommand } from "./reproduce.ts";
import { toleranceCommand } from "./tolerance.ts";
import { trainCommand } from "./train.ts";
import { UsageError } from "../errors.ts";
import { userMessage } from "./usage_error.ts";

/** Version of f16repro. */
export const VERSION = "0.1.0";

const COMMANDS: Record<string, { summary: string; run: (args: string[]) => Promise<number> }> = {
  reproduce: {
    summary: "run a profile's matrix, check determinism, write the report (the main job)",
    run: reproduceCommand,
  },
  train: { summary: "train one network in one precision and write its run record", run: trainCommand },
  data: { summary: "list, fetch, verify and locate datasets", run: dataCommand },
  verify: { summary: "re-run recorded cells in fresh processes and compare hashes", run: verifyCommand },
  report: { summary: "write the HTML/SVG/CSV report from a folder of run records", run: reportCommand },
  tolerance: {
    summary: "measure the paper's error/tolerance lemma on a trained fp32 model",
    run: toleranceCommand,
  },
  export: { summary: "write a run's trained network as an inference ONNX model", run: exportCommand },
};

/** Top-level help text. */
export const HELP = `f16repro ${VERSION}: can you train in plain 16-bit floating point?

Usage: f16repro <command> [options]

Commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`).join("\n")}

Run "f16repro <command> --help" for a command's options.
Options: -h, --help (this help), --version.`;

/**
 * Runs the CLI with `args`; returns the exit code: 2 for a usage error, 1 for another user's situation (one
 * line each, see {@linkcode userMessage}). An internal bug is rethrown with its stack trace.
 */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
      console.log(HELP);
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === "--version") {
      console.log(`f16repro ${VERSION}`);
      return 0;
    }
    const c = COMMANDS[cmd];
    if (!c) {
      throw new UsageError(`Unknown command "${cmd}": expected one of ${Object.keys(COMMANDS).join(", ")}`);
    }
    return await c.run(rest);
  } catch (e) {
    const user = userMessage(e);
    if (user) {
      console.error(`f16repro: ${user.message}`);
      return user.exitCode;
    }
    // Anything else is a bug in f16repro: its stack trace is what a report of it needs.
    console.error("f16repro: internal error (a bug; please report it with the lines below)");
    throw e;
  }
}
