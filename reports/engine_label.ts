/**
 * How the report names an engine: with its guarantee when it is not bit-exact with ref, so a figure made
 * from `--fast` runs says so wherever the engine appears.
 *
 * @module
 */

const NOT_EXACT: Readonly<Record<string, string>> = {
  "wasm-fast": "fused multiply-add, not bit-exact with ref",
  ort: "onnxruntime, float32 arithmetic in its own order, not bit-exact with ref",
};

/** The engine's name, followed by its caveat in parentheses when it has one. */
export function engineLabel(name: string): string {
  return NOT_EXACT[name] ? `${name} (${NOT_EXACT[name]})` : name;
}
