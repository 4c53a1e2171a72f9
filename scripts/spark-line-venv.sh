#!/usr/bin/env bash
# A virtualenv for one Spark line's focused test suite: that line's pyspark with the locked versions of what the
# suite needs (numpy, pyarrow, pandas, pillow, pytest...), and this package (editable, no dependencies).
# Usage: scripts/spark-line-venv.sh PYSPARK_VERSION VENV_DIR
# Everything comes through uv's cache (~/.cache/uv), so a second build of the same venv downloads nothing; pyspark
# from its wheel, built once (scripts/pyspark-wheel.sh).
set -euo pipefail

PYSPARK_VERSION="$1"
VENV_DIR="$2"
PYTHON="${PYTHON:-python3}"
UV="${UV:-.venv/bin/uv}"

rm -rf "$VENV_DIR"
"$PYTHON" -m venv --without-pip "$VENV_DIR"
# The lock's pins as constraints, except pyspark and py4j (each pyspark pins its own py4j).
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
grep -Ev '^(pyspark|py4j)==' requirements/dev.lock > "$constraints"
wheelhouse="$(scripts/pyspark-wheel.sh "$PYSPARK_VERSION")"
"$UV" pip install --quiet --python "$VENV_DIR/bin/python" -c "$constraints" --find-links "$wheelhouse" \
    "pyspark==$PYSPARK_VERSION" numpy pyarrow pandas pillow opencv-python-headless fsspec pytest pytest-timeout build setuptools wheel
"$UV" pip install --quiet --python "$VENV_DIR/bin/python" --no-deps -e .
"$VENV_DIR/bin/python" -c "import pyspark, numpy, pyarrow; print('pyspark', pyspark.__version__, \
'numpy', numpy.__version__, 'pyarrow', pyarrow.__version__)"
