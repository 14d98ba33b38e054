/**
 * The GPU this engine runs on: the adapter and device, the limits it asks for, and what the run record
 * says about them.
 *
 * @module
 */

import { UserError } from "../../lib/errors.ts";

/** The adapter, its device and the limits the engine relies on. */
export interface Gpu {
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  /** True when the adapter is a CPU (a fallback adapter such as lavapipe). */
  readonly cpu: boolean;
  /** True when the device has WGSL's `shader-f16` (fp16 runs in f16 arithmetic); without it fp16 is refused. */
  readonly f16: boolean;
}

/** How the run record and error messages name an adapter: its driver's description, else vendor and device. */
export function adapterName(adapter: GPUAdapter): string {
  const info = adapter.info;
  return info.description || [info.vendor, info.device].filter(Boolean).join(" ") || "unnamed";
}

/** Why fp16 cannot run on `gpu`, or undefined when it can (one sentence, for errors and the capabilities). */
export function fp16Problem(gpu: Gpu): string | undefined {
  if (gpu.f16) return undefined;
  const name = adapterName(gpu.adapter);
  return gpu.adapter.features.has("shader-f16")
    ? `the webgpu engine was told (option shaderF16 false) to run as if the adapter "${name}" lacked shader-f16`
    : `the webgpu adapter "${name}" lacks shader-f16`;
}

/** The limits the engine raises from WebGPU's defaults to the adapter's own. */
const LIMITS = ["maxStorageBufferBindingSize", "maxBufferSize", "maxComputeWorkgroupStorageSize"] as const;

/**
 * Requests the adapter and a device with the adapter's buffer limits and, when the adapter offers it and
 * `shaderF16` is not false, the `shader-f16` feature. Throws a one-line error when this Deno has no WebGPU
 * or the machine has no adapter (on Linux without a GPU, a software Vulkan driver such as Mesa's lavapipe
 * provides one: Debian package mesa-vulkan-drivers).
 */
export async function acquireGpu({ shaderF16 = true }: { shaderF16?: boolean } = {}): Promise<Gpu> {
  if (!("gpu" in navigator)) throw new UserError("This Deno has no WebGPU (navigator.gpu is missing)");
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new UserError(
      "No WebGPU adapter found: the webgpu engine needs a GPU with a Vulkan, Metal or Direct3D 12 driver " +
        "(without a GPU on Linux: install Mesa's lavapipe, Debian package mesa-vulkan-drivers)",
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) requiredLimits[k] = adapter.limits[k];
  const f16 = shaderF16 && adapter.features.has("shader-f16");
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: f16 ? ["shader-f16"] : [],
  });
  return { adapter, device, cpu: adapter.info.isFallbackAdapter, f16 };
}

/** The adapter, its driver, features and key limits, for the run record. */
export function gpuEnvironment(gpu: Gpu): Record<string, string> {
  const info = gpu.adapter.info, limits = gpu.device.limits;
  return {
    kernels: "WGSL compute shaders, one command submission per step",
    adapter: [
      info.vendor && `vendor ${info.vendor}`,
      info.architecture,
      info.device && `device ${info.device}`,
    ]
      .filter(Boolean).join(", "),
    driver: info.description,
    // Deno's WebGPU does not name the backend it chose (Vulkan, Metal, Direct3D 12 or OpenGL), but the
    // variable that forces one, and the subgroup sizes, which differ between them, tell it apart.
    backend: backendChoice(),
    subgroupSizes: `${info.subgroupMinSize}-${info.subgroupMaxSize}`,
    fallbackAdapter: String(info.isFallbackAdapter),
    features: [...gpu.adapter.features].sort().join(", "),
    // What the device was given, which the adapter's features alone do not say (the option can withhold it).
    arithmetic16: gpu.f16
      ? "fp16 in WGSL f16 (shader-f16 requested); bf16 emulated (f32 arithmetic, rounded in integers)"
      : "fp16 refused (no shader-f16); bf16 emulated (f32 arithmetic, rounded in integers)",
    limits: ([...LIMITS, "maxComputeInvocationsPerWorkgroup", "maxComputeWorkgroupsPerDimension"] as const)
      .map((k) => `${k} ${limits[k]}`).join(", "),
  };
}

/** DENO_WEBGPU_BACKEND when set (and readable), else a note that wgpu chose. */
function backendChoice(): string {
  const variable = "DENO_WEBGPU_BACKEND";
  const chosen = Deno.permissions.querySync({ name: "env", variable }).state === "granted"
    ? Deno.env.get(variable)
    : undefined;
  return chosen ? `${variable}=${chosen}` : "wgpu's default choice";
}
