/**
 * Finds and runs the PyTorch peer of `deno task bench:zoo` (tests/bench/zoo_peer.py): the Python of the
 * venv that tests/bench/setup_peer.sh makes, else Debian's /usr/bin/python3 (python3-torch); bench:engines
 * runs its MLP peer with the same Python. Run as a script it prints the venv's Python, for the tasks'
 * --allow-run lists.
 *
 * @module
 */

/** The Python that tries Debian's python3-torch when no venv is installed. */
export const DEBIAN_PYTHON = "/usr/bin/python3";

/** The venv's Python: ${F16REPRO_TOOLS:-$HOME/.cache/f16repro-tools}/peer-venv/bin/python, as setup_peer.sh. */
export function peerVenvPython(): string {
  const tools = Deno.env.get("F16REPRO_TOOLS") ?? `${Deno.env.get("HOME") ?? ""}/.cache/f16repro-tools`;
  return `${tools}/peer-venv/bin/python`;
}

/** The Python to try torch with: the venv's when it exists, else Debian's; undefined when neither does. */
export async function peerPython(): Promise<string | undefined> {
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  const venv = peerVenvPython();
  return await exists(venv) ? venv : await exists(DEBIAN_PYTHON) ? DEBIAN_PYTHON : undefined;
}

/** A Python whose torch imports. */
export interface Peer {
  readonly python: string;
  /** torch.__version__. */
  readonly torch: string;
  /** What the tables call it: "PyTorch <version>", and the Python when it is not the venv's. */
  readonly label: string;
  /** Whether this torch sees a CUDA GPU. */
  readonly cuda: boolean;
}

/** One measurement of the peer. */
export interface PeerResult {
  readonly params: number;
  /** Flops of one forward pass by torch's FlopCounterMode; undefined where torch has none (before 2.1). */
  readonly forwardFlops: number | undefined;
  readonly ms: readonly number[];
  readonly peakKiB: number;
  /** The GPU's name, for `device: "cuda"`. */
  readonly gpu?: string;
  /** Peak GPU memory torch allocated, in bytes, for `device: "cuda"`. */
  readonly gpuPeakBytes?: number;
}

/** What the peer is asked to time: one network at one batch and thread count, with the step's optimizer. */
export interface PeerRequest {
  readonly model: string;
  readonly batch: number;
  readonly threads: number;
  readonly warmup: number;
  readonly steps: number;
  readonly momentum: number;
  /** Weight decay of the conv kernels. */
  readonly decay: number;
  /** Where it runs (default cpu). */
  readonly device?: "cpu" | "cuda";
  /** fp32 (the default), autocast (fp16 autocast with a GradScaler) or half (standalone `.half()`). */
  readonly mode?: "fp32" | "autocast" | "half";
}

const SCRIPT = new URL("./zoo_peer.py", import.meta.url).pathname;

/** Runs zoo_peer.py with `python`; its JSON line, or an Error with its last stderr line. */
async function runScript(python: string, args: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(python, { args: [SCRIPT, ...args], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success || !text.startsWith("{")) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
    throw new Error(`${python} ${SCRIPT} failed (exit ${out.code})${err ? `: ${err}` : ""}`);
  }
  return JSON.parse(text);
}

/**
 * The peer to run: the venv's Python when it exists, else Debian's. A string says why there is none and how
 * to install one.
 */
export async function findPeer(): Promise<Peer | string> {
  const venv = peerVenvPython(), python = await peerPython();
  const howTo = "run `bash tests/bench/setup_peer.sh` (torch from PyPI) or " +
    "`apt-get install python3-torch libopenblas0-pthread`";
  if (!python) return `no ${venv} and no ${DEBIAN_PYTHON}: ${howTo}`;
  const where = python === venv ? python : `no ${venv}, and ${python}`;
  const peer = await probePeer(python, python === venv ? "" : ` (${python})`);
  return typeof peer === "string" ? `${where}: ${peer}; ${howTo}` : peer;
}

/** The peer that `python` runs, labelled "PyTorch <version><suffix>", or a string saying why there is none. */
export async function probePeer(python: string, suffix = ""): Promise<Peer | string> {
  try {
    const r = await runScript(python, ["--probe"]);
    if (!r.available) return String(r.reason);
    const torch = String(r.torch);
    return { python, torch, label: `PyTorch ${torch}${suffix}`, cuda: r.cuda === true };
  } catch (e) {
    return (e as Error).message;
  }
}

/** Times one network on the peer. */
export async function runPeer(peer: Peer, r: PeerRequest): Promise<PeerResult> {
  const args = Object.entries(r).flatMap(([k, v]) => v === undefined ? [] : [`--${k}`, String(v)]);
  const out = await runScript(peer.python, args);
  return {
    params: out.params as number,
    forwardFlops: (out.forward_flops ?? undefined) as number | undefined,
    ms: out.ms as number[],
    peakKiB: out.peak_kib as number,
    ...(out.gpu === undefined ? {} : { gpu: out.gpu as string, gpuPeakBytes: out.gpu_peak_bytes as number }),
  };
}

if (import.meta.main) console.log(peerVenvPython());
