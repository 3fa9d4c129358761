#!/usr/bin/env bash
# Create .venv with the CPU build of torch and salsa2 (editable) with its training and test extras.
# Idempotent: re-running only installs what changed. Offline-safe apart from the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The CPU wheel first: a bare `torch` requirement would otherwise pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[train,test]"
# Packages whose declared dependencies (timm, torchaudio) break the CPU torch: installed without them.
if [ -s requirements-nodeps.txt ]; then
  .venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
fi
# DVC must never phone home (also set in .dvc/config).
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
echo "salsa2 environment ready: $(.venv/bin/python -c 'import torch, salsa2; print("torch", torch.__version__, "salsa2", salsa2.__version__)')"
