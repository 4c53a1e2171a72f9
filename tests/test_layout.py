"""The layout rules of docs/architecture.md, checked on the source tree: every module of the package is in one layer
of the import contract (pyproject.toml), modules stay under 400 lines and functions under 60 (or say why at their
top)."""
import ast
import pathlib
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "petastorm"
# Package plumbing that every layer may use: the lazy root, the optional-extra import helper, the version.
UNLAYERED = {"petastorm", "petastorm._lazy", "petastorm._extras", "petastorm._version", "petastorm.etl",
             "petastorm.reader_impl"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> dict:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _layers() -> list:
    with open(ROOT / "pyproject.toml", "rb") as f:
        contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["type"] == "layers"]
    return [[m.strip() for m in layer.split(":")] for layer in contract["layers"]]


def test_every_module_is_in_one_layer():
    layers = _layers()
    assert len(layers) == 5
    listed = [m for layer in layers for m in layer]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    modules = _modules()
    assert not [m for m in listed if m not in modules], "the contract names a module that does not exist"
    homeless = [m for m in modules if m not in UNLAYERED and not any(m == x or m.startswith(x + ".") for x in listed)]
    assert homeless == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_and_function_sizes(name):
    path = _modules()[name]
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    long = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES and "reason:" not in (ast.get_docstring(node) or ""):
            long.append(f"{node.name} (line {node.lineno})")
    assert long == []
