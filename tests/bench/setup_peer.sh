#!/usr/bin/env bash
# Installs the PyTorch peer of `deno task bench:zoo` from PyPI into a venv:
#   ${F16REPRO_TOOLS:-$HOME/.cache/f16repro-tools}/peer-venv
# PyPI's Linux torch wheel is the CUDA build: it does not import without its nvidia-* packages, even on a
# CPU (torch 2.5.1 installed with --no-deps fails with "libcublas.so.*[0-9] not found"), so they come too,
# about 5 GB in all (docs/benchmarks.md, "Zoo"). The peer itself runs on the CPU only.
# Usage: bash tests/bench/setup_peer.sh        (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

TORCH_VERSION=2.5.1
# torch's own dependencies that it does not pin exactly, pinned here so that every machine gets the same peer
# (the nvidia-* packages and triton are pinned by torch itself).
PINS=(filelock==3.16.1 typing-extensions==4.12.2 sympy==1.13.1 mpmath==1.3.0 networkx==3.4.2 jinja2==3.1.4
  MarkupSafe==3.0.2 fsspec==2024.10.0 numpy==2.1.3)

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "setup_peer.sh: unknown argument '$1' (expected none or --help)" >&2; exit 2 ;;
esac

venv="${F16REPRO_TOOLS:-$HOME/.cache/f16repro-tools}/peer-venv"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "setup_peer.sh: '$python' not found (set PYTHON)" >&2; exit 1; }

start=$(date +%s)
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet "torch==$TORCH_VERSION" "${PINS[@]}"

# A CPU matmul and a backward pass: what the peer needs of torch.
check='import torch; x = torch.rand(4, 4, requires_grad=True); (x @ x).sum().backward(); print(torch.__version__)'
version=$("$venv/bin/python" -c "$check")
echo "torch $version in $venv ($(du -sh "$venv" | cut -f1), $(($(date +%s) - start)) s)"
