"""The command-line tools answer ``--help`` without importing the engine (issue #15): the parser is built before
numpy, pyarrow, pandas, Spark, TensorFlow or torch load; the names the modules have always exported still resolve
(lazily, see ``petastorm._lazy``)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from petastorm._lazy import lazy_dir, lazy_exports

HEAVY = ("numpy", "pyarrow", "pandas", "pyspark", "tensorflow", "torch")

# module, installed script (None: no script of its own), program name in the usage line
TOOLS = [
    ("petastorm.benchmark.throughput", "petastorm-throughput", "petastorm-throughput"),
    ("petastorm.tools.copy_dataset", "petastorm-copy-dataset", "petastorm-copy-dataset"),
    ("petastorm.etl.petastorm_generate_metadata", "petastorm-generate-metadata", "petastorm-generate-metadata"),
    ("petastorm.benchmark.cli", None, "petastorm-throughput"),
]
IDS = [module for module, _, _ in TOOLS]

# Imports the tool, answers --help through its entry point (main() reads sys.argv, as the installed script
# does), then prints which heavy modules got imported on the last line of stdout.
_PROBE = """
import importlib, json, sys
module_name, prog, heavy = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
module = importlib.import_module(module_name)
sys.argv = [prog, "--help"]
try:
    module.main()
    code = "returned"
except SystemExit as e:
    code = e.code
print()
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


def _run(args, **kwargs):
    env = dict(os.environ, COLUMNS="100")
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, **kwargs)


@pytest.mark.parametrize("module,script,prog", TOOLS, ids=IDS)
def test_help_as_a_module(module, script, prog):
    proc = _run([sys.executable, "-m", module, "--help"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {prog} "), proc.stdout
    assert "--help" in proc.stdout


@pytest.mark.parametrize("module,script,prog", [t for t in TOOLS if t[1]], ids=[t[0] for t in TOOLS if t[1]])
def test_help_of_the_installed_script(module, script, prog):
    path = Path(sys.executable).parent / script
    if not path.exists():
        pytest.skip(f"{script} is not installed next to {sys.executable}")
    proc = _run([str(path), "--help"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {prog} "), proc.stdout


@pytest.mark.parametrize("module,script,prog", TOOLS, ids=IDS)
def test_help_imports_no_heavy_module(module, script, prog):
    proc = _run([sys.executable, "-c", _PROBE, module, prog, ",".join(HEAVY)])
    assert proc.returncode == 0, proc.stderr
    *help_lines, last = proc.stdout.rstrip("\n").split("\n")
    result = json.loads(last)
    assert result["code"] == 0
    assert "\n".join(help_lines).startswith(f"usage: {prog} ")
    assert result["loaded"] == [], f"--help of {module} imported {result['loaded']}"


def test_throughput_help_is_plain_text():
    proc = _run([sys.executable, "-m", "petastorm.benchmark.throughput", "--help"])
    assert proc.returncode == 0, proc.stderr
    for markup in ("``", ":func:", ":data:", ":class:", ":mod:"):
        assert markup not in proc.stdout, markup
    assert "samples per second" in proc.stdout


def test_lazy_names_still_resolve_to_their_homes():
    # In a fresh process: the name is absent from the module's dict until first use, then is its home's object.
    code = """
import sys
from petastorm.tools import copy_dataset
assert "materialize_dataset" not in vars(copy_dataset) and "numpy" not in sys.modules
assert "materialize_dataset" in dir(copy_dataset)
from petastorm.etl.dataset_metadata import materialize_dataset
assert copy_dataset.materialize_dataset is materialize_dataset
assert vars(copy_dataset)["materialize_dataset"] is materialize_dataset
from petastorm.etl import petastorm_generate_metadata as g, dataset_metadata
assert g.dataset_metadata is dataset_metadata
from petastorm.benchmark.throughput import *  # noqa: F403  (lazy names in __all__ resolve too)
print("ok")
"""
    proc = _run([sys.executable, "-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_lazy_exports_helper(tmp_path, monkeypatch):
    import types

    module = types.ModuleType("petastorm_lazy_probe")
    homes = {"dumps": "json", "path": "os.path", "os": "os"}
    module.__getattr__ = lazy_exports(module.__name__, homes)
    module.__dir__ = lazy_dir(module.__name__, homes)
    module.own = 1
    monkeypatch.setitem(sys.modules, module.__name__, module)

    assert module.dumps is json.dumps and vars(module)["dumps"] is json.dumps  # loaded, then cached
    assert module.path is os.path
    assert module.os is os  # a module exported under its own last name
    with pytest.raises(AttributeError, match="petastorm_lazy_probe.*nothing"):
        module.nothing  # noqa: B018
    assert not hasattr(module, "loads")
    assert {"dumps", "path", "os", "own"} <= set(dir(module))
