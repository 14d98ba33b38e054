/**
 * The tables of `deno task bench:zoo` (tests/bench/zoo.ts) from its raw measurements: every figure is
 * computed here from the timings of the run, ratios round by round and medians across rounds.
 *
 * @module
 */

import { markdownTable, median } from "./timing.ts";

/** One configuration's measurements: per round the median ms of its timed steps (undefined: not run). */
export interface Measured {
  readonly rounds: (number | undefined)[];
  /** Largest peak resident memory of its processes, KiB. */
  peakKiB: number;
  params?: number;
  flops?: number;
  /**
   * Flops of the forward pass: ours from the step graph; the peer's from torch's FlopCounterMode (torch 2.1
   * and later), a check that both run convolutions and matmuls of the same shapes.
   */
  forwardFlops?: number;
  /** Why it stopped, when a process failed (later rounds skip it). */
  error?: string;
}

/** One engine and policy of a group. */
export interface ConfigMeasured extends Measured {
  readonly engine: string;
  readonly policy: string;
}

/** Everything measured for one network at one batch and thread count. */
export interface Group {
  readonly model: string;
  readonly batch: number;
  readonly threads: number;
  readonly configs: ConfigMeasured[];
  /** The PyTorch peer (fp32), when it ran. */
  peer?: Measured;
}

/** A 512^3 fp32 gemm peak. */
export interface Gemm {
  readonly engine: string;
  /** What was timed (onnxruntime's MatMul, or the engine's own matmul graph). */
  readonly what: string;
  readonly threads: number;
  readonly gflops: number;
}

/** A whole run. */
export interface ZooRun {
  readonly header: Readonly<Record<string, string>>;
  readonly gemms: readonly Gemm[];
  readonly groups: readonly Group[];
  /** The peer's table label, or why it did not run. */
  readonly peer: { readonly label: string } | { readonly skipped: string };
}

const fixed = (x: number, d: number) => Number.isFinite(x) ? x.toFixed(d) : "-";

/** The median ms/step over rounds (NaN when no round ran). */
export function medianMs(m: Measured): number {
  return median(m.rounds.filter((x): x is number => x !== undefined));
}

/** Median over the rounds where both ran of a.ms / b.ms; NaN when there is none. */
export function roundRatio(a: Measured, b: Measured): number {
  const per = a.rounds.flatMap((x, r) =>
    x !== undefined && b.rounds[r] !== undefined ? [x / b.rounds[r]!] : []
  );
  return median(per);
}

/** The gemm peak of `engine` at `threads`, if measured. */
function peakOf(run: ZooRun, engine: string, threads: number): number | undefined {
  return run.gemms.find((g) => g.engine === engine && g.threads === threads)?.gflops;
}

/** What one row shows: a configuration, or the peer with `engine` its label; `peak` the gemm it is set against. */
interface RowOf {
  readonly engine: string;
  readonly policy: string;
  readonly m: Measured;
  readonly peak: number | undefined;
}

/** The table row of one configuration of group `g`. */
function row(g: Group, { engine, policy, m, peak }: RowOf): string[] {
  const ms = medianMs(m);
  const flops = m.flops ?? g.configs.find((c) => c.flops)?.flops;
  const gflops = flops ? flops / ms / 1e6 : NaN;
  const ratio = g.peer ? roundRatio(g.peer, m) : NaN;
  const head = [g.model, engine, policy, String(g.batch), String(g.threads)];
  if (m.error && !Number.isFinite(ms)) return [...head, `failed: ${m.error}`, "-", "-", "-", "-", "-"];
  return [
    ...head,
    fixed(g.batch / ms * 1000, 0),
    fixed(ms, 1),
    fixed(ratio, 2),
    m.peakKiB ? fixed(m.peakKiB / 1024, 0) : "-",
    fixed(gflops, 1),
    peak ? `${fixed(100 * gflops / peak, 0)}%` : "-",
  ];
}

/**
 * Where the peer's network differs from ours, one line each: its trainable parameter count, or the flops of
 * its forward pass (where its torch counts them).
 */
