#!/usr/bin/env bash
# Create .venv and install tinynas with its pinned dependencies, if not done already.
# Re-runs only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TINYNAS_VENV:-.venv}
STAMP="$VENV/.tinynas-installed"
if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt scripts/setup.sh ]]; then
    exit 0
fi
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first, pinned: any unpinned request would fetch the CUDA build (several GB).
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e ".[dev]"
# Both pin the distribution name `tensorflow`, which tensorflow-cpu does not provide.
"${PIP[@]}" --no-deps onnx2tf==1.29.24 tf-keras==2.19.0
touch "$STAMP"
