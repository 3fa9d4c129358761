#!/usr/bin/env bash
# Create .venv with an explicitly chosen torch build and salsa2 (editable) with its training, test and PyAV extras.
# Idempotent: re-running only installs what changed. Offline-safe apart from the package registry.
#
#   SALSA2_TORCH=cpu    (default) torch 2.13.0+cpu: from your pip index / wheelhouse if it has it, otherwise from
#                       the PyTorch CPU index (never the ~4 GB CUDA build PyPI serves on Linux x86-64)
#   SALSA2_TORCH=cu126  (or any cuXYZ PyTorch publishes 2.13.0 for; see pytorch.org) the CUDA build from
#                       https://download.pytorch.org/whl/cuXYZ, for GPU machines
#   SALSA2_TORCH=keep   leave the torch already in .venv alone
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch first, explicitly: a bare `torch` requirement would pull whatever build the index serves.
TORCH_VERSION=2.13.0
BUILD=${SALSA2_TORCH:-cpu}
case "$BUILD" in
  keep) ;;
  cpu)
    if [ "$(uname -s)" = Darwin ]; then  # macOS wheels are CPU builds without a +cpu tag
      .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"
    else
      .venv/bin/python -m pip install -q "torch==$TORCH_VERSION+cpu" 2>/dev/null \
        || .venv/bin/python -m pip install -q "torch==$TORCH_VERSION+cpu" \
             --extra-index-url https://download.pytorch.org/whl/cpu
    fi ;;
  cu[0-9]*)
    .venv/bin/python -m pip install -q "torch==$TORCH_VERSION" --index-url "https://download.pytorch.org/whl/$BUILD" ;;
  *) echo "SALSA2_TORCH=$BUILD: use cpu, cuXYZ (e.g. cu126) or keep" >&2; exit 2 ;;
esac
.venv/bin/python -m pip install -q -e ".[train,test,av]"
# Packages whose declared dependencies (timm, torchaudio) break the CPU torch: installed without them.
if [ -s requirements-nodeps.txt ]; then
  .venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
fi
# DVC must never phone home (also set in .dvc/config).
.venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
echo "salsa2 environment ready: $(.venv/bin/python -c 'import torch, salsa2; print("torch", torch.__version__, "CUDA", torch.cuda.is_available(), "salsa2", salsa2.__version__)')"
