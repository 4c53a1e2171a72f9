"""Cache keys: a hash of the dataset URL, the piece, the columns, the transform (by its code and captured values,
equal across processes) and any extra discriminator."""
from __future__ import annotations

import hashlib
import json
import marshal
import os
import pickle
from typing import Any, Sequence

import numpy as np

__all__ = ["cache_key"]


def _callable_identity(func: Any) -> Any:
    """A description of ``func`` that is equal for the same code and captured values across processes."""
    if func is None:
        return None
    target = getattr(func, "__func__", func)  # bound methods: the function (and the instance's state below)
    code = getattr(target, "__code__", None)
    if code is None:  # a callable object: its class and state
        try:
            state = hashlib.sha256(pickle.dumps(func, protocol=4)).hexdigest()
        except Exception:
            state = f"id:{id(func)}"  # not picklable: unique to this object, so never a false hit
        return {"type": f"{type(func).__module__}.{type(func).__qualname__}", "state": state}
    closure = []
    for cell in getattr(target, "__closure__", None) or ():
        try:
            closure.append(hashlib.sha256(pickle.dumps(cell.cell_contents, protocol=4)).hexdigest())
        except Exception:
            closure.append(f"id:{id(cell.cell_contents)}")
    identity = {
        "name": f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}",
        "code": hashlib.sha256(marshal.dumps(code)).hexdigest(),
        "defaults": repr(getattr(target, "__defaults__", None)),
        "closure": closure,
    }
    if target is not func:
        identity["self"] = _callable_identity_of_instance(getattr(func, "__self__", None))
    return identity


def _callable_identity_of_instance(obj: Any) -> str:
    try:
        return hashlib.sha256(pickle.dumps(obj, protocol=4)).hexdigest()
    except Exception:
        return f"id:{id(obj)}"


def _transform_identity(transform_spec: Any) -> Any:
    if transform_spec is None:
        return None
    return {
        "func": _callable_identity(getattr(transform_spec, "func", None)),
        "edit_fields": [[str(part) for part in field] for field in getattr(transform_spec, "edit_fields", [])],
        "removed_fields": list(getattr(transform_spec, "removed_fields", []) or []),
        "selected_fields": getattr(transform_spec, "selected_fields", None),
    }


def cache_key(dataset_url: Any, piece_index: int, columns: Sequence[str] | None, transform_spec: Any = None,
              extra: Any = None) -> str:
    """The cache key of one row group read: a hex SHA-256 of the dataset URL (or URL list; a trailing ``/``
    ignored), the piece index, the column names (in order) and the transform's identity (the code, defaults
    and captured values of its function, and its field edits).

    :param extra: anything JSON-serialisable that also distinguishes the cached value (for example the output
        kind, ``'rows'`` or ``'batch'``, or a drop-partition number).
    """
    urls = [dataset_url] if isinstance(dataset_url, (str, os.PathLike)) else list(dataset_url)
    urls = [os.fspath(url).rstrip("/") or "/" for url in urls]
    if not isinstance(piece_index, (int, np.integer)) or isinstance(piece_index, bool):
        raise TypeError(f"piece_index must be an int, got {piece_index!r}")
    description = {
        "v": 1,
        "dataset": urls,
        "piece": int(piece_index),
        "columns": list(columns) if columns is not None else None,
        "transform": _transform_identity(transform_spec),
        "extra": extra,
    }
    text = json.dumps(description, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
