"""A first-in first-out queue that re-cuts pyarrow tables into tables of a fixed number of rows."""
from __future__ import annotations

import collections

import pyarrow as pa

__all__ = ["BatchingTableQueue"]


class BatchingTableQueue:
    """Tables go in with :meth:`put`; :meth:`get` returns tables of exactly ``batch_size`` rows, in order.

    Rows keep their order across the tables put in. No row is copied: a returned table is made of slices of the
    record batches put in. All tables put in must have the same schema.

    :param batch_size: rows per table returned by :meth:`get`.
    """

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self._batches: collections.deque = collections.deque()
        self._offset = 0  # rows of the first record batch already returned
        self._rows = 0  # rows held and not yet returned

    def put(self, table: pa.Table) -> None:
        """Adds the rows of ``table`` to the end of the queue."""
        for batch in table.to_batches():
            if batch.num_rows:
                self._batches.append(batch)
                self._rows += batch.num_rows

    def empty(self) -> bool:
        """True when fewer than ``batch_size`` rows are held, i.e. :meth:`get` cannot be called."""
        return self._rows < self._batch_size

    def get(self) -> pa.Table:
        """Removes the next ``batch_size`` rows and returns them as a table (AssertionError when :meth:`empty`)."""
        assert not self.empty(), "BatchingTableQueue.get() called while empty()"
        pieces = []
        needed = self._batch_size
        while needed:
            head = self._batches[0]
            piece = head.slice(self._offset, needed)
            pieces.append(piece)
            needed -= piece.num_rows
            self._offset += piece.num_rows
            if self._offset == head.num_rows:
                self._batches.popleft()
                self._offset = 0
        self._rows -= self._batch_size
        return pa.Table.from_batches(pieces)
