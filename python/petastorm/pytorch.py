"""PyTorch adapters: loaders over a Petastorm reader, and an ``IterableDataset`` for ``torch.utils.data.DataLoader``.

* :class:`DataLoader` - batches (optionally shuffled through a row buffer) collated by ``collate_fn``
  (default :func:`decimal_friendly_collate`); handles any reader, including Decimal and string fields.
* :class:`BatchedDataLoader` - the fast path: column batches become torch tensors (``transform_fn``) and are
  shuffled in a torch-tensor buffer; numeric fields only.
* :class:`InMemBatchedDataLoader` - loads up to ``rows_capacity`` rows once, then serves ``num_epochs`` epochs
  from memory.
* :class:`PetastormIterableDataset` - for ``torch.utils.data.DataLoader(num_workers=k)``: each worker (and each
  distributed rank) reads its own disjoint share of row groups, every row once per epoch.

Types are promoted as in Petastorm 0.13.1: ``uint16`` -> ``int32``, ``uint32`` -> ``int64``, ``bool`` -> ``uint8``
(and ``datetime64`` -> ``int64`` nanoseconds since the epoch);
string and object arrays and nulls raise ``TypeError`` naming the field.
"""
from __future__ import annotations

import collections.abc
import decimal
import logging
import os
import warnings
from typing import Any, Callable, Iterator

import numpy as np

from petastorm._extras import require

torch = require("torch", "petastorm.pytorch")
from torch.utils.data import IterableDataset, get_worker_info  # noqa: E402
from torch.utils.data.dataloader import default_collate  # noqa: E402

from petastorm._batching import BatchBuffers, rebatch_columns  # noqa: E402
from petastorm.reader_impl.pytorch_shuffling_buffer import BatchedRandomShufflingBuffer
from petastorm.reader_impl.shuffling_buffer import (UNBOUNDED_EXTRA_CAPACITY, NoopShufflingBuffer,
                                                    RandomShufflingBuffer)

__all__ = ["DataLoader", "BatchedDataLoader", "InMemBatchedDataLoader", "PetastormIterableDataset",
           "decimal_friendly_collate"]

logger = logging.getLogger(__name__)

_STRING_CLASSES = (str, bytes)


def _sanitize_pytorch_types(row_as_dict: dict) -> None:
    """Promotes values (in place) to types torch supports; TypeError naming the field for strings, objects, None."""
    for name, value in row_as_dict.items():
        if isinstance(value, np.ndarray):
            if value.dtype == np.uint16:
                row_as_dict[name] = value.astype(np.int32)
            elif value.dtype == np.uint32:
                row_as_dict[name] = value.astype(np.int64)
            elif value.dtype == np.bool_:
                row_as_dict[name] = value.astype(np.uint8)
            elif value.dtype.kind == "M":
                row_as_dict[name] = _datetime_to_ns(value)
            elif value.dtype.kind in "SaUO":
                if value.dtype.kind == "O" and any(v is None for v in value.ravel()):
                    raise TypeError(f"Pytorch does not support nullable fields. Found None in {name}")
                raise TypeError(f"Pytorch does not support arrays of string or object classes. Found in field "
                                f"{name}.")
        elif isinstance(value, np.bool_):
            row_as_dict[name] = np.uint8(value)
        elif isinstance(value, np.uint16):
            row_as_dict[name] = np.int32(value)
        elif isinstance(value, np.uint32):
            row_as_dict[name] = np.int64(value)
        elif isinstance(value, np.datetime64):
            row_as_dict[name] = np.int64(_datetime_to_ns(value))
        elif value is None:
            raise TypeError(f"Pytorch does not support nullable fields. Found None in {name}")


def _as_tensor(value: Any) -> torch.Tensor:
    """``torch.as_tensor``, copying read-only numpy arrays (torch cannot share them) instead of warning."""
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        value = value.copy()
    return torch.as_tensor(value)


