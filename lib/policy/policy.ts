/**
 * Precision policies: which format holds parameters, activations and
 * gradients, optimizer state and batch-norm parameters, where dot products
 * accumulate, how the loss is scaled and how parameter updates round.
 *
 * A policy is written as a named base plus optional overrides,
 * `fp16,bn=fp32`, or as key=value pairs alone,
 * `params=fp32,compute=fp16,accumulate=fp32,loss-scale=dynamic`.
 *
 * @module
 */

import { FORMAT_NAMES, type FormatName } from "../formats/format.ts";

/** Loss scaling: none, a fixed factor, or dynamic (Keras LossScaleOptimizer). */
export type LossScale =
  | { readonly kind: "none" }
  | { readonly kind: "static"; readonly scale: number }
  | {
    readonly kind: "dynamic";
    readonly initial: number;
    readonly growthInterval: number;
    readonly factor: number;
  };

/** A fully resolved precision policy. */
export interface Policy {
  /** Base name the user gave, or "custom". */
  readonly name: string;
  /** Format of trainable parameters (the master copy under mixed precision). */
  readonly params: FormatName;
  /** Format of activations and of every op's output; gradients take their value's format. */
  readonly compute: FormatName;
  /** Format of the running sums inside dot products and reductions. */
  readonly accumulate: FormatName;
  /** Format of optimizer slots; "params" = each parameter's own format (Keras). */
  readonly state: FormatName | "params";
  /** Format of batch-norm gamma/beta and moving statistics; "params" = the params format. */
  readonly bn: FormatName | "params";
  readonly lossScale: LossScale;
  /** Rounding of parameter updates: nearest-even (default) or seeded stochastic. */
  readonly rounding: "nearest" | "stochastic";
}

/** Keras defaults for dynamic loss scaling. */
export const DYNAMIC_LOSS_SCALE: LossScale = {
  kind: "dynamic",
  initial: 2 ** 15,
  growthInterval: 2000,
  factor: 2,
};

const BASE = { state: "params", bn: "params", rounding: "nearest", accumulate: "fp32" } as const;

/**
 * The named policies. The standalone 16-bit ones are Keras's `set_floatx`, as the paper's authors ran it:
 * every tensor in the 16-bit format except batch norm's parameters and moving statistics, which stock Keras
 * `BatchNormalization` keeps in fp32 even then. `fp16,bn=fp16` makes those 16-bit too.
 */
export const NAMED_POLICIES: Readonly<Record<string, Policy>> = {
  fp32: { ...BASE, name: "fp32", params: "fp32", compute: "fp32", lossScale: { kind: "none" } },
  fp16: { ...BASE, name: "fp16", params: "fp16", compute: "fp16", bn: "fp32", lossScale: { kind: "none" } },
  mixed: { ...BASE, name: "mixed", params: "fp32", compute: "fp16", lossScale: DYNAMIC_LOSS_SCALE },
  bf16: { ...BASE, name: "bf16", params: "bf16", compute: "bf16", bn: "fp32", lossScale: { kind: "none" } },
  "mixed-bf16": { ...BASE, name: "mixed-bf16", params: "fp32", compute: "bf16", lossScale: { kind: "none" } },
};

const KEYS = ["params", "compute", "accumulate", "state", "bn", "loss-scale", "rounding"] as const;

/** A policy string that cannot be parsed; the message names the bad part. */
export class PolicyError extends Error {}

function format(key: string, v: string, allowParams: boolean): FormatName | "params" {
  if ((FORMAT_NAMES as readonly string[]).includes(v)) return v as FormatName;
  if (allowParams && v === "params") return "params";
  const ok = [...FORMAT_NAMES, ...(allowParams ? ["params"] : [])].join(", ");
  throw new PolicyError(`bad value "${v}" for ${key} (expected ${ok})`);
}

function lossScale(v: string): LossScale {
  if (v === "none") return { kind: "none" };
  if (v === "dynamic") return DYNAMIC_LOSS_SCALE;
  const m = /^(?:static:)?(\d+(?:\.\d*)?(?:e[+-]?\d+)?)$/i.exec(v);
  const s = m ? Number(m[1]) : NaN;
  if (!(s > 0 && Number.isFinite(s))) {
    throw new PolicyError(`bad value "${v}" for loss-scale (expected none, dynamic or static:N with N > 0)`);
  }
  return { kind: "static", scale: s };
}

/** Parses a policy name or string; throws {@linkcode PolicyError} naming the bad part. */
export function parsePolicy(text: string): Policy {
  const parts = text.split(",");
  if (parts.some((p) => p === "")) throw new PolicyError(`empty part in "${text}"`);
  // A policy string is part of the run's id: " fp16" must not be a second name for fp16.
  if (/\s/.test(text)) throw new PolicyError(`white space in "${text}"`);
  let p: { -readonly [K in keyof Policy]: Policy[K] };
  let rest = parts;
  if (!parts[0].includes("=")) {
    const base = Object.hasOwn(NAMED_POLICIES, parts[0]) ? NAMED_POLICIES[parts[0]] : undefined;
    if (!base) {
      throw new PolicyError(
        `unknown policy "${parts[0]}" (expected ${
          Object.keys(NAMED_POLICIES).join(", ")
        }, or key=value pairs)`,
      );
    }
    p = { ...base };
    rest = parts.slice(1);
  } else {
    p = { ...NAMED_POLICIES.fp32, name: "custom" };
  }
  const seen = new Set<string>();
  let computeSet = false;
  for (const part of rest) {
    const eq = part.indexOf("=");
    if (eq < 0) throw new PolicyError(`"${part}" is not key=value`);
    const key = part.slice(0, eq), v = part.slice(eq + 1);
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new PolicyError(`unknown key "${key}" (expected ${KEYS.join(", ")})`);
    }
    if (seen.has(key)) throw new PolicyError(`key "${key}" given twice`);
    seen.add(key);
    switch (key) {
      case "params":
        p.params = format(key, v, false) as FormatName;
        break;
      case "compute":
        p.compute = format(key, v, false) as FormatName;
        computeSet = true;
        break;
      case "accumulate":
        p.accumulate = format(key, v, false) as FormatName;
        break;
      case "state":
        p.state = format(key, v, true);
        break;
      case "bn":
        p.bn = format(key, v, true);
        break;
      case "loss-scale":
        p.lossScale = lossScale(v);
        break;
      case "rounding":
        if (v !== "nearest" && v !== "stochastic") {
          throw new PolicyError(`bad value "${v}" for rounding (expected nearest, stochastic)`);
        }
        p.rounding = v;
        break;
    }
  }
  // key=value alone: compute defaults to the params format.
  if (p.name === "custom" && !computeSet) p.compute = p.params;
  if (rest.length > 0 && p.name !== "custom") p.name = parts.join(",");
  return p;
}

/** The canonical key=value form of a policy (stable, used in config ids). */
export function policyString(p: Policy): string {
  const ls = p.lossScale.kind === "static" ? `static:${p.lossScale.scale}` : p.lossScale.kind;
  return `params=${p.params},compute=${p.compute},accumulate=${p.accumulate},state=${p.state},bn=${p.bn},` +
    `loss-scale=${ls},rounding=${p.rounding}`;
}

/** The format batch-norm parameters and statistics use under `p`. */
export function bnFormat(p: Policy): FormatName {
  return p.bn === "params" ? p.params : p.bn;
}
