#!/usr/bin/env bash
# Builds a virtualenv with the original Petastorm 0.13.1 on its newest working stack, for the interop test
# (tests/test_legacy_interop.py). Usage: scripts/legacy-venv.sh [VENV_DIR]   (default: .legacy-venv)
# Then: PETASTORM_LEGACY_PYTHON=$VENV_DIR/bin/python pytest tests/test_legacy_interop.py
set -euo pipefail

VENV_DIR="${1:-.legacy-venv}"
PYTHON="${PYTHON:-python3.11}"

"$PYTHON" -m venv "$VENV_DIR"
PIP="$VENV_DIR/bin/python -m pip"
$PIP install --quiet --upgrade pip
# Petastorm 0.13.1 imports pyarrow.filesystem (removed in pyarrow 16) and runs on numpy 1.x.
$PIP install --quiet "pyarrow==14.0.2" "numpy==1.26.4" "pyspark==3.5.5" "pandas<2.2"
# --no-deps: its declared dependencies would pull a different pyarrow/numpy; install the small ones by hand.
$PIP install --quiet --no-deps "petastorm==0.13.1"
$PIP install --quiet dill diskcache psutil pyzmq fsspec six future packaging
# Its image codec (CompressedImageCodec) decodes with OpenCV; 4.10 is the last line built for numpy 1.x too.
$PIP install --quiet "opencv-python-headless>=4.8,<4.11"
"$VENV_DIR/bin/python" -c "import petastorm, pyarrow, numpy, cv2; print('petastorm', petastorm.__version__, \
'pyarrow', pyarrow.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
echo "export PETASTORM_LEGACY_PYTHON=$(cd "$VENV_DIR" && pwd)/bin/python"
