"""Reader items as columns or rows, and re-cutting a stream of column batches (dicts of equal-length arrays) into
batches of a fixed number of rows: the one place the adapters turn what a reader yields into what they feed."""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Iterator

import numpy as np


def item_columns(reader: Any, item: Any, prepare: Callable[[dict], None] | None = None) -> dict:
    """A reader item as ``{field: array}`` with a leading batch dimension: a batch reader's item as it is, a row
    reader's row as a batch of one (a null as a one-element object array). ``prepare`` may change the item's dict
    in place first (e.g. type promotion)."""
    columns = item._asdict()
    if prepare is not None:
        prepare(columns)
    if reader.batched_output:
        return {k: np.asarray(v) for k, v in columns.items()}
    return {k: np.asarray(v)[None] if v is not None else np.array([None], dtype=object) for k, v in columns.items()}


def item_rows(reader: Any, item: Any, prepare: Callable[[dict], None] | None = None) -> Iterator[dict]:
    """The rows of a reader item as ``{field: value}`` dicts (one for a row reader, every row of a batch for a batch
    reader); ``prepare`` as for :func:`item_columns`."""
    columns = item._asdict()
    if prepare is not None:
        prepare(columns)
    if not reader.batched_output:
        yield columns
        return
    names = list(columns)
    for values in zip(*(columns[n] for n in names)):
        yield dict(zip(names, values))


def _length(columns: dict) -> int:
    for value in columns.values():
        return len(value)
    return 0


def _concat(name: str, parts: list, buffers: "BatchBuffers | None" = None) -> Any:
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, np.ndarray) for p in parts):
        try:
            if buffers is not None and all(p.dtype == parts[0].dtype for p in parts) \
                    and parts[0].dtype.kind in "biufc" and all(p.shape[1:] == parts[0].shape[1:] for p in parts):
                return buffers.concatenate(parts)
            return np.concatenate(parts)
        except ValueError as e:
            raise ValueError(f"Field '{name}': batches with different cell shapes cannot be joined ({e})") from e
    import torch  # only reached for torch tensors

    return torch.cat(parts)


def rebatch_columns(batches: Iterable[dict], batch_size: int, drop_last: bool = False,
                    buffers: "BatchBuffers | None" = None) -> Iterator[dict]:
    """Yields dicts of arrays (numpy or torch) with exactly ``batch_size`` rows from dicts of any row counts.

    The last batch has the rows left over (fewer than ``batch_size``) unless ``drop_last``. A batch that lies
    inside one input dict is a slice (a view, nothing copied); only a batch that spans input dicts is joined, and
    only its own rows are copied (the rest of the input dict is not), into an array from ``buffers`` when given.
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
            yield {k: _concat(k, [p[k] for p in pending], buffers) for k in pending[0]}
            pending, pending_rows, start = [], 0, need
        while rows - start >= batch_size:
            yield {k: v[start:start + batch_size] for k, v in columns.items()}
            start += batch_size
        if start < rows:
            pending, pending_rows = [{k: v[start:] for k, v in columns.items()}], rows - start
    if pending_rows and not drop_last:
        yield {k: _concat(k, [p[k] for p in pending], buffers) for k in pending[0]}


_ALIGN = 64  # TensorFlow takes 64-byte aligned contiguous arrays without copying them


class BatchBuffers:
    """Contiguous, 64-byte aligned numpy arrays for batches, recycled once nothing references them any more.

    A batch handed to TensorFlow or torch is copied out of a row group's strided view once. A fresh array for
    every batch costs page faults on every allocation (glibc serves large blocks with ``mmap``; once TensorFlow's
    generator dataset has set ``M_TRIM_THRESHOLD``, for every block of 128 KiB or more), which costs more than the
    copy itself. These arrays are
    reused instead, but only when no one holds them: each array is a view of a raw block that only the pool and
    the views derived from it reference (numpy collapses ``base`` to the block, torch and TensorFlow hold the
    array they wrap), so the block's reference count tells whether anything (a tensor, a view, a queue) still
    uses it. Otherwise a new block is allocated; at most ``max_blocks`` blocks per shape are kept.
    """

    def __init__(self, max_blocks: int = 8) -> None:
        self._max_blocks = max_blocks
        self._blocks: dict[tuple, list[np.ndarray]] = {}

    def empty(self, shape: tuple, dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        blocks = self._blocks.setdefault((tuple(shape), dtype.str), [])
        block = None
        for candidate in blocks:
            # References: the list, ``candidate`` and getrefcount's argument; any more is a live user.
            if sys.getrefcount(candidate) <= 3:
                block = candidate
                break
        if block is None:
            block = np.empty(nbytes + _ALIGN, dtype=np.uint8)
            if len(blocks) < self._max_blocks:
                blocks.append(block)
        offset = -block.ctypes.data % _ALIGN
        return block[offset:offset + nbytes].view(dtype).reshape(shape)

    def copy(self, value: np.ndarray) -> np.ndarray:
        """A contiguous aligned copy of ``value``."""
        out = self.empty(value.shape, value.dtype)
        np.copyto(out, value, casting="no")
        return out

    def concatenate(self, parts: list) -> np.ndarray:
        out = self.empty((sum(len(p) for p in parts),) + parts[0].shape[1:], parts[0].dtype)
        np.concatenate(parts, out=out, casting="no")
        return out

    def contiguous(self, value: Any) -> Any:
        """Numeric numpy arrays that are not contiguous (strided views) as a recycled copy; others as they are."""
        if isinstance(value, np.ndarray) and not value.flags.c_contiguous and value.dtype.kind in "biufc":
            return self.copy(value)
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
