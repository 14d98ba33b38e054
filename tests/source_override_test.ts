/**
 * `$F16REPRO_SOURCES` (datasets/source_override.ts): the files it names get its URLs and checksum, the
 * others keep the publisher's; the download hosts include its hosts; a bad override file is a one-line
 * error naming it and the bad entry.
 */

import assert from "node:assert/strict";
import { SOURCES_ENV, withSourceOverrides } from "../datasets/source_override.ts";
import { CIFAR10_FILES, downloadHosts, MNIST_FILES } from "../datasets/sources.ts";

/** Runs `fn` with the variable naming a file holding `text`, then restores the environment. */
async function withOverrideFile(text: string, fn: (path: string) => void): Promise<void> {
  const dir = await Deno.makeTempDir(), path = `${dir}/sources.json`, before = Deno.env.get(SOURCES_ENV);
  await Deno.writeTextFile(path, text);
  Deno.env.set(SOURCES_ENV, path);
  try {
    fn(path);
  } finally {
    if (before === undefined) Deno.env.delete(SOURCES_ENV);
    else Deno.env.set(SOURCES_ENV, before);
    await Deno.remove(dir, { recursive: true });
  }
}

const HEX = "ab".repeat(32);

Deno.test("an override replaces the files it names and adds its hosts; the others are the publisher's", async () => {
  assert.equal(withSourceOverrides(CIFAR10_FILES), CIFAR10_FILES, "unset: unchanged");
  const entry = {
    urls: ["http://127.0.0.1:8123/c.tgz"],
    checksum: { algorithm: "sha256", hex: HEX },
    size: 9,
  };
  await withOverrideFile(JSON.stringify({ [CIFAR10_FILES[0].name]: entry }), () => {
    const [f] = withSourceOverrides(CIFAR10_FILES);
    assert.deepEqual(f, { name: CIFAR10_FILES[0].name, ...entry });
    assert.deepEqual(withSourceOverrides(MNIST_FILES), MNIST_FILES);
    assert.ok(downloadHosts().includes("127.0.0.1:8123"));
    const mnistHost = new URL(MNIST_FILES[0].urls[0]).host;
    assert.ok(downloadHosts().includes(mnistHost), "the files it does not replace keep their hosts");
  });
  assert.ok(!downloadHosts().includes("127.0.0.1:8123"));
});

Deno.test("a bad override file is a one-line error naming the file and the bad entry", async () => {
  const cases: [string, RegExp][] = [
    ["{", /JSON/],
    ["[]", /expected an object of file names/],
    [JSON.stringify({ a: { urls: [] } }), /"a" needs "urls", a non-empty list of strings/],
    [JSON.stringify({ a: { urls: ["not a url"] } }), /"a" has the bad URL "not a url"/],
    [
      JSON.stringify({ a: { urls: ["http://x/"], checksum: { algorithm: "md5", hex: HEX } } }),
      /"a" needs "checksum"/,
    ],
    [
      JSON.stringify({ a: { urls: ["http://x/"], checksum: { algorithm: "sha256", hex: HEX }, size: -1 } }),
      /"a" has the bad size -1/,
    ],
  ];
  for (const [text, why] of cases) {
    await withOverrideFile(text, (path) => {
      assert.throws(() => withSourceOverrides(CIFAR10_FILES), (e: Error) => {
        assert.ok(e.message.startsWith(`Bad ${SOURCES_ENV} file ${path}: `), e.message);
        assert.match(e.message, why);
        assert.ok(!e.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});
