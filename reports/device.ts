/**
 * Where a run's times were measured, from its record only: the CPU for an engine that runs on it, and for an
 * engine whose manifest names a GPU adapter (kernels/webgpu/device.ts writes `adapter`, `driver` and
 * `fallbackAdapter`) that adapter, its driver and whether it is a fallback adapter. A fallback adapter
 * (Mesa's lavapipe, for instance) is software on the CPU, so its times say nothing about GPU speed; the
 * report must never present them as a GPU's. Nothing here knows an engine by its name.
 *
 * @module
 */

import { byString, groupBy, type Run } from "./aggregate.ts";
import type { RunRecord } from "../lib/record/schema.ts";

/** The device a run's times were measured on. */
export interface TimingDevice {
  /**
   * cpu: an engine without an adapter; gpu: an adapter whose record says it is not a fallback; fallback: a
   * fallback (software, on the CPU) adapter; adapter: one whose record does not say which it is, which the
   * report treats as no GPU.
   */
  readonly kind: "cpu" | "gpu" | "fallback" | "adapter";
  /** The device in words, e.g. "the CPU (AMD EPYC, 2 cores)" or "the GPU vendor nvidia, ... (driver ...)". */
  readonly text: string;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === "object" && v !== null && !Array.isArray(v) ? v as Json : {});
const known = (v: unknown): v is string => typeof v === "string" && v !== "" && v !== "unknown";

/** A record environment's CPU in words: model and core count, `missing` in place of a model not recorded. */
export function cpuText(env: Json, missing = "model not recorded"): string {
  const model = known(env.cpu) ? env.cpu : missing;
  return typeof env.cpus === "number" ? `${model}, ${env.cpus} core${env.cpus === 1 ? "" : "s"}` : model;
}

/** The device `r`'s training times were measured on. */
export function timingDevice(r: RunRecord): TimingDevice {
  const env = r.environment as Json, engine = obj(env.engine);
  const cpu = cpuText(env);
  if (!("adapter" in engine) && !("fallbackAdapter" in engine)) {
    return { kind: "cpu", text: `the CPU (${cpu})` };
  }
  const adapter = known(engine.adapter) ? engine.adapter : "not named";
  const driver = known(engine.driver) ? engine.driver : "not recorded";
  // kernels/webgpu/device.ts records the flag as a string; a boolean is read the same way.
  const fallback = String(engine.fallbackAdapter);
  if (fallback === "true") {
    return {
      kind: "fallback",
      text: `a fallback adapter, software on the CPU (${cpu}), not a GPU: ${adapter} (driver ${driver})`,
    };
  }
  if (fallback === "false") return { kind: "gpu", text: `the GPU ${adapter} (driver ${driver})` };
  return {
    kind: "adapter",
    text:
      `the adapter ${adapter} (driver ${driver}; whether it is a GPU or a fallback adapter is not recorded)`,
  };
}

/**
 * The timing figure's caption line when its runs were not all timed on one device: the device of each bar
 * group, and each bar group whose runs were timed on more than one (its ratios then compare devices as well
 * as precisions). Null when one device timed every run, which the timing conditions already name.
 */
export function deviceCaption(runs: readonly Run[]): string | null {
  const texts = (rs: readonly Run[]) =>
    [...new Set(rs.map((r) => timingDevice(r.record).text))].sort(byString);
  if (texts(runs).length < 2) return null;
  const cells = groupBy(runs, (r) => r.cell).map(([cell, rs]) => ({ cell, devices: texts(rs) }));
  const mixed = cells.filter((c) => c.devices.length > 1).map((c) => c.cell);
  return "Bar groups timed on different devices are not one comparison: compare times and ratios within a " +
    `bar group only. ${cells.map((c) => `${c.cell}: ${c.devices.join(" and ")}`).join("; ")}.` +
    (mixed.length
      ? ` ${mixed.join(", ")} ${mixed.length === 1 ? "mixes" : "mix"} devices in one bar group: ` +
        `${mixed.length === 1 ? "its" : "their"} ratios compare devices as well as precisions.`
      : "");
}
