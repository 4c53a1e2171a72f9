"""Module-level lazy re-exports (PEP 562), so that command-line modules answer ``--help`` without importing
numpy, pyarrow, pandas, Spark or TensorFlow, yet keep every name they have always exported::

    _LAZY = {"materialize_dataset": "petastorm.etl.dataset_metadata"}
    __getattr__, __dir__ = lazy_module(__name__, _LAZY)

The first ``module.materialize_dataset`` (or ``from module import materialize_dataset``) imports
``petastorm.etl.dataset_metadata`` and stores the object in the module, so later look-ups are ordinary ones.

A module's ``__getattr__`` is not consulted for global names used by the module's own functions: those must
import the name where they use it.
"""
from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports", "lazy_dir", "lazy_module"]


def lazy_exports(module_name: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that loads ``name`` from the module ``homes[name]`` on first access.

    :param module_name: the ``__name__`` of the module defining the ``__getattr__`` (``'__main__'`` works too).
    :param homes: exported name -> dotted name of the module it is taken from (or of the module that is the
        exported object itself, when that module's last name component is the exported name).
    :raises AttributeError: (from the returned function) for names not in ``homes``.
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        home_module = import_module(home)
        if home.rpartition(".")[2] == name and not hasattr(home_module, name):
            value: Any = home_module  # the module itself: {"dataset_metadata": "petastorm.etl.dataset_metadata"}
        else:
            value = getattr(home_module, name)
        module = sys.modules.get(module_name)
        if module is not None:
            setattr(module, name, value)  # cache: later look-ups do not come here again
        return value

    return __getattr__


def lazy_dir(module_name: str, homes: Mapping[str, str]) -> Callable[[], list[str]]:
    """A module ``__dir__`` listing the module's own names and the lazily exported ones."""

    def __dir__() -> list[str]:
        module = sys.modules.get(module_name)
        own = set(vars(module)) if module is not None else set()
        return sorted(own | set(homes))

    return __dir__


def lazy_module(module_name: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` of a module re-exporting ``homes`` lazily (:func:`lazy_exports`, :func:`lazy_dir`)."""
    return lazy_exports(module_name, homes), lazy_dir(module_name, homes)
