/**
 * The command line of `deno task bench:zoo` (tests/bench/zoo.ts), parsed by the CLI's strict parser
 * (lib/cli/parse.ts) so that a bad flag is one line and exit code 2, as in every command.
 *
 * @module
 */

import { engineSpec } from "../../kernels/registry.ts";
import { integer, list, parseFlags, positiveInt } from "../../lib/cli/parse.ts";
import { UsageError } from "../../lib/errors.ts";
import { MODELS } from "../../lib/model/zoo.ts";
import { parsePolicy } from "../../lib/policy/policy.ts";
import { PAPER_MODELS } from "../../lib/reproduce/profiles.ts";

/** Table 5's networks that lib/model defines, in the paper's order: the default of --models. */
export const ZOO_MODELS: readonly string[] = PAPER_MODELS.filter((m) => Object.hasOwn(MODELS, m));

/** What one run of the benchmark measures. */
export interface ZooOptions {
  readonly models: readonly string[];
  readonly engines: readonly string[];
  readonly policies: readonly string[];
  readonly batches: readonly number[];
  readonly threads: readonly number[];
  /** Interleaved rounds: each configuration and the peer once per round. */
  readonly rounds: number;
  /** Timed steps per configuration and round, after `warmup` untimed ones. */
  readonly steps: number;
  readonly warmup: number;
  /** Time PyTorch beside our engines. */
  readonly peer: boolean;
  /** Leave the update checks out of our step (the work of PyTorch's loop). */
  readonly bare: boolean;
  /** Where to write the results as JSON, if anywhere. */
  readonly json?: string;
}

/** `--help`. */
export const ZOO_HELP = `deno task bench:zoo [flags]

One training step (forward, loss, backward, the paper profile's SGD, the update checks) of each Table 5
network on random 3x32x32 images, per engine, policy, batch and thread count, each configuration in a
fresh process, beside a PyTorch peer (fp32) running the same architectures in interleaved rounds. Prints
Markdown tables: samples/s, ms/step (median), the ratio to PyTorch, peak resident memory, GFLOP/s against
the measured 512^3 gemm peak, the wasm gemm's 2-vs-1-thread speed-up and fp16/mixed step time against fp32.

  --models LIST      networks (default: ${ZOO_MODELS.join(",")})
  --engines LIST     engines (default: ort,wasm)
  --policies LIST    precision policies (default: fp32,fp16,mixed)
  --batch LIST       batch sizes (default: 128,256)
  --threads LIST     thread counts (default: 1,2)
  --rounds N         interleaved rounds (default: 3)
  --steps N          timed steps per configuration and round (default: 3)
  --warmup N         untimed steps before them (default: 1)
  --no-peer          do not run PyTorch
  --no-update-checks time our step without the update checks, as PyTorch's loop runs
  --json PATH        also write every measurement as JSON
  -h, --help         this help

The peer: bash tests/bench/setup_peer.sh (torch from PyPI into a venv), or Debian's python3-torch and
libopenblas0-pthread. Example: deno task bench:zoo --models resnet32 --batch 128 --threads 2 --rounds 5`;

const FLAGS = {
  models: { type: "string" },
  engines: { type: "string" },
  policies: { type: "string" },
  batch: { type: "string" },
  threads: { type: "string" },
  rounds: { type: "string" },
  steps: { type: "string" },
  warmup: { type: "string" },
  "no-peer": { type: "boolean", default: false },
  "no-update-checks": { type: "boolean", default: false },
  json: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Checks that `name` is a Table 5 network that lib/model defines; the message lists them. */
function zooModel(name: string): string {
  if (!ZOO_MODELS.includes(name)) {
    throw new UsageError(`--models has an unknown "${name}": expected one of ${ZOO_MODELS.join(", ")}`);
  }
  return name;
}

/** Parses the benchmark's flags; "help" for --help. Throws a one-line UsageError on a bad flag or value. */
export function parseZooArgs(args: readonly string[]): ZooOptions | "help" {
  const v = parseFlags(args, FLAGS).values;
  if (v.help) return "help";
  const engine = (s: string) => {
    try {
      return engineSpec(s), s;
    } catch (e) {
      throw new UsageError(`--engines: ${(e as Error).message}`);
    }
  };
  const policy = (s: string) => {
    try {
      return parsePolicy(s), s;
    } catch (e) {
      throw new UsageError(`--policies: ${(e as Error).message.split("\n")[0]}`);
    }
  };
  return {
    models: v.models ? list("models", v.models, zooModel, true) : ZOO_MODELS,
    engines: v.engines ? list("engines", v.engines, engine, true) : ["ort", "wasm"],
    policies: v.policies ? list("policies", v.policies, policy, true) : ["fp32", "fp16", "mixed"],
    batches: v.batch ? list("batch", v.batch, (s) => positiveInt("batch", s), true) : [128, 256],
    threads: v.threads ? list("threads", v.threads, (s) => positiveInt("threads", s), true) : [1, 2],
    rounds: v.rounds ? positiveInt("rounds", v.rounds) : 3,
    steps: v.steps ? positiveInt("steps", v.steps) : 3,
    warmup: v.warmup ? integer("warmup", v.warmup, 0) : 1,
    peer: !v["no-peer"],
    bare: v["no-update-checks"],
    json: v.json,
  };
}
