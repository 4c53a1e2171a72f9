"""Row shuffling buffers (the original's ``petastorm.reader_impl.shuffling_buffer``).

Items (rows, or anything else) are added in batches with ``add_many`` and taken out one at a time with
``retrieve``; :class:`RandomShufflingBuffer` hands them out in random order once it holds enough of them,
:class:`NoopShufflingBuffer` in the order they came. :class:`petastorm.pytorch.DataLoader` shuffles its rows in
these buffers. A buffer is meant for one thread.
"""
from __future__ import annotations

import abc
import collections
import sys
from typing import Any, Sequence

import numpy as np

__all__ = ["ShufflingBufferBase", "NoopShufflingBuffer", "RandomShufflingBuffer"]


class ShufflingBufferBase(abc.ABC):
    """The interface of a shuffling buffer: add items, ask whether one can be taken, take one."""

    @abc.abstractmethod
    def add_many(self, items: Sequence[Any]) -> None:
        """Adds ``items`` to the buffer."""

    @abc.abstractmethod
    def retrieve(self) -> Any:
        """Removes one item from the buffer and returns it."""

    @abc.abstractmethod
    def can_add(self) -> bool:
        """Whether :meth:`add_many` may be called now."""

    @abc.abstractmethod
    def can_retrieve(self) -> bool:
        """Whether :meth:`retrieve` may be called now."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """The number of items in the buffer."""

    @abc.abstractmethod
    def finish(self) -> None:
        """Declares that no more items will be added, so that the buffer can be emptied completely."""


class NoopShufflingBuffer(ShufflingBufferBase):
    """A first-in first-out buffer: items come out in the order they were added (no shuffling)."""

    def __init__(self) -> None:
        self.store: collections.deque = collections.deque()

    def add_many(self, items: Sequence[Any]) -> None:
        self.store.extend(items)

    def retrieve(self) -> Any:
        return self.store.popleft()

    def can_add(self) -> bool:
        return True

    def can_retrieve(self) -> bool:
        return len(self.store) > 0

    @property
    def size(self) -> int:
        return len(self.store)

    def finish(self) -> None:
        pass


class RandomShufflingBuffer(ShufflingBufferBase):
    """Items come out in uniformly random order, each chosen among all items held.

    :param shuffling_buffer_capacity: :meth:`add_many` may be called while fewer items than this are held.
    :param min_after_retrieve: :meth:`retrieve` may be called while at least this many items (and at least one)
        are held, or while any are held after :meth:`finish`.
    :param extra_capacity: how far one :meth:`add_many` may take the buffer above ``shuffling_buffer_capacity``;
        adding more raises ``RuntimeError``. Nothing is allocated for it.
    :param seed: seeds the buffer's own random generator; ``None`` (the original's behaviour) draws from numpy's
        global generator, so ``np.random.seed`` makes the order reproducible.
    """

    def __init__(self, shuffling_buffer_capacity: int, min_after_retrieve: int, extra_capacity: int = 1000,
                 *, seed: int | None = None) -> None:
        self._capacity = shuffling_buffer_capacity
        self._min_after_retrieve = min_after_retrieve
        self._extra_capacity = extra_capacity
        self._items: list = []
        self._done_adding = False
        self._randint = np.random.randint if seed is None else np.random.RandomState(seed).randint

    def add_many(self, items: Sequence[Any]) -> None:
        if self._done_adding:
            raise RuntimeError("Can not call add_many after finish() was called")
        if not self.can_add():
            raise RuntimeError("Can not add items: the buffer is full (check can_add() first)")
        limit = self._capacity + self._extra_capacity
        if len(self._items) + len(items) > limit:
            raise RuntimeError(f"Adding {len(items)} items to the {len(self._items)} held would exceed the maximum "
                               f"of {limit} (shuffling_buffer_capacity + extra_capacity)")
        self._items.extend(items)

    def retrieve(self) -> Any:
        if not self.can_retrieve():
            raise RuntimeError("Can not retrieve an item: too few are held (check can_retrieve() first)")
        i = int(self._randint(0, len(self._items)))
        items = self._items
        items[i], items[-1] = items[-1], items[i]
        return items.pop()

    def can_add(self) -> bool:
        return len(self._items) < self._capacity and not self._done_adding

    def can_retrieve(self) -> bool:
        held = len(self._items)
        return held > 0 and (held >= self._min_after_retrieve or self._done_adding)

    @property
    def size(self) -> int:
        return len(self._items)

    def finish(self) -> None:
        self._done_adding = True


# ``extra_capacity`` for callers that cannot bound the size of one add_many (a whole row group of rows).
UNBOUNDED_EXTRA_CAPACITY = sys.maxsize
