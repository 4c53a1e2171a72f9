"""Re-cutting a stream of column batches (dicts of equal-length arrays) into batches of a fixed number of rows."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np


def _length(columns: dict) -> int:
    for value in columns.values():
        return len(value)
    return 0


def _concat(name: str, parts: list) -> Any:
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, np.ndarray) for p in parts):
        try:
            return np.concatenate(parts)
        except ValueError as e:
            raise ValueError(f"Field '{name}': batches with different cell shapes cannot be joined ({e})") from e
    import torch  # only reached for torch tensors

    return torch.cat(parts)


def rebatch_columns(batches: Iterable[dict], batch_size: int, drop_last: bool = False) -> Iterator[dict]:
    """Yields dicts of arrays (numpy or torch) with exactly ``batch_size`` rows from dicts of any row counts.

    The last batch has the rows left over (fewer than ``batch_size``) unless ``drop_last``. A batch that lies
    inside one input dict is a slice (a view, nothing copied); only a batch that spans input dicts is joined, and
    only its own rows are copied (the rest of the input dict is not).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    pending: list[dict] = []
    pending_rows = 0
    for columns in batches:
        rows = _length(columns)
        if rows == 0:
            continue
        start = 0
        if pending_rows:
            need = batch_size - pending_rows
            if rows < need:
                pending.append(columns)
                pending_rows += rows
                continue
            pending.append({k: v[:need] for k, v in columns.items()})
            yield {k: _concat(k, [p[k] for p in pending]) for k in pending[0]}
            pending, pending_rows, start = [], 0, need
        while rows - start >= batch_size:
            yield {k: v[start:start + batch_size] for k, v in columns.items()}
            start += batch_size
        if start < rows:
            pending, pending_rows = [{k: v[start:] for k, v in columns.items()}], rows - start
    if pending_rows and not drop_last:
        yield {k: _concat(k, [p[k] for p in pending]) for k in pending[0]}


def contiguous(value: Any) -> Any:
    """``value`` as a C-contiguous numpy array (one copy for strided views, e.g. fixed-shape NPY cells read in
    place from an Arrow buffer); other values and contiguous arrays are returned as they are."""
    if isinstance(value, np.ndarray) and not value.flags.c_contiguous:
        return np.ascontiguousarray(value)
    return value


def rows_to_columns(rows: list[dict]) -> dict:
    """Stacks row dicts into a dict of arrays (scalars become 1-d arrays, arrays gain a leading dimension)."""
    if not rows:
        return {}
    result = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        if any(v is None for v in values):
            result[name] = np.array(values, dtype=object)
            continue
        try:
            result[name] = np.stack([np.asarray(v) for v in values])
        except ValueError:
            result[name] = np.array(values + [None], dtype=object)[:-1]
    return result