def _batch_tensor(value: Any, buffers: BatchBuffers) -> torch.Tensor:
    """A numpy batch column as a contiguous torch tensor, copied at most once, by numpy.

    Writable C-contiguous arrays are shared (``torch.from_numpy``); strided views (fixed-shape NPY cells read in
    place from an Arrow buffer) and read-only arrays get one numpy copy (much faster than torch's copy of a
    strided tensor) into an array from ``buffers``, reused only once the tensor and all its views are gone.
    """
    if not isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if value.dtype.kind in "biufc" and (not value.flags.c_contiguous or not value.flags.writeable):
        value = buffers.copy(value)
    elif not value.flags.c_contiguous:
        value = np.ascontiguousarray(value)
    elif not value.flags.writeable:
        value = value.copy()
    try:
        return torch.from_numpy(value)
    except (TypeError, ValueError):  # e.g. non-native byte order
        return torch.as_tensor(value.astype(value.dtype.newbyteorder("=")))


def _datetime_to_ns(value: Any) -> Any:
    return np.asarray(value).astype("datetime64[ns]").astype(np.int64)


def decimal_friendly_collate(batch: list) -> Any:
    """``default_collate`` that leaves ``decimal.Decimal`` (and string) values as lists instead of failing."""
    first = batch[0]
    if isinstance(first, decimal.Decimal):
        return batch
    if isinstance(first, collections.abc.Mapping):
        return {key: decimal_friendly_collate([d[key] for d in batch]) for key in first}
    if isinstance(first, _STRING_CLASSES):
        return batch
    if isinstance(first, collections.abc.Sequence):
        return [decimal_friendly_collate(samples) for samples in zip(*batch)]
    return default_collate(batch)


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
        # With the default transform, a batch reader's columns stay numpy arrays (views of the row group) until a
        # batch is cut: each batch is then copied once, by numpy, into a contiguous tensor (or copied into the
        # shuffling buffer). Otherwise ``transform_fn`` turns each column of each item into a tensor, as before.
        numpy_columns = self._default_transform and self.reader.batched_output
        shuffle = self.shuffling_queue_capacity > 0
        if not shuffle:
            buffers = BatchBuffers()
            for batch in rebatch_columns(self._column_batches(numpy_columns), self.batch_size,
                                         buffers=buffers if numpy_columns else None):
                yield {k: _batch_tensor(v, buffers) for k, v in batch.items()} if numpy_columns else batch
            return
        min_after = self.shuffling_queue_capacity - 1
        buffer = _BatchedRandomShufflingBuffer(min_after + self.batch_size, min_after, self.batch_size, self.seed)
        keys: list = []
        for columns in self._column_batches(numpy_columns):
            keys = list(columns)
            buffer.add_many(list(columns.values()))
            while buffer.can_retrieve():
                yield dict(zip(keys, buffer.retrieve()))
        buffer.finish()
        while buffer.can_retrieve():
            yield dict(zip(keys, buffer.retrieve()))

    def _column_batches(self, numpy_columns: bool) -> Iterator[dict]:
        for row in self.reader:
            row_as_dict = row._asdict()
            _sanitize_pytorch_types(row_as_dict)
            if numpy_columns:
                yield {k: np.asarray(v) for k, v in row_as_dict.items()}
            elif self.reader.batched_output:
                yield {k: _as_tensor(self.transform_fn(v)) for k, v in row_as_dict.items()}
            else:
                yield {k: _as_tensor(self.transform_fn([v]) if not isinstance(v, np.ndarray)
                                     else self.transform_fn(v[None]))
                       for k, v in row_as_dict.items()}


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


# ---------------------------------------------------------------------------------------------------------------

