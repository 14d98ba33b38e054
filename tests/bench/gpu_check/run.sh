#!/usr/bin/env bash
# The GPU check of issue 20, item 4: runs ON a borrowed GPU machine in one call of the device tool, in under
# 10 minutes, from the folder .gpu/ that prepare.sh made (carried: it is ignored by git). It unpacks Deno,
# the Vulkan loader and a Deno cache holding only what the check imports (no onnxruntime), then runs, each
# part under its own time limit so that the result is always written:
#   1. cell_hash.ts: the wasm weight hash of one quick-profile cell on this machine's CPU (~15 s);
#   2. gpu_steps.ts: one training step of mlp, resnet32, vgg16, vit8 on webgpu in fp32/fp16/mixed and on
#      the PyTorch CUDA peer in fp32/autocast/half, at batch 256 (at most 270 s);
#   3. tests/conformance_webgpu_test.ts on the GPU's adapter (what is left of 9.5 minutes, 60 to 300 s);
#   4. gpu_result.ts: result.json and result.md in $OUT (with log.txt, the whole output).
# --smoke runs every part with tiny shapes on this machine's adapter (lavapipe) and a CPU torch, in a few
# minutes; nothing it prints is a GPU figure, and it never unpacks anything into /.
# Usage: bash tests/bench/gpu_check/run.sh [--smoke]      (OUT=folder for the results; default a temp folder)
set -uo pipefail

smoke=false
case "${1:-}" in
  "") ;;
  --smoke) smoke=true ;;
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run.sh: unknown argument '$1' (expected --smoke or --help)" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../../.." && pwd)
pack="$root/.gpu"
for f in deno.xz deno_dir.tar.xz deno.lock meta.json expected_hash.json; do
  [ -f "$pack/$f" ] || { echo "run.sh: $pack/$f is missing: run tests/bench/gpu_check/prepare.sh first" >&2; exit 1; }
done
OUT="${OUT:-$(mktemp -d /tmp/f16repro-gpu-out.XXXXXX)}"
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
tee_pid=$!
work=$(mktemp -d /tmp/f16repro-gpu.XXXXXX)
# Deno and its cache unpacked take about 160 MB: removed however the script ends.
trap 'cd / && rm -rf "$work"' EXIT
parts="$work/parts"
mkdir -p "$parts" "$work/bin"
start=$(date +%s)
say() { echo "[run.sh $(($(date +%s) - start)) s] $*"; }

# xz or, where the image has none, Python's lzma.
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c \
  'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi; }

say "unpacking Deno and its cache into $work"
unxz_to "$pack/deno.xz" "$work/bin/deno" && chmod +x "$work/bin/deno"
unxz_to "$pack/deno_dir.tar.xz" "$work/deno_dir.tar" && tar -C "$work" -xf "$work/deno_dir.tar" && rm "$work/deno_dir.tar"
deno="$work/bin/deno"
# A copy of the tree with the check's own lockfile: the project's deno.lock lists onnxruntime-node, and Deno
# installs every package of a lockfile it reads; this one lists only what the check imports.
mkdir -p "$work/tree"
cp -r "$root"/{main.ts,deno.json,lib,kernels,datasets,reports,tests} "$work/tree/"
cp "$pack/deno.lock" "$work/tree/deno.lock"
cp "$pack/expected_hash.json" "$parts/"
export DENO_DIR="$work/deno_dir" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 DENO_WEBGPU_BACKEND=vulkan
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$work}"

if [ "$smoke" = false ]; then
  # device/README.md: bring the Vulkan loader when the image has none, and point it at NVIDIA's driver. Only
  # on an NVIDIA machine (the borrowed one): elsewhere nothing is unpacked into /.
  if command -v nvidia-smi >/dev/null && ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
    for f in "$pack"/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
  python=$(command -v python3)
else
  venv="${F16REPRO_TOOLS:-$HOME/.cache/f16repro-tools}/peer-venv/bin/python"
  if [ -x "$venv" ]; then python="$venv"; else python=$(command -v python3); fi
fi
nvidia=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
say "GPU: ${nvidia:-no nvidia-smi}; Deno $("$deno" --version | head -1); peer Python $python"

cd "$work/tree" || exit 1
run_flags=(--allow-read --allow-write --allow-env --allow-sys "--allow-run=$deno,$python")
cp "$pack/meta.json" "$parts/prepared.json"
{
  echo "ran: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $([ "$smoke" = true ] && echo smoke || echo full)"
  echo "gpu: ${nvidia:-no nvidia-smi}"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) logical CPUs"
} >"$parts/machine.txt"
result() { "$deno" run --allow-read --allow-write tests/bench/gpu_check/gpu_result.ts "$parts" "$OUT"; }

say "1/3 the wasm weight hash of one quick-profile cell"
timeout 60 "$deno" run "${run_flags[@]}" tests/bench/gpu_check/cell_hash.ts >"$parts/hash.json.tmp" &&
  mv "$parts/hash.json.tmp" "$parts/hash.json"
result

budget=$([ "$smoke" = true ] && echo 120 || echo 240)
say "2/3 training steps on webgpu and the PyTorch peer (budget $budget s)"
timeout $((budget + 30)) "$deno" run "${run_flags[@]}" tests/bench/gpu_check/gpu_steps.ts --out "$parts/steps.json" \
  --python "$python" --budget-s "$budget" $([ "$smoke" = true ] && echo --smoke)
result

# The smoke mode runs the suite's cheapest test: the whole suite takes many minutes on lavapipe.
say "3/3 the webgpu conformance suite on this adapter"
filter=()
[ "$smoke" = true ] && filter=(--filter "two fresh processes")
# The suite gets what is left of 9.5 minutes (at least 60 s, at most 300 s), so the call ends inside its 10.
left=$((570 - ($(date +%s) - start)))
limit=$((left < 60 ? 60 : left > 300 ? 300 : left))
say "the suite's time limit: $limit s"
timeout "$limit" "$deno" test --no-check "${run_flags[@]}" "${filter[@]}" tests/conformance_webgpu_test.ts \
  >"$parts/conformance.txt" 2>&1
echo $? >"$parts/conformance.rc"
cat "$parts/conformance.txt"
result && say "done: $OUT/result.md" && cat "$OUT/result.md"
# log.txt is complete only once tee has read everything: close its pipe and wait for it.
exec >&- 2>&-
while kill -0 "$tee_pid" 2>/dev/null; do sleep 0.1; done
