/** Progress arithmetic: durations as people read them, plurals, and the estimate of the time left. */

import assert from "node:assert/strict";
import { Estimate, formatDuration, plural } from "../lib/reproduce/progress.ts";

Deno.test("formatDuration: seconds, minutes and hours, never 60 seconds in a minute", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(44.6), "45s");
  assert.equal(formatDuration(89.4), "89s");
  assert.equal(formatDuration(90), "1m30s");
  // Rounding the seconds of a minute up must carry into the minutes (the old "3m60s").
  assert.equal(formatDuration(239.6), "4m00s");
  assert.equal(formatDuration(3599.5), "60m00s");
  assert.equal(formatDuration(7199.4), "119m59s");
  assert.equal(formatDuration(7200), "2h00m");
  assert.equal(formatDuration(35 * 3600 + 29.9 * 60), "35h30m");
  assert.equal(formatDuration(-3), "0s");
});

Deno.test("plural: one re-run, two re-runs", () => {
  assert.equal(plural(1, "re-run"), "1 re-run");
  assert.equal(plural(0, "disagreement"), "0 disagreements");
  assert.equal(plural(2, "cell"), "2 cells");
});

Deno.test("Estimate: measured kinds cost their mean; unmeasured kinds their guess scaled by the machine", () => {
  const e = new Estimate();
  const mlp = { kind: "cell 0", guess: 10 }, cnn = { kind: "cell 1", guess: 10 };
  // Nothing measured: the guesses.
  assert.equal(e.left([mlp, cnn], 1), 20);
  e.measured(mlp, 30);
  e.measured(mlp, 10);
  // mlp costs its mean (20); cnn, never measured, its guess scaled by what the machine did to guesses (2x).
  assert.equal(e.cost(mlp), 20);
  assert.equal(e.cost(cnn), 20);
  e.measured(cnn, 60);
  assert.equal(e.cost(cnn), 60);
  // Two at a time halves the parallel part; serial work (tolerance, the report) adds in full.
  assert.equal(e.left([mlp, cnn], 2, [{ kind: "report", guess: 5 }]), (20 + 60) / 2 + 5 * ((3 + 1 + 6) / 3));
  // No more jobs than items: one item left takes its whole cost.
  assert.equal(e.left([cnn], 2), 60);
});

Deno.test("Estimate: a guess that is a measured time (a re-run's record) is neither scaled nor scales others", () => {
  const e = new Estimate();
  // Rough cell guesses were 20x off: unmeasured rough guesses scale by 20, a timed guess stays as it is.
  e.measured({ kind: "cell 0", guess: 10 }, 200);
  const rerun = { kind: "rerun a", guess: 180, timed: true };
  assert.equal(e.cost(rerun), 180);
  assert.equal(e.cost({ kind: "tolerance", guess: 5 }), 100);
  e.measured(rerun, 360);
  assert.equal(e.cost(rerun), 360);
  assert.equal(e.cost({ kind: "rerun b", guess: 150, timed: true }), 150);
  assert.equal(e.cost({ kind: "tolerance", guess: 5 }), 100);
});
