#!/usr/bin/env bash
# pyspark is published as a source distribution only, and uv builds it again (about 30 s and 1 GB of cache) every
# time an environment installs it. This builds each pyspark release's wheel once, into a wheelhouse that installs
# then take it from (`uv pip install --find-links "$(scripts/pyspark-wheel.sh 4.3.0)" ...`).
# Usage: scripts/pyspark-wheel.sh PYSPARK_VERSION   prints the wheelhouse folder
#   PETASTORM_WHEELHOUSE  the folder (default: ~/.cache/petastorm-wheels)
#   PIP_PYTHON            a Python with pip, to build with (default: .venv/bin/python)
set -euo pipefail

VERSION="$1"
WHEELHOUSE="${PETASTORM_WHEELHOUSE:-$HOME/.cache/petastorm-wheels}"
PIP_PYTHON="${PIP_PYTHON:-.venv/bin/python}"

wheel="$WHEELHOUSE/pyspark-$VERSION-py2.py3-none-any.whl"
if [ ! -f "$wheel" ]; then
    mkdir -p "$WHEELHOUSE"
    build="$(mktemp -d "$WHEELHOUSE/.build-XXXXXX")"
    trap 'rm -rf "$build"' EXIT
    "$PIP_PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$build" "pyspark==$VERSION" >&2
    mv "$build/$(basename "$wheel")" "$wheel"  # whole or not at all: an interrupted build leaves no wheel
fi
echo "$WHEELHOUSE"
