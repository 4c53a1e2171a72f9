"""Batched shuffling buffers of columns (the original's ``petastorm.reader_impl.pytorch_shuffling_buffer``).

``add_many`` takes one batch of rows as a list of columns (numpy arrays, torch tensors or sequences of equal
length); ``retrieve`` returns a batch of ``batch_size`` rows as a list of torch tensors, in the columns' order.
:class:`petastorm.pytorch.BatchedDataLoader` shuffles in :class:`BatchedRandomShufflingBuffer`. A buffer is meant
for one thread.
"""
from __future__ import annotations

import abc
from typing import Any, Sequence

import numpy as np
import torch

from petastorm._batching import BatchBuffers
from petastorm.reader_impl.shuffling_buffer import ShufflingBufferBase

__all__ = ["BatchedShufflingBufferBase", "BatchedNoopShufflingBuffer", "BatchedRandomShufflingBuffer"]


class BatchedShufflingBufferBase(ShufflingBufferBase):
    """The interface of a batched shuffling buffer (items are rows, :meth:`retrieve` returns a batch of them as a
    list of column tensors); :meth:`add_many` turns columns into tensors for ``_add_many``.

    :param batch_size: rows per :meth:`retrieve` (the last batch after :meth:`finish` may be smaller).
    """

    def __init__(self, batch_size: int = 1) -> None:
        self._keys = None
        self.batch_size = batch_size

    def add_many(self, items: Sequence[Any]) -> None:
        """Adds one batch of rows given as a list of columns of equal length."""
        self._add_many([torch.as_tensor(v) for v in items])

    @abc.abstractmethod
    def _add_many(self, items: list) -> None:
        """Adds columns already converted to tensors."""


class BatchedNoopShufflingBuffer(BatchedShufflingBufferBase):
    """Rows come out in the order they were added, ``batch_size`` at a time (no shuffling)."""

    def __init__(self, batch_size: int = 1) -> None:
        super().__init__(batch_size=batch_size)
        self._columns: list = []
        self._start = 0
        self._size = 0
        self._done_adding = False

    def _add_many(self, items: list) -> None:
        if self._columns:  # keep only the rows not handed out yet, followed by the new ones
            items = [torch.cat([held[self._start:], new]) for held, new in zip(self._columns, items)]
        self._columns, self._start = items, 0
        self._size = len(items[0])

    def retrieve(self) -> list:
        n = min(self.batch_size, self._size)
        batch = [column[self._start:self._start + n] for column in self._columns]
        self._start += n
        self._size -= n
        return batch

    def can_add(self) -> bool:
        return True

    def can_retrieve(self) -> bool:
        return self._size >= self.batch_size or (self._done_adding and self._size > 0)

    @property
    def size(self) -> int:
        return self._size

    def finish(self) -> None:
        self._done_adding = True


