"""Optional dependencies (the package's extras): importing one that is missing says which extra installs it."""
from __future__ import annotations

from importlib import import_module
from types import ModuleType

__all__ = ["require"]

_EXTRA_OF = {"tensorflow": "tf", "torch": "torch", "jax": "jax"}


def require(module: str, feature: str) -> ModuleType:
    """``import module`` for ``feature``; if its package is missing, a ``ModuleNotFoundError`` that names the
    ``pip install petastorm[...]`` extra providing it."""
    try:
        return import_module(module)
    except ModuleNotFoundError as e:
        top = module.partition(".")[0]
        if e.name != top:
            raise  # something inside the package is missing: not ours to re-word
        extra = _EXTRA_OF.get(top)
        how = f"pip install 'petastorm[{extra}]'" if extra else f"pip install {top}"
        raise ModuleNotFoundError(f"{feature} needs {top}, which is not installed: {how}", name=top) from e
