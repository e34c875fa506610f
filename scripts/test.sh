#!/usr/bin/env bash
# Install what the tests need (system packages included) and run the whole suite under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  apt-get install -y -qq xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-icccm4 \
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 \
    libxcb-shape0 libxcb-cursor0 libfontconfig1 libdbus-1-3 >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# the CPU wheel first: a bare torch requirement would pull a multi-GB CUDA build
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[testing]"
.venv/bin/ruff check src tests benchmarks
xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
