/**
 * The paper's claims, each answered by one sentence computed from our runs:
 * accuracy of fp16 against fp32 and mixed, speed, stability and the
 * error/tolerance lemma. Nothing here is a verdict written by hand; a claim
 * that the runs cannot test says so and why.
 *
 * @module
 */

import { finalAccuracy, groupBy, type GroupRow, type Run } from "./aggregate.ts";
import { PRINTED_MEANS } from "./paper.ts";
import type { LoadedTolerance } from "./inputs.ts";
import { timingConditions } from "./scope.ts";
import { para, section } from "./html.ts";

const signed = (x: number, digits: number) => `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
const networks = (n: number) => `${n} network${n === 1 ? "" : "s"}`;

/** The groups of one cell (model, dataset and setting) by precision. */
function byCell(groups: readonly GroupRow[]): Map<string, GroupRow>[] {
  return groupBy(groups, (g) => g.cell).map(([, gs]) => new Map(gs.map((g) => [g.precision, g])));
}

/**
 * fp16 against `other` in accuracy: on how many networks fp16's mean final accuracy lies within two of
 * `other`'s seed standard deviations, and the mean difference in points.
 */
function accuracyClaim(groups: readonly GroupRow[], other: "fp32" | "mixed", printed: number): string {
  const head = `Accuracy, fp16 against ${other} (paper: the same, mean difference ${printed} points): `;
  const pairs = byCell(groups).flatMap((m) => {
    const a = m.get("fp16"), b = m.get(other);
    return a && b && a.accMean !== null && b.accMean !== null ? [{ a, b }] : [];
  });
  if (pairs.length === 0) return `${head}not testable here; no network has completed fp16 and ${other} runs.`;
  const judged = pairs.filter((p) => p.b.accStd !== null);
  const within = judged.filter((p) => Math.abs(p.a.accMean! - p.b.accMean!) <= 2 * p.b.accStd!).length;
  const diff = pairs.reduce((s, p) => s + p.a.accMean! - p.b.accMean!, 0) / pairs.length;
  const spread = judged.length
    ? `fp16's mean final accuracy is within two of ${other}'s seed standard deviations on ${within} of ` +
      `${networks(judged.length)}`
    : `no network has two completed ${other} seeds to measure a spread`;
  const unjudged = pairs.length - judged.length;
  return `${head}${spread}${unjudged ? ` (${unjudged} more with a single ${other} seed)` : ""}; mean ` +
    `difference ${signed(diff, 2)} points over ${networks(pairs.length)}.`;
}

/** `num`/fp16 training time per network, against the paper's printed ratio. */
function speedClaim(
  groups: readonly GroupRow[],
  runs: readonly Run[],
  num: "fp32" | "mixed",
  printed: number,
) {
  const head = `Speed, ${num} time / fp16 time (paper: ${printed}x on the authors' GPU): `;
  const ratios = byCell(groups).flatMap((m) => {
    const a = m.get(num), b = m.get("fp16");
    return a && b && b.trainSecondsMean > 0 ? [a.trainSecondsMean / b.trainSecondsMean] : [];
  });
  if (ratios.length === 0) return `${head}not testable here; no network has ${num} and fp16 runs.`;
  const faster = ratios.filter((r) => r > 1).length;
  const lo = Math.min(...ratios), hi = Math.max(...ratios);
  const range = lo.toFixed(2) === hi.toFixed(2)
    ? `${lo.toFixed(2)}x`
    : `${lo.toFixed(2)}x to ${hi.toFixed(2)}x`;
  return `${head}${range} over ${networks(ratios.length)}; fp16 trained faster on ${faster} of ` +
    `${ratios.length}. ${timingConditions(runs)}`;
}

/** How many runs of each precision diverged. */
function stabilityClaim(runs: readonly Run[]): string {
  const head = "Stability (paper: occasional instability, mitigated by repeated runs): ";
  const parts = groupBy(runs, (r) => r.record.config.precision).map(([p, rs]) =>
    `${p} ${rs.filter((r) => finalAccuracy(r) === null).length} of ${rs.length}`
  );
  return `${head}runs that diverged or ended without an accuracy: ${parts.join(", ") || "none ran"}.`;
}

/** Whether the lemma held: no input with Gamma > 2 delta changed its prediction. */
function lemmaClaim(tolerance: readonly LoadedTolerance[]): string {
  const head = "Error/tolerance lemma (where Gamma > 2 delta the fp16 model predicts what fp32 does): ";
  if (tolerance.length === 0) return `${head}not tested here; the folder has no tolerance results.`;
  const spaces = tolerance.flatMap((t) => [t.result.logits, t.result.probabilities]);
  const held = spaces.filter((s) => s.violations === 0).length;
  const violations = spaces.reduce((s, x) => s + x.violations, 0);
  const inputs = spaces.reduce((s, x) => s + x.count, 0);
  return `${head}held in ${held} of ${spaces.length} comparisons (${tolerance.length} result files, logits ` +
    `and probabilities each), with ${violations} violations over ${inputs} inputs.`;
}

/** One sentence per claim of the paper, in the paper's order. */
export function claimSentences(
  groups: readonly GroupRow[],
  runs: readonly Run[],
  tolerance: readonly LoadedTolerance[],
): string[] {
  return [
    accuracyClaim(groups, "fp32", PRINTED_MEANS.fp16MinusFp32),
    accuracyClaim(groups, "mixed", PRINTED_MEANS.fp16MinusMixed),
    speedClaim(groups, runs, "fp32", PRINTED_MEANS.fp32OverFp16),
    speedClaim(groups, runs, "mixed", PRINTED_MEANS.mixedOverFp16),
    stabilityClaim(runs),
    lemmaClaim(tolerance),
  ];
}

/** The claims section: the sentences as a list, computed from the main runs and tolerance results. */
export function claimsSection(
  groups: readonly GroupRow[],
  runs: readonly Run[],
  tolerance: readonly LoadedTolerance[],
): string {
  const items = claimSentences(groups, runs, tolerance).map((s) => `<li>${para(s)}</li>`).join("\n");
  return section("claims", "The paper's claims against our runs", [
    para(
      "Each sentence is computed from the run records of the main comparison (and the tolerance results); " +
        "a network here is a model, dataset and setting.",
      "note",
    ),
    `<ul class="claims">\n${items}\n</ul>`,
  ]);
}
