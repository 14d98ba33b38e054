/**
 * The ref engine's spec: plain TypeScript, the executable definition of the numerical contract.
 *
 * @module
 */

import type { EngineSpec } from "../spec.ts";

/** The ref engine. */
export const REF: EngineSpec = {
  name: "ref",
  description: "plain TypeScript kernels: the numerical contract every engine is checked against",
  options: [],
  bitOptions: [],
  denoFlags: [],
  guarantee: () => ({
    bitExactWithRef: true,
    deterministic: true,
    text: "defines the numbers; bit-identical on any machine",
  }),
  load: async () => (await import("./mod.ts")).createEngine(),
};
