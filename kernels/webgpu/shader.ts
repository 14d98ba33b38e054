/**
 * Assembles the WGSL of one pass: the prelude, the math functions, the node's operand accessors (where each
 * tensor sits in `mem`, baked in as constants) and the entry point of a map pass.
 *
 * @module
 */

import type { FormatName } from "../../lib/formats/format.ts";
import type { GpuOperand, GpuPass } from "./kernel.ts";
import { F16_ENABLE, PRELUDE, PRELUDE_F16 } from "./prelude.ts";
import { WGSL_ERF, WGSL_EXP } from "./wgsl_math.ts";

/** Threads per workgroup of a map pass. */
export const MAP_WORKGROUP = 64;
const MAX_GROUPS = 65535;

/** Where a pass's tensors are: word offsets in `mem`. */
export interface PassLayout {
  /** Word offset of each input, in the order of the node's inputs. */
  readonly x: readonly number[];
  /** Word offset of the output. */
  readonly y: number;
  /** Word offset of the f32 staging area of custom passes with a 16-bit output. */
  readonly wide: number;
}

/** A pass ready to dispatch: its full WGSL and its workgroup counts. */
export interface ShaderPass {
  readonly code: string;
  readonly workgroups: readonly [number, number, number];
}

/** Workgroup counts for `threads` threads of a 1-D map (2-D when it passes the per-dimension limit). */
function grid(threads: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(threads / MAP_WORKGROUP));
  const x = Math.min(groups, MAX_GROUPS);
  return [x, Math.ceil(groups / x), 1];
}

function accessors(x: readonly GpuOperand[], y: GpuOperand, acc: FormatName, at: PassLayout): string {
  // fp16 inputs are read as f16 (hk) and widened exactly for f32 work (xk); other formats decode to f32.
  const lines = x.flatMap((o, k) =>
    o.format === "fp16"
      ? [
        `fn h${k}(i: u32) -> f16 { return ldh(${at.x[k]}u, i); }`,
        `fn x${k}(i: u32) -> f32 { return f32(h${k}(i)); }`,
      ]
      : [`fn x${k}(i: u32) -> f32 { return ld_${o.format}(${at.x[k]}u, i); }`]
  );
  lines.push(`fn racc(v: f32) -> f32 { return rnd_${acc}(v); }`);
  lines.push(`fn ry(v: f32) -> f32 { return rnd_${y.format}(v); }`);
  lines.push(
    y.format === "fp32"
      ? `fn st_y(i: u32, v: f32) { mem[${at.y}u + i] = bitcast<u32>(v); }`
      : `fn st_y(i: u32, v: f32) { mem[${at.wide}u + i] = bitcast<u32>(ry(v)); }`,
  );
  return lines.join("\n");
}

/**
 * The entry point of a map pass over `y`: one element per thread (fp32) or one packed word (16-bit), whose
 * values `value` gives as f16 when `half` (stored as they are) or as f32 (encoded with rounding).
 */
function mapMain(y: GpuOperand, base: number, nx: number, half: boolean): string {
  const head = `@compute @workgroup_size(${MAP_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * ${nx * MAP_WORKGROUP}u;`;
  if (half) {
    return `${head}
  if (2u * t >= ${y.size}u) { return; }
  var hi = 0.0h;
  if (2u * t + 1u < ${y.size}u) { hi = value(2u * t + 1u); }
  mem_h[${base}u + t] = vec2<f16>(value(2u * t), hi);
}`;
  }
  if (y.format === "fp32") {
    return `${head}
  if (t >= ${y.size}u) { return; }
  mem[${base}u + t] = bitcast<u32>(value(t));
}`;
  }
  return `${head}
  if (2u * t >= ${y.size}u) { return; }
  var hi = 0u;
  if (2u * t + 1u < ${y.size}u) { hi = enc_${y.format}(value(2u * t + 1u)); }
  mem[${base}u + t] = enc_${y.format}(value(2u * t)) | (hi << 16u);
}`;
}

/**
 * The shader passes of one kernel pass: a map pass as is; a custom pass with a 16-bit output followed by the
 * map pass that packs its f32 staging area into the output.
 */
export function shaderPasses(
  pass: GpuPass,
  ctx: { x: readonly GpuOperand[]; y: GpuOperand; acc: FormatName; at: PassLayout },
): ShaderPass[] {
  // The math functions only where a kernel calls them: shaders compile faster without them.
  const erf = /\b(erf_|gelu_|gelu_grad_)\(/.test(pass.code);
  const math = (erf || /\b(exp_|log_|tanh_)\(/.test(pass.code) ? WGSL_EXP : "") + (erf ? WGSL_ERF : "");
  // A pass that touches fp16 enables WGSL f16 (the engine refuses fp16 graphs on a device without it);
  // fp32 and bf16 passes are the same text as they would be without f16.
  const f16 = [...ctx.x, ctx.y].some((o) => o.format === "fp16");
  const head = `${f16 ? F16_ENABLE : ""}${PRELUDE}\n${f16 ? `${PRELUDE_F16}\n` : ""}${math}\n${
    accessors(ctx.x, ctx.y, ctx.acc, ctx.at)
  }\n`;
  const map = (value: string, half = false): ShaderPass => {
    const workgroups = grid(ctx.y.format === "fp32" ? ctx.y.size : Math.ceil(ctx.y.size / 2));
    if (half) {
      return { code: `${head}${value}\n${mapMain(ctx.y, ctx.at.y, workgroups[0], true)}`, workgroups };
    }
    // A map's value is rounded to the output format here, once (ry is the identity for fp32).
    const body = `${value}\nfn value_rounded(i: u32) -> f32 { return ry(value(i)); }\n`;
    return {
      code: `${head}${body}${
        mapMain(ctx.y, ctx.at.y, workgroups[0], false).replaceAll("value(", "value_rounded(")
      }`,
      workgroups,
    };
  };
  if (pass.kind === "map") return [map(pass.code, pass.half)];
  const custom = { code: `${head}${pass.code}`, workgroups: pass.workgroups };
  if (ctx.y.format === "fp32") return [custom];
  return [custom, map(`fn value(i: u32) -> f32 { return bitcast<f32>(mem[${ctx.at.wide}u + i]); }`)];
}
