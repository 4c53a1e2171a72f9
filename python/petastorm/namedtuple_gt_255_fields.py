"""Namedtuples with more than 255 fields (the original's ``petastorm.namedtuple_gt_255_fields``).

Python 3.7 and later allow namedtuples of any number of fields, so this is ``collections.namedtuple`` under the
original's signature.
"""
from __future__ import annotations, print_function

import sys
from typing import Iterable

from petastorm.unischema import _new_gt_255_compatible_namedtuple

__all__ = ["namedtuple_gt_255_fields"]


def namedtuple_gt_255_fields(typename: str, field_names: str | Iterable[str], verbose: bool = False,
                             rename: bool = False, module: str | None = None) -> type:
    """A ``collections.namedtuple`` class ``typename`` with ``field_names``.

    :param typename: the class name.
    :param field_names: a sequence of names, or one string of names separated by spaces or commas.
    :param verbose: accepted for compatibility; ignored (there is no generated class source to print).
    :param rename: replace invalid or duplicate field names with positional names (``_0``, ``_1``...).
    :param module: the class's ``__module__`` (needed for pickling); by default the caller's module.
    """
    if module is None:
        try:
            module = sys._getframe(1).f_globals.get("__name__", "__main__")
        except (AttributeError, ValueError):
            pass
    return _new_gt_255_compatible_namedtuple(typename, field_names, rename=rename, module=module)
