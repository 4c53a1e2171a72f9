"""Every module path and name of Petastorm 0.13.1's import surface imports from this package, and every
function or class the original documents with a signature takes the original's parameters first, in its order
(ours may add keyword arguments after them). The list is ``tests/data/petastorm-0.13.1-surface.json``, made
from the original's own modules on its newest working stack."""
import importlib
import inspect
import json
from pathlib import Path

import pytest

SURFACE = json.loads((Path(__file__).parent / "data" / "petastorm-0.13.1-surface.json").read_text())
NAMES = [(module, name, meta) for module, info in sorted(SURFACE.items())
         for name, meta in sorted(info["names"].items())]


def _parameters(obj):
    params = list(inspect.signature(obj).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    return [p.name for p in params]


def test_the_surface_list_is_whole():
    assert len(SURFACE) == 57
    assert len(NAMES) > 250


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_module_imports(module):
    importlib.import_module(module)


@pytest.mark.parametrize("module,name,meta", NAMES, ids=[f"{m}.{n}" for m, n, _ in NAMES])
def test_name_is_there_with_the_original_parameters(module, name, meta):
    obj = getattr(importlib.import_module(module), name)
    if meta["kind"] == "class":
        assert inspect.isclass(obj), f"{module}.{name} should be a class"
    wanted = [p.lstrip("*") for p in meta["params"] or [] if p != "self"]
    if wanted:
        ours = _parameters(obj)
        assert ours[:len(wanted)] == wanted, f"{module}.{name}{tuple(ours)} does not begin with {tuple(wanted)}"


@pytest.mark.parametrize("module,name,meta", [n for n in NAMES if n[2]["from"]],
                         ids=[f"{m}.{n}" for m, n, meta in NAMES if meta["from"]])
def test_reexport_is_the_same_object_as_its_home(module, name, meta):
    home = importlib.import_module(meta["from"])
    if not hasattr(home, name):
        pytest.skip(f"{meta['from']}.{name} is itself only a re-export in the original")
    assert getattr(importlib.import_module(module), name) is getattr(home, name)