export function peerMismatches(run: Pick<ZooRun, "groups">): string[] {
  const out = new Set<string>();
  for (const g of run.groups) {
    const ours = g.configs.find((c) => c.params), peer = g.peer;
    if (!ours || !peer) continue;
    if (peer.params && peer.params !== ours.params) {
      out.add(
        `PARAMETER COUNT MISMATCH: ${g.model} has ${ours.params} parameters here, ${peer.params} in PyTorch`,
      );
    }
    if (peer.forwardFlops && ours.forwardFlops && peer.forwardFlops !== ours.forwardFlops) {
      out.add(
        `FLOP COUNT MISMATCH: the forward pass of ${g.model} at batch ${g.batch} is ${ours.forwardFlops} ` +
          `flops here, ${peer.forwardFlops} in PyTorch`,
      );
    }
  }
  return [...out];
}

/** The whole report: header lines, then Markdown tables ready for docs/benchmarks.md. */
export function zooTables(run: ZooRun): string {
  const out: string[] = Object.entries(run.header).map(([k, v]) => `- ${k}: ${v}`);
  const peerLabel = "label" in run.peer ? run.peer.label : undefined;
  if (!peerLabel) out.push(`- PyTorch peer: skipped (${"skipped" in run.peer ? run.peer.skipped : ""})`);
  out.push(...peerMismatches(run).map((l) => `- **${l}**`));

  out.push("", "**512^3 fp32 gemm (GFLOP/s, median)**", "");
  out.push(markdownTable(
    ["engine", "what", "threads", "GFLOP/s"],
    run.gemms.map((g) => [g.engine, g.what, g.threads, fixed(g.gflops, 1)]),
  ));
  const w1 = peakOf(run, "wasm", 1), w2 = peakOf(run, "wasm", 2);
  if (w1 && w2) out.push("", `wasm 512^3 gemm, 2 threads / 1 thread: ${fixed(w2 / w1, 2)}x (target >= 1.7)`);
  const o1 = peakOf(run, "ort", 1), o2 = peakOf(run, "ort", 2);
  if (o1 && o2) {
    out.push(
      "",
      `onnxruntime MatMul 512^3, 2 threads / 1 thread: ${fixed(o2 / o1, 2)}x (this machine's scaling)`,
    );
  }

  const rows: string[][] = [];
  for (const g of run.groups) {
    if (g.peer && peerLabel) {
      rows.push(
        row(g, { engine: peerLabel, policy: "fp32", m: g.peer, peak: peakOf(run, "ort", g.threads) }),
      );
    }
    for (const c of g.configs) {
      rows.push(row(g, { engine: c.engine, policy: c.policy, m: c, peak: peakOf(run, c.engine, g.threads) }));
    }
  }
  out.push("", "**one training step on random 3x32x32 images (medians over rounds)**", "");
  out.push(markdownTable(
    [
      "network",
      "engine",
      "policy",
      "batch",
      "threads",
      "samples/s",
      "ms/step",
      "x PyTorch",
      "peak MiB",
      "GFLOP/s",
      "of gemm peak",
    ],
    rows,
  ));

  const policies = [...new Set(run.groups.flatMap((g) => g.configs.map((c) => c.policy)))].filter((p) =>
    p !== "fp32"
  );
  const ratioRows: string[][] = [];
  for (const g of run.groups) {
    for (const engine of new Set(g.configs.map((c) => c.engine))) {
      const fp32 = g.configs.find((c) => c.engine === engine && c.policy === "fp32");
      if (!fp32 || !policies.length) continue;
      const r = policies.map((p) => {
        const c = g.configs.find((x) => x.engine === engine && x.policy === p);
        return c ? fixed(roundRatio(c, fp32), 2) : "-";
      });
      ratioRows.push([g.model, engine, String(g.batch), String(g.threads), ...r]);
    }
  }
  if (ratioRows.length) {
    out.push(
      "",
      "**step time against fp32, same engine (median of per-round ratios; target for ort <= 1.2)**",
    );
    out.push(
      "",
      markdownTable(
        ["network", "engine", "batch", "threads", ...policies.map((p) => `${p} / fp32`)],
        ratioRows,
      ),
    );
  }
  return out.join("\n");
}
