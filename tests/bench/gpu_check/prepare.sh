#!/usr/bin/env bash
# Prepares the GPU check (tests/bench/gpu_check/run.sh) on THIS machine, in the folder .gpu/ of the checkout
# (ignored by git; a call of the device tool carries it): Deno compressed with xz -9, the Vulkan loader
# package (libvulkan1, amd64), and a Deno cache holding only what the check imports (vega for main.ts, the
# mnist package for the hash cell; no onnxruntime-node), made with a fresh DENO_DIR in a copy of the tree
# whose lockfile is the project's cut down to those packages (lock_subset.ts). It records
# this machine's wasm weight hash of the hash cell, checks that what travels stays under 64 MiB, and prints
# the device tool's call. Run it in the checkout the session was started in (that is the tree a call sends).
# Needs network access (npm, the Debian mirror) and about 3 minutes on 2 cores.
# Usage: bash tests/bench/gpu_check/prepare.sh
set -euo pipefail

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "prepare.sh: unknown argument '$1' (expected none or --help)" >&2; exit 2 ;;
esac

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
pack="$root/.gpu"
LIMIT=$((64 * 1024 * 1024))
git -C "$root" check-ignore -q .gpu/ || { echo "prepare.sh: .gpu/ is not ignored by git in $root" >&2; exit 1; }
mkdir -p "$pack/gl"
deno=$(deno eval 'console.log(Deno.execPath())')

version=$("$deno" --version | head -1)
if [ ! -f "$pack/deno.xz" ] || [ "$(cat "$pack/deno.version" 2>/dev/null)" != "$version" ]; then
  echo "prepare.sh: compressing $deno ($version) with xz -9"
  xz -9 -T0 -c "$deno" >"$pack/deno.xz.tmp" && mv "$pack/deno.xz.tmp" "$pack/deno.xz"
  echo "$version" >"$pack/deno.version"
fi

if ! ls "$pack"/gl/libvulkan1_*.deb >/dev/null 2>&1; then
  echo "prepare.sh: downloading the Vulkan loader (libvulkan1, amd64)"
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  mkdir -p /tmp/amd64/partial
  apt-get "${o[@]}" update -qq
  (cd "$pack/gl" && apt-get "${o[@]}" download libvulkan1)
fi

tmp=$(mktemp -d /tmp/f16repro-gpu-prepare.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree"
cp -r "$root"/{main.ts,deno.json,lib,kernels,datasets,reports,tests} "$tmp/tree/"
"$deno" run --allow-read --allow-write "$root/tests/bench/gpu_check/lock_subset.ts" "$root/deno.lock" "$pack/deno.lock"
cp "$pack/deno.lock" "$tmp/tree/deno.lock"
export DENO_DIR="$tmp/deno_dir" NO_COLOR=1
echo "prepare.sh: filling a fresh Deno cache with what the check imports"
(
  cd "$tmp/tree"
  "$deno" cache --quiet main.ts tests/conformance_webgpu_test.ts tests/bench/zoo_step.ts tests/bench/gpu_check/*.ts
  # The mnist package is imported at run time (a computed specifier): the hash cell fetches it, and its hash
  # is this machine's, the one the GPU machine's must equal.
  "$deno" run --allow-read --allow-write --allow-env --allow-sys "--allow-run=$deno" \
    tests/bench/gpu_check/cell_hash.ts >"$pack/expected_hash.json"
  # What run.sh runs must load from the cache alone.
  "$deno" test --no-check --cached-only --allow-read --filter '^$' tests/conformance_webgpu_test.ts >/dev/null
  "$deno" run --cached-only --allow-read --allow-env --allow-sys main.ts train --help >/dev/null
)
# Deno must not have changed the lockfile: the check runs on the project's versions and hashes.
cmp -s "$tmp/tree/deno.lock" "$pack/deno.lock" || { echo "prepare.sh: Deno changed the cut lockfile" >&2; exit 1; }
tar -C "$tmp" -cf - deno_dir/npm | xz -9 -T0 >"$pack/deno_dir.tar.xz"
dirty=$([ -n "$(git -C "$root" status --porcelain)" ] && echo true || echo false)
printf '{ "commit": "%s", "dirty": %s, "prepared": "%s", "preparedOn": "%s" }\n' \
  "$(git -C "$root" rev-parse --short HEAD)" "$dirty" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) logical CPUs" >"$pack/meta.json"

# What a call sends: tracked and untracked-not-ignored files, shared/ when the checkout has one, and .gpu.
sent=$(cd "$root" && git ls-files -z -co --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null |
  awk '{ s += $1 } END { print s + 0 }')
shared=$([ -d "$root/shared" ] && du -sb "$root/shared" | cut -f1 || echo 0)
carried=$(du -sb "$pack" | cut -f1)
total=$((sent + shared + carried))
echo "prepare.sh: the tree $((sent / 1024)) KiB, shared/ $((shared / 1024)) KiB, .gpu $((carried / 1024)) KiB:" \
  "$((total / 1024 / 1024)) MiB of the 64 MiB a call may send"
[ "$total" -lt "$LIMIT" ] || { echo "prepare.sh: over the limit" >&2; exit 1; }
echo "prepare.sh: hash cell here: $(sed -n 's/.*"weightHash":"\([0-9a-f]*\)".*/\1/p' "$pack/expected_hash.json")"
cat <<CALL
prepare.sh: ready. In a session whose task is lent a GPU, make ONE call of the device tool:
  run(command: "bash tests/bench/gpu_check/run.sh", carry: [".gpu"], timeout_s: 600)
then read result.md, result.json and log.txt from the reply's files, and give the machine back.
CALL
