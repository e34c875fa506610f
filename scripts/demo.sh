#!/usr/bin/env bash
# Install napari-colorize with its bundled model and colorize a grayscale sample photo.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[pyqt]"
.venv/bin/napari-colorize demo -o demo-output