def _distributed_rank_and_size() -> tuple[int, int]:
    """(rank, world size) of ``torch.distributed`` when initialised, else from RANK/WORLD_SIZE, else (0, 1)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:  # pragma: no cover - distributed not built in
        pass
    rank, size = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is not None and size is not None:
        return int(rank), int(size)
    return 0, 1


class PetastormIterableDataset(IterableDataset):
    """A ``torch.utils.data.IterableDataset`` over a Petastorm dataset (or any Parquet store).

    Use it with ``torch.utils.data.DataLoader(dataset, num_workers=k, pin_memory=True, ...)``. Every iteration
    (epoch) opens a fresh reader in each worker; worker ``w`` of rank ``r`` reads the row groups with
    ``piece_index % (world_size * k) == r * k + w``, so the workers' shares are disjoint and together cover every
    row once per epoch (``num_epochs`` of the reader, default 1). Rank and world size come from
    ``torch.distributed`` when initialised (else the RANK/WORLD_SIZE environment variables), or from
    ``cur_shard``/``shard_count`` when given. Shares follow row groups, so they can be unequal: write at least
    ``world_size * k`` row groups (workers without a share yield nothing).

    :param dataset_url: the dataset URL (or a list of Parquet file URLs).
    :param batch_size: None: yield one row at a time (a dict of numpy values; let the DataLoader batch and
        collate). An int: yield dicts of torch tensors of ``batch_size`` rows (use ``DataLoader(batch_size=None)``);
        the last batch of each worker may be smaller unless ``drop_last``.
    :param batch_reader: read with ``make_batch_reader`` (default, fast) or ``make_reader`` (row by row, with
        ``make_reader``'s per-row predicates and transforms).
    :param drop_last: with ``batch_size``, drop each worker's last partial batch.
    :param reader_kwargs: passed to the reader factory (``schema_fields``, ``shuffle_rows``, ``seed``,
        ``num_epochs``, ``predicate``, ``transform_spec``...). With ``seed`` set, each worker's reader is
        seeded with ``seed + shard`` so that workers do not shuffle alike.
    """

    def __init__(self, dataset_url: Any, batch_size: int | None = None, batch_reader: bool = True,
                 drop_last: bool = False, **reader_kwargs: Any) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be None or positive, got {batch_size}")
        self.dataset_url = dataset_url
        self.batch_size = batch_size
        self.batch_reader = batch_reader
        self.drop_last = drop_last
        self.reader_kwargs = dict(reader_kwargs)
        cur, count = self.reader_kwargs.pop("cur_shard", None), self.reader_kwargs.pop("shard_count", None)
        if (cur is None) != (count is None):
            raise ValueError("cur_shard and shard_count must be given together")
        self._explicit_shard = None if cur is None else (int(cur), int(count))

    def shard(self) -> tuple[int, int]:
        """(cur_shard, shard_count) for the calling process: combines the rank and the DataLoader worker id."""
        rank, world = self._explicit_shard or _distributed_rank_and_size()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def _reader(self) -> Any:
        from petastorm import make_batch_reader, make_reader
        from petastorm.errors import NoDataAvailableError

        cur_shard, shard_count = self.shard()
        kwargs = dict(self.reader_kwargs)
        if kwargs.get("seed") is not None:
            kwargs["seed"] = int(kwargs["seed"]) + cur_shard
        if shard_count > 1:
            kwargs.update(cur_shard=cur_shard, shard_count=shard_count)
        factory = make_batch_reader if self.batch_reader else make_reader
        try:
            return factory(self.dataset_url, **kwargs)
        except NoDataAvailableError:
            warnings.warn(f"Shard {cur_shard} of {shard_count} has no row groups to read (the dataset has fewer row "
                          f"groups than readers): this worker yields nothing")
            return None

    def __iter__(self) -> Iterator[dict]:
        reader = self._reader()
        if reader is None:
            return
        with reader:
            if self.batch_size is None:
                yield from self._rows(reader)
            else:
                yield from self._batches(reader)

    @staticmethod
    def _rows(reader: Any) -> Iterator[dict]:
        for item in reader:
            columns = item._asdict()
            _sanitize_pytorch_types(columns)
            if not reader.batched_output:
                yield columns
                continue
            names = list(columns)
            for values in zip(*(columns[n] for n in names)):
                yield dict(zip(names, values))

    def _batches(self, reader: Any) -> Iterator[dict]:
        def column_batches() -> Iterator[dict]:
            for item in reader:
                columns = item._asdict()
                _sanitize_pytorch_types(columns)
                if reader.batched_output:
                    yield columns
                else:
                    yield {k: np.asarray(v)[None] for k, v in columns.items()}

        for batch in rebatch_columns(column_batches(), self.batch_size, self.drop_last):
            yield {k: _as_tensor(v) for k, v in batch.items()}
