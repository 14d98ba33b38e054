/**
 * The one strict parser of the command line (lib/cli/parse.ts), in process: numbers and lists mean what they
 * say, hyperparameters the policy's formats cannot hold are refused, and a limit above a dataset's size is
 * an error rather than a run with another size under the same id. The same rules through fresh processes
 * for the commands that do work once parsing passes (reproduce) are in tests/user_errors_test.ts.
 */

import assert from "node:assert/strict";
import { parseTrainArgs } from "../lib/cli/train.ts";
import { decimal, integer, joinNegativeValues, seedList } from "../lib/cli/parse.ts";
import { UsageError } from "../lib/errors.ts";
import { userMessage } from "../lib/cli/usage_error.ts";

/** Asserts that `f` throws a UsageError (exit code 2) whose one-line message matches `re`. */
function refuses(f: () => unknown, re: RegExp, what = String(re)) {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof UsageError, `${what}: a UsageError, got ${e}`);
    assert.equal(e.exitCode, 2);
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, re, what);
    return true;
  });
}

const TINY = ["--dataset", "synthetic"];

const BAD_TRAIN: [string[], RegExp][] = [
  [["--seed", "1.5"], /--seed must be an integer from 0 to 4294967295, got "1\.5"/],
  [["--seed", "1e3"], /--seed must be an integer .* got "1e3"/],
  [["--seed", "0x10"], /--seed must be an integer .* got "0x10"/],
  [["--seed", "-1"], /--seed must be an integer .* got "-1"/],
  [["--seed", "4294967296"], /--seed must be an integer .* got "4294967296"/],
  [["--batch", "0x10"], /--batch must be a positive integer, got "0x10"/],
  [["--epochs", "+3"], /--epochs must be a positive integer, got "\+3"/],
  [["--hidden", "16,"], /--hidden has an empty item in "16,"/],
  [["--lr", "0x10"], /--lr must be a number greater than 0, got "0x10"/],
  [["--lr", "Infinity"], /--lr must be a number greater than 0, got "Infinity"/],
  [["--lr", "1_0"], /--lr must be a number/],
  [["--lr", " 0.01"], /--lr must not start or end with white space, got " 0\.01"/],
  [["--batch", "5 "], /--batch must not start or end with white space/],
  [["--precision", " fp16"], /--precision must not start or end with white space, got " fp16"/],
  [["--precision", "fp16, bn=fp32"], /white space in "fp16, bn=fp32"/],
  [["--out", ""], /--out needs a value, got ""/],
  [["--cache-dir", ""], /--cache-dir needs a value/],
  // Hyperparameters that round to something else in the formats the optimizer keeps them in.
  [["--lr", "1e-320"], /--lr 1e-320 underflows to 0 in fp32/],
  [["--lr", "1e-9", "--precision", "fp16"], /--lr 1e-9 underflows to 0 in fp16/],
  [["--lr", "1e39", "--precision", "fp16"], /--lr 1e\+39 overflows to infinity in fp16/],
  [["--weight-decay", "1e-10", "--precision", "fp16"], /--weight-decay 1e-10 underflows to 0 in fp16/],
  [["--momentum", "0.99999", "--precision", "fp16"], /--momentum 0\.99999 rounds to 1 in fp16/],
  [["--lr", "1e-9", "--precision", "fp32,state=fp16"], /--lr 1e-9 underflows to 0 in fp16/],
  [
    ["--optimizer", "adam", "--epsilon", "1e-8", "--precision", "fp16"],
    /--epsilon 1e-8 underflows to 0 in fp16/,
  ],
  // Limits above the set's size would train on fewer examples than the id says.
  [["--train-limit", "2001"], /--train-limit 2001 is more than the 2000 training examples of synthetic/],
  [["--train-limit", "1000000000"], /--train-limit 1000000000 is more than the 2000 training examples/],
  [["--test-limit", "501"], /--test-limit 501 is more than the 500 test examples of synthetic/],
];

for (const [args, re] of BAD_TRAIN) {
  Deno.test(`train refuses ${JSON.stringify(args)}`, () => {
    refuses(() => parseTrainArgs([...TINY, ...args]), re, args.join(" "));
  });
}

Deno.test("train accepts plain values, including subnormal hyperparameters that stay non-zero", () => {
  const { config } = parseTrainArgs([
    ...TINY,
    ...["--seed", "007", "--lr", "1e-3", "--momentum", ".5", "--train-limit", "2000", "--test-limit", "500"],
  ]);
  assert.equal(config.seed, 7);
  assert.equal(config.optimizer.lr, 0.001);
  assert.equal(config.optimizer.momentum, 0.5);
  assert.equal(config.trainLimit, 2000);
  // The Keras epsilon 1e-7 is an fp16 subnormal (the paper's pitfall), not zero: it must stay allowed.
  const adam = parseTrainArgs([...TINY, "--optimizer", "adam", "--epsilon", "1e-7", "--precision", "fp16"]);
  assert.equal(adam.config.optimizer.epsilon, 1e-7);
  // Mixed precision keeps the update in fp32 master weights: 1e-9 is fine there.
  assert.equal(parseTrainArgs([...TINY, "--lr", "1e-9", "--precision", "mixed"]).config.optimizer.lr, 1e-9);
  // A negative value after a flag reaches validation (not "argument is ambiguous").
  refuses(
    () => parseTrainArgs([...TINY, "--lr", "-0.1"]),
    /--lr must be a number greater than 0, got "-0\.1"/,
  );
});

Deno.test("parse: integers, decimals and seed lists are strict; negative values are joined to their flag", () => {
  assert.equal(integer("n", "12", 1), 12);
  refuses(() => integer("n", "1.0", 1), /--n must be a positive integer, got "1\.0"/);
  refuses(() => integer("n", "", 1), /got ""/);
  assert.equal(decimal("x", "2.5e-3", { min: 0 }), 0.0025);
  refuses(() => decimal("x", "NaN", { min: 0 }), /--x must be a number at least 0, got "NaN"/);
  refuses(() => decimal("x", "1", { min: 0, below: 1 }), /at least 0 and below 1, got "1"/);
  assert.deepEqual(seedList("seeds", "3,1,2"), [3, 1, 2]);
  refuses(() => seedList("seeds", ""), /--seeds has an empty item in ""/);
  refuses(() => seedList("seeds", "1,1"), /--seeds lists 1 twice/);
  refuses(() => seedList("seeds", "1, 2"), /--seeds must be an integer .* got " 2"/);
  const opts = {
    seeds: { type: "string" },
    quiet: { type: "boolean" },
    out: { type: "string", short: "o" },
  } as const;
  assert.deepEqual(joinNegativeValues(["--seeds", "-1", "--quiet", "-2", "-o", "-3"], opts), [
    "--seeds=-1",
    "--quiet",
    "-2",
    "-o-3",
  ]);
});

Deno.test("userMessage: a user's situation is one line with its exit code; anything else is a bug", () => {
  assert.deepEqual(userMessage(new UsageError("bad flag")), { message: "bad flag", exitCode: 2 });
  const full = Object.assign(new Error("No space left on device (os error 28): write 'x'\nmore"), {
    code: "ENOSPC",
  });
  assert.deepEqual(userMessage(full), {
    message: "No space left on device (os error 28): write 'x'",
    exitCode: 1,
  });
  assert.equal(userMessage(new TypeError("Cannot read properties of undefined")), undefined);
  assert.equal(userMessage(Object.assign(new Error("odd"), { code: "ECONNRESET" })), undefined);
});
