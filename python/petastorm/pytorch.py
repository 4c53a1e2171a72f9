"""PyTorch adapters: loaders over a Petastorm reader, and an ``IterableDataset`` for ``torch.utils.data.DataLoader``.

* :class:`DataLoader` - batches (optionally shuffled through a row buffer) collated by ``collate_fn``
  (default :func:`decimal_friendly_collate`); handles any reader, including Decimal and string fields.
* :class:`BatchedDataLoader` - the fast path: column batches become torch tensors (``transform_fn``) and are
  shuffled in a torch-tensor buffer; numeric fields only.
* :class:`InMemBatchedDataLoader` - loads up to ``rows_capacity`` rows once, then serves ``num_epochs`` epochs
  from memory.
* :class:`PetastormIterableDataset` - for ``torch.utils.data.DataLoader(num_workers=k)``: each worker (and each
  distributed rank) reads its own disjoint share of row groups, every row once per epoch.

Types are promoted as in Petastorm 0.13.1 (:mod:`petastorm._torch_types`): ``uint16`` -> ``int32``, ``uint32`` ->
``int64``, ``bool`` -> ``uint8`` (and ``datetime64`` -> ``int64`` nanoseconds since the epoch); string and object
arrays and nulls raise ``TypeError`` naming the field. :class:`PetastormIterableDataset` lives in
:mod:`petastorm._torch_iterable`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

import numpy as np

from petastorm._extras import require

torch = require("torch", "petastorm.pytorch")

from petastorm._batching import BatchBuffers, rebatch_columns  # noqa: E402
from petastorm._torch_iterable import PetastormIterableDataset  # noqa: E402,F401 (part of this module's API)
from petastorm._torch_types import (as_tensor as _as_tensor, batch_tensor as _batch_tensor,  # noqa: E402
                                    decimal_friendly_collate, sanitize_pytorch_types as _sanitize_pytorch_types)
from petastorm.reader_impl.pytorch_shuffling_buffer import BatchedRandomShufflingBuffer
from petastorm.reader_impl.shuffling_buffer import (UNBOUNDED_EXTRA_CAPACITY, NoopShufflingBuffer,
                                                    RandomShufflingBuffer)

__all__ = ["DataLoader", "BatchedDataLoader", "InMemBatchedDataLoader", "PetastormIterableDataset",
           "decimal_friendly_collate"]

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------
# Shuffling buffers live in petastorm.reader_impl: rows (DataLoader) and torch-tensor columns (BatchedDataLoader).


def _BatchedRandomShufflingBuffer(capacity: int, min_after_retrieve: int, batch_size: int,  # noqa: N802
                                  seed: int | None = None) -> BatchedRandomShufflingBuffer:
    """The column buffer :class:`BatchedDataLoader` shuffles in (no bound on the rows one ``add_many`` adds)."""
    return BatchedRandomShufflingBuffer(capacity, min_after_retrieve, UNBOUNDED_EXTRA_CAPACITY, batch_size,
                                        seed=seed)


# ---------------------------------------------------------------------------------------------------------------

_PARALLEL_ITER_ERROR = ("You must finish a full pass of Petastorm DataLoader before making another pass from the "
                        "beginning. If you do need to terminate early and restart from beginning, please re-create "
                        "the reader and the data loader.")


class LoaderBase:
    """One pass at a time over the reader; a new pass resets the reader (the reader's epochs run again)."""

    def __init__(self) -> None:
        self._in_iter: bool | None = None
        self._error: BaseException | None = None

    def __iter__(self) -> Iterator:
        if self._error is not None:
            raise RuntimeError(f"Cannot start a new iteration because last time iteration failed with error "
                               f"{self._error!r}.")
        if self._in_iter:
            raise RuntimeError(_PARALLEL_ITER_ERROR)
        if self._in_iter is not None:
            self.reader.reset()
            logger.warning("Start a new pass of Petastorm DataLoader, reset underlying Petastorm reader to "
                           "position 0.")
        self._in_iter = True
        try:
            yield from self._iter_impl()
        except Exception as e:
            self._error = e
            logger.error("Iteration on Petastorm DataLoader raise error: %r", e)
            raise
        finally:
            self._in_iter = False

    def _iter_impl(self) -> Iterator:
        raise NotImplementedError

    def _numpy_columns(self) -> Iterator[dict]:
        """The reader's items as numpy column chunks with torch's type promotion: a batch reader's batches, or a
        row reader's decoded chunks (its rows in order, without building a row)."""
        batched = self.reader.batched_output
        for item in (self.reader if batched else self.reader.column_chunks()):
            columns = item._asdict() if batched else dict(item)
            _sanitize_pytorch_types(columns)
            yield {k: np.asarray(v) for k, v in columns.items()}

    def __enter__(self) -> "LoaderBase":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.reader.stop()
        self.reader.join()


class DataLoader(LoaderBase):
    """Batches of ``batch_size`` rows from a reader, collated by ``collate_fn`` (the last batch may be smaller).

    With ``shuffling_queue_capacity > 0`` rows pass through a random buffer: no batch comes out until it holds
    ``shuffling_queue_capacity`` rows; at the end it is drained. Batch readers' row groups are split into rows
    (slow for large data: prefer :class:`BatchedDataLoader`). The number of epochs is the reader's.

    :param reader: a :class:`petastorm.reader.Reader`.
    :param batch_size: rows per batch.
    :param collate_fn: merges a list of row dicts into a batch (default :func:`decimal_friendly_collate`).
    :param shuffling_queue_capacity: size of the row shuffling buffer; 0 disables shuffling.
    :param seed: seeds the shuffling buffer (None: not reproducible).
    """

    def __init__(self, reader: Any, batch_size: int = 1, collate_fn: Callable = decimal_friendly_collate,
                 shuffling_queue_capacity: int = 0, seed: int | None = None) -> None:
        super().__init__()
        self.reader = reader
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.shuffling_queue_capacity = shuffling_queue_capacity
        self.seed = seed
        self._batch_acc: list = []

    def _iter_impl(self) -> Iterator:
        self._batch_acc = []
        if self.collate_fn is decimal_friendly_collate and _columnar(self.reader):
            # The batches default_collate would build from rows, cut from columns (one copy per batch).
            yield from _tensor_batches(self._numpy_columns(), self.batch_size, self.shuffling_queue_capacity,
                                       self.seed)
            return
        if self.shuffling_queue_capacity > 0:
            # A row comes out once the buffer holds shuffling_queue_capacity rows.
            buffer: Any = RandomShufflingBuffer(self.shuffling_queue_capacity, self.shuffling_queue_capacity,
                                                UNBOUNDED_EXTRA_CAPACITY, seed=self.seed)
        else:
            buffer = NoopShufflingBuffer()
        keys = None
        for row in self.reader:
            row_as_dict = row._asdict()
            keys = list(row_as_dict)
            _sanitize_pytorch_types(row_as_dict)
            if not self.reader.batched_output:
                buffer.add_many([row_as_dict])
            else:
                buffer.add_many(list(zip(*(row_as_dict[k] for k in keys))))
            yield from self._yield_batches(buffer, keys)
        buffer.finish()
        yield from self._yield_batches(buffer, keys)
        if self._batch_acc:
            batch, self._batch_acc = self._batch_acc, []
            yield self.collate_fn(batch)

    def _yield_batches(self, buffer: Any, keys: list | None) -> Iterator:
        while buffer.can_retrieve():
            row = buffer.retrieve()
            if not isinstance(row, dict):
                row = dict(zip(keys, row))
            self._batch_acc.append(row)
            if len(self._batch_acc) == self.batch_size:
                batch, self._batch_acc = self._batch_acc, []
                yield self.collate_fn(batch)


class BatchedDataLoader(LoaderBase):
    """Like :class:`DataLoader`, but row groups become torch tensors once and batches are tensor slices.

    Much faster for batch readers: with the default ``transform_fn`` a batch inside a row group is one numpy copy
    of a slice into a contiguous tensor, and only batches spanning row groups are joined. With
    ``shuffling_queue_capacity > 0`` rows are shuffled in a buffer (preallocated, grown by doubling) which must
    hold ``shuffling_queue_capacity - 1 + batch_size`` rows before a batch is drawn; each batch is a uniformly
    random sample, without replacement, of the rows held (every row comes out once per epoch). Numeric fields
    only (no Decimal or strings).

    :param reader: a :class:`petastorm.reader.Reader`.
    :param batch_size: rows per batch (the last one may be smaller).
    :param transform_fn: turns a column (numpy array) into a tensor; default ``torch.as_tensor`` (copying
        read-only arrays).
    :param shuffling_queue_capacity: size of the shuffling buffer; 0 disables shuffling.
    :param seed: seeds the shuffling permutation (None: not reproducible).
    """

    def __init__(self, reader: Any, batch_size: int = 1, transform_fn: Callable | None = None,
                 shuffling_queue_capacity: int = 0, seed: int | None = None) -> None:
        super().__init__()
        self.reader = reader
        self.batch_size = batch_size
        self.transform_fn = transform_fn or _as_tensor
        self._default_transform = transform_fn is None
        self.shuffling_queue_capacity = shuffling_queue_capacity
        self.seed = seed

    def _iter_impl(self) -> Iterator:
        # With the default transform, the columns stay numpy arrays (views of the row group) until a batch is cut:
        # each batch is then copied once, by numpy, into a contiguous tensor (or copied into the shuffling
        # buffer). Otherwise ``transform_fn`` turns each column of each item into a tensor, as before.
        if self._default_transform and (self.reader.batched_output or _columnar(self.reader)):
            yield from _tensor_batches(self._numpy_columns(), self.batch_size, self.shuffling_queue_capacity,
                                       self.seed)
            return
        columns = self._column_batches()
        if self.shuffling_queue_capacity > 0:
            yield from _shuffled_batches(columns, self.batch_size, self.shuffling_queue_capacity, self.seed)
            return
        yield from rebatch_columns(columns, self.batch_size)

    def _column_batches(self) -> Iterator[dict]:
        for row in self.reader:
            row_as_dict = row._asdict()
            _sanitize_pytorch_types(row_as_dict)
            if self.reader.batched_output:
                yield {k: _as_tensor(self.transform_fn(v)) for k, v in row_as_dict.items()}
            else:
                yield {k: _as_tensor(self.transform_fn([v]) if not isinstance(v, np.ndarray)
                                     else self.transform_fn(v[None]))
                       for k, v in row_as_dict.items()}


def _columnar(reader: Any) -> bool:
    """True when the reader's items can be batched as numpy columns: numeric (or bool, datetime) fields of fixed
    shapes, from a batch reader or from a row reader of the engine (which hands out decoded chunks)."""
    if not (reader.batched_output or hasattr(reader, "column_chunks")) or getattr(reader, "ngram", None):
        return False
    for field in reader.schema.fields.values():
        kind = field.numpy_dtype
        if not (isinstance(kind, type) and issubclass(kind, (np.number, np.bool_, np.datetime64))) or \
                None in tuple(field.shape or ()):
            return False
    return True


def _tensor_batches(columns: Iterator[dict], batch_size: int, shuffling_queue_capacity: int,
                    seed: int | None) -> Iterator[dict]:
    """Batches of ``batch_size`` rows as tensors from numpy column chunks: each batch one copy into a (recycled)
    contiguous array; through the column shuffling buffer when ``shuffling_queue_capacity > 0``."""
    if shuffling_queue_capacity > 0:
        yield from _shuffled_batches(columns, batch_size, shuffling_queue_capacity, seed)
        return
    buffers = BatchBuffers()
    for batch in rebatch_columns(columns, batch_size, buffers=buffers):
        yield {k: _batch_tensor(v, buffers) for k, v in batch.items()}


def _shuffled_batches(columns: Iterator[dict], batch_size: int, shuffling_queue_capacity: int,
                      seed: int | None) -> Iterator[dict]:
    """Batches drawn uniformly from a buffer that holds ``shuffling_queue_capacity - 1 + batch_size`` rows before
    the first draw (every row once)."""
    min_after = shuffling_queue_capacity - 1
    buffer = _BatchedRandomShufflingBuffer(min_after + batch_size, min_after, batch_size, seed)
    keys: list = []
    for chunk in columns:
        keys = list(chunk)
        buffer.add_many(list(chunk.values()))
        while buffer.can_retrieve():
            yield dict(zip(keys, buffer.retrieve()))
    buffer.finish()
    while buffer.can_retrieve():
        yield dict(zip(keys, buffer.retrieve()))


def _load_rows_into_mem(reader: Any, transform_fn: Callable, rows_capacity: int) -> tuple[list, list]:
    """Up to ``rows_capacity`` rows of the reader as a list of column tensors; the reader is stopped after."""
    keys: list = []
    buffer: list[torch.Tensor] | None = None
    n_rows = 0
    for row in reader:
        row_as_dict = row._asdict()
        _sanitize_pytorch_types(row_as_dict)
        if reader.batched_output:
            columns = {k: transform_fn(v) for k, v in row_as_dict.items()}
        else:
            columns = {k: transform_fn([v]) if not isinstance(v, np.ndarray) else transform_fn(v[None])
                       for k, v in row_as_dict.items()}
        keys = list(columns)
        items = list(columns.values())
        if buffer is None:
            buffer = [torch.empty((rows_capacity,) + tuple(v.shape[1:]), dtype=v.dtype) for v in items]
        take = min(len(items[0]), rows_capacity - n_rows)
        for target, v in zip(buffer, items):
            target[n_rows:n_rows + take] = v[:take]
        n_rows += take
        if n_rows >= rows_capacity:
            break
    reader.stop()
    reader.join()
    if buffer is None:
        return keys, []
    return keys, [t[:n_rows] for t in buffer]


class InMemBatchedDataLoader:
    """Loads up to ``rows_capacity`` rows into memory once, then yields ``num_epochs`` epochs of batches from it.

    The reader is stopped once the rows are loaded (so an infinite reader is fine). It can be iterated once;
    give the number of passes as ``num_epochs``. With ``shuffle`` each epoch has its own permutation, drawn from
    ``seed + epoch``.
    """

    def __init__(self, reader: Any, batch_size: int = 1, transform_fn: Callable | None = None, num_epochs: int = 1,
                 seed: int = 0, rows_capacity: int = 1024, shuffle: bool = False) -> None:
        self._batch_size = batch_size
        self._num_epochs = num_epochs
        self._seed = seed
        self._shuffle = shuffle
        self._in_iter = False
        self._keys, self._buffer = _load_rows_into_mem(reader, transform_fn or _as_tensor, rows_capacity)

    def __iter__(self) -> Iterator[dict]:
        if self._in_iter:
            raise RuntimeError("InMemBatchedDataLoader can be iterated once: give the number of passes as "
                               "num_epochs")
        self._in_iter = True
        size = len(self._buffer[0]) if self._buffer else 0
        for epoch in range(self._num_epochs):
            if self._shuffle:
                generator = torch.Generator()
                generator.manual_seed(self._seed + epoch)
                indices = torch.randperm(size, generator=generator)
            else:
                indices = torch.arange(size)
            for i in range(0, size, self._batch_size):
                idx = indices[i:i + self._batch_size]
                yield dict(zip(self._keys, (v[idx] for v in self._buffer)))

    def __enter__(self) -> "InMemBatchedDataLoader":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        pass
