#!/usr/bin/env bash
# Installs the PyTorch peer of `deno task bench:zoo` from PyPI into a venv:
#   ${F16REPRO_TOOLS:-$HOME/.cache/f16repro-tools}/peer-venv
# PyPI's Linux torch wheel is the CUDA build and depends on nvidia-* packages (gigabytes). The peer runs on the
# CPU only, so torch is installed without its dependencies plus the small pure-Python ones it imports; when
# that torch does not import and run (a CUDA library it cannot do without), the script says so and installs
# torch with every dependency instead (--with-deps does that from the start).
# Usage: bash tests/bench/setup_peer.sh [--with-deps]
set -euo pipefail

TORCH_VERSION=2.5.1
# torch 2.5.1's own pins and the versions its imports need, fixed so that every machine gets the same peer.
SMALL_DEPS=(filelock==3.16.1 typing-extensions==4.12.2 sympy==1.13.1 mpmath==1.3.0 networkx==3.4.2
  jinja2==3.1.4 MarkupSafe==3.0.2 fsspec==2024.10.0 numpy==2.1.3)

with_deps=false
for arg in "$@"; do
  case "$arg" in
    --with-deps) with_deps=true ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup_peer.sh: unknown flag '$arg' (expected --with-deps or --help)" >&2; exit 2 ;;
  esac
done

venv="${F16REPRO_TOOLS:-$HOME/.cache/f16repro-tools}/peer-venv"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "setup_peer.sh: '$python' not found (set PYTHON)" >&2; exit 1; }

start=$(date +%s)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)

# A CPU matmul and a backward pass: what the peer needs of torch.
check='import torch; x = torch.rand(4, 4, requires_grad=True); (x @ x).sum().backward(); print(torch.__version__)'
if ! $with_deps; then
  "${pip[@]}" --no-deps "torch==$TORCH_VERSION" "${SMALL_DEPS[@]}"
  if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "setup_peer.sh: torch $TORCH_VERSION without its nvidia-* dependencies does not run; installing them" >&2
    with_deps=true
  fi
fi
if $with_deps; then "${pip[@]}" "torch==$TORCH_VERSION" "${SMALL_DEPS[@]}"; fi

version=$("$venv/bin/python" -c "$check")
echo "torch $version in $venv ($(du -sh "$venv" | cut -f1), $(( $(date +%s) - start )) s)"