class BatchedRandomShufflingBuffer(BatchedShufflingBufferBase):
    """Each batch is a uniformly random sample, without replacement, of all rows held.

    Columns are kept in preallocated buffers: numpy arrays in numpy buffers (numpy copies strided views fast),
    torch tensors in torch buffers on their device. A batch is gathered in one indexed copy and the holes it
    leaves are filled with the last rows held (at most ``batch_size`` rows move), so every row comes out exactly
    once. The buffers start at ``shuffling_buffer_capacity`` rows and double when a batch of rows does not fit.

    :param shuffling_buffer_capacity: :meth:`add_many` may be called while fewer rows than this are held.
    :param min_after_retrieve: :meth:`retrieve` may be called while ``min_after_retrieve + batch_size - 1`` rows
        (and at least one) are held, or while any are held after :meth:`finish`.
    :param extra_capacity: how far one :meth:`add_many` may take the buffer above ``shuffling_buffer_capacity``;
        adding more raises ``RuntimeError``.
    :param batch_size: rows per :meth:`retrieve`.
    :param seed: seeds the sampling (``None``: not reproducible).
    """

    def __init__(self, shuffling_buffer_capacity: int, min_after_retrieve: int, extra_capacity: int = 1000,
                 batch_size: int = 1, *, seed: int | None = None) -> None:
        super().__init__(batch_size=batch_size)
        self._capacity = shuffling_buffer_capacity
        self._min_after_retrieve = min_after_retrieve
        self._extra_capacity = extra_capacity
        self._items: list | None = None
        self._size = 0
        self._done_adding = False
        self._rng = np.random.default_rng(seed)
        self._buffers = BatchBuffers()

    def add_many(self, items: Sequence[Any]) -> None:
        """Adds one batch of rows given as columns; numpy arrays are kept as numpy, anything else as tensors."""
        self._add_many([v if isinstance(v, (np.ndarray, torch.Tensor)) else torch.as_tensor(v) for v in items])

    def _add_many(self, items: list) -> None:
        if self._done_adding:
            raise RuntimeError("Can not call add_many after finish() was called")
        if not self.can_add():
            raise RuntimeError("Can not add rows: the buffer is full (check can_add() first)")
        new_size = self._size + len(items[0])
        limit = self._capacity + self._extra_capacity
        if new_size > limit:
            raise RuntimeError(f"Adding {len(items[0])} rows to the {self._size} held would exceed the maximum of "
                               f"{limit} (shuffling_buffer_capacity + extra_capacity)")
        allocated = self._capacity if self._items is None else len(self._items[0])
        capacity = max(allocated, 1)
        while capacity < new_size:
            capacity *= 2
        if self._items is None:
            self._items = [_empty_like_rows(v, capacity) for v in items]
        elif capacity > allocated:
            grown = []
            for held in self._items:
                bigger = _empty_like_rows(held, capacity)
                bigger[:self._size] = held[:self._size]
                grown.append(bigger)
            self._items = grown
        for held, new in zip(self._items, items):
            _assign(held, self._size, new_size, new)
        self._size = new_size

    def retrieve(self) -> list:
        if not self.can_retrieve():
            raise RuntimeError("Can not retrieve a batch: too few rows are held (check can_retrieve() first)")
        n = min(self.batch_size, self._size)
        size = self._size
        idx = self._rng.choice(size, n, replace=False) if n < size else self._rng.permutation(size)
        keep = size - n
        holes = idx[idx < keep]
        if len(holes):
            drawn_from_tail = np.zeros(n, dtype=bool)
            drawn_from_tail[idx[idx >= keep] - keep] = True
            movers = keep + np.flatnonzero(~drawn_from_tail)
        batch = []
        for held in self._items:
            if isinstance(held, np.ndarray):
                out = self._buffers.empty((n,) + held.shape[1:], held.dtype)
                np.take(held, idx, axis=0, out=out)
                batch.append(torch.from_numpy(out))
                if len(holes):
                    held[holes] = held[movers]
            else:
                batch.append(held[torch.from_numpy(idx)])
                if len(holes):
                    held[torch.from_numpy(holes)] = held[torch.from_numpy(movers)]
        self._size = keep
        return batch

    def can_add(self) -> bool:
        return self._size < self._capacity and not self._done_adding

    def can_retrieve(self) -> bool:
        # (size > 0: with min_after_retrieve 0 and batch_size 1 the threshold is 0, and an empty buffer must not
        # yield empty batches forever)
        return self._size > 0 and (self._size >= self._min_after_retrieve + self.batch_size - 1 or self._done_adding)

    @property
    def size(self) -> int:
        return self._size

    def finish(self) -> None:
        self._done_adding = True


def _empty_like_rows(value: Any, rows: int) -> Any:
    if isinstance(value, np.ndarray):
        return np.empty((rows,) + value.shape[1:], dtype=value.dtype)
    return torch.empty((rows,) + tuple(value.shape[1:]), dtype=value.dtype, device=value.device)


def _assign(target: Any, start: int, end: int, value: Any) -> None:
    if isinstance(target, np.ndarray):
        target[start:end] = value
    else:
        target[start:end] = torch.as_tensor(value)
