"""``make_reader`` / ``make_batch_reader``: iterate a Petastorm dataset (or any Parquet store) from Python.

This engine is single-threaded: every ``reader_pool_type`` reads in the calling thread. Planning (which row
groups, in which order) lives in :mod:`petastorm.reader_impl.planning`; reading and decoding in
:mod:`petastorm.reader_impl.loaders`.
"""
from __future__ import annotations

import collections.abc
import logging
import warnings
from typing import Any, Callable, Iterator

from petastorm.errors import PetastormMetadataError
from petastorm.etl.dataset_metadata import get_schema, infer_or_load_unischema, load_row_groups
from petastorm.fs_utils import UrlOrUrls
from petastorm.parquet_store import ParquetStore
from petastorm.reader_impl.loaders import BatchLoader, RowLoader
from petastorm.reader_impl.planning import ReadPlan, WorkItem, plan_reads
from petastorm.transform import TransformSpec, transform_schema
from petastorm.unischema import Unischema

__all__ = ["make_reader", "make_batch_reader", "Reader"]

logger = logging.getLogger(__name__)

_POOL_TYPES = ("thread", "process", "dummy")
_NULL_CACHES = (None, "null")


class Reader:
    """Iterates namedtuples: one per row (``make_reader``) or one of numpy arrays per row group
    (``make_batch_reader``). Use as an iterator and, preferably, as a context manager."""

    def __init__(self, schema: Unischema, plan: ReadPlan, loader: Callable[[WorkItem], list],
                 batched_output: bool):
        self.schema = schema
        self.ngram = None
        self.plan = plan
        self._loader = loader
        self._batched_output = batched_output
        self._items: Iterator[WorkItem] = plan.work_items()
        self._buffer: list = []
        self.last_row_consumed = False
        self.stopped = False

    @property
    def batched_output(self) -> bool:
        """True when each item is a batch (a namedtuple of arrays), False when it is one row."""
        return self._batched_output

    def __iter__(self) -> "Reader":
        return self

    def __next__(self) -> tuple:
        if self.stopped:
            raise RuntimeError("Trying to read a sample after the reader was stopped (for example after its "
                               "context manager exited)")
        while not self._buffer:
            try:
                item = next(self._items)
            except StopIteration:
                self.last_row_consumed = True
                raise
            self._buffer = list(reversed(self._loader(item)))
        return self._buffer.pop()

    def reset(self) -> None:
        """Starts the configured epochs again; only allowed once every sample was consumed."""
        if not self.last_row_consumed:
            raise NotImplementedError("A reader can only be reset after all its samples were consumed")
        self.last_row_consumed = False
        self._items = self.plan.work_items()

    def stop(self) -> None:
        """Stops reading; later ``next()`` calls raise."""
        self.stopped = True

    def join(self) -> None:
        """Waits for background workers to finish (there are none in this engine)."""

    @property
    def diagnostics(self) -> dict:
        return {}

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.stop()
        self.join()


def _check_options(reader_pool_type: str, cache_type: str | None, schema_fields: Any) -> None:
    if reader_pool_type not in _POOL_TYPES:
        raise ValueError(f"Unknown reader_pool_type {reader_pool_type!r}; expected one of {_POOL_TYPES}")
    if cache_type not in _NULL_CACHES:
        if cache_type == "local-disk":
            raise NotImplementedError("cache_type='local-disk' is not supported by this reader engine yet")
        raise ValueError(f"Unknown cache_type {cache_type!r}; expected None, 'null' or 'local-disk'")
    if schema_fields is not None and (isinstance(schema_fields, str) or
                                      not isinstance(schema_fields, collections.abc.Iterable)):
        raise ValueError("schema_fields must be None or an iterable of UnischemaField objects and/or regular "
                         f"expressions, got {schema_fields!r}")


def _build(store: ParquetStore, stored_schema: Unischema, loader_cls: type, batched: bool, schema_fields: Any,
           seed: Any, shuffle_rows: bool, shuffle_row_groups: bool, shuffle_row_drop_partitions: int,
           predicate: Any, rowgroup_selector: Any, num_epochs: Any, cur_shard: Any, shard_count: Any,
           shard_seed: Any, transform_spec: TransformSpec | None, filters: Any) -> Reader:
    if shard_seed is not None:
        warnings.warn("shard_seed is deprecated and only changes the order of row groups; use seed",
                      DeprecationWarning)
    read_schema = stored_schema.create_schema_view(list(schema_fields)) if schema_fields is not None \
        else stored_schema
    if not read_schema.fields:
        raise ValueError(f"No fields match {schema_fields!r} in the dataset {store.root} "
                         f"(its fields: {list(stored_schema.fields)})")
    output_schema = transform_schema(read_schema, transform_spec) if transform_spec else read_schema
    pieces = load_row_groups(store)
    plan = plan_reads(store, pieces, stored_schema, predicate, rowgroup_selector, cur_shard, shard_count,
                      shuffle_row_groups, shuffle_row_drop_partitions, num_epochs, seed)
    loader = loader_cls(store, pieces, stored_schema, read_schema, output_schema, transform_spec,
                        plan.worker_predicate, filters, shuffle_rows, seed)
    return Reader(output_schema, plan, loader, batched)


def make_reader(dataset_url: UrlOrUrls, schema_fields: Any = None, reader_pool_type: str = "thread",
                workers_count: int = 10, results_queue_size: int = 50, seed: int | None = None,
                shuffle_rows: bool = False, shuffle_row_groups: bool = True, shuffle_row_drop_partitions: int = 1,
                predicate: Any = None, rowgroup_selector: Any = None, num_epochs: int | None = 1,
                cur_shard: int | None = None, shard_count: int | None = None, shard_seed: int | None = None,
                cache_type: str | None = "null", cache_location: str | None = None,
                cache_size_limit: int | None = None, cache_row_size_estimate: int | None = None,
                cache_extra_settings: dict | None = None, hdfs_driver: str = "libhdfs3",
                transform_spec: TransformSpec | None = None, filters: Any = None,
                storage_options: dict | None = None, zmq_copy_buffers: bool = True,
                filesystem: Any = None) -> Reader:
    """A reader yielding one namedtuple per row of a Petastorm dataset, every codec decoded.

    :param dataset_url: URL of the dataset directory (``file://``, ``s3://``, ``hdfs://``... or a local path),
        or a list of Parquet file URLs.
    :param schema_fields: ``UnischemaField`` objects and/or regular expressions matching whole field names;
        None reads every field.
    :param reader_pool_type, workers_count, results_queue_size, zmq_copy_buffers: accepted for compatibility;
        this engine reads in the calling thread.
    :param seed: seeds the row-group shuffle and ``shuffle_rows``.
    :param shuffle_rows: shuffle rows inside each row group.
    :param shuffle_row_groups: read row groups in a random order, drawn anew each epoch.
    :param shuffle_row_drop_partitions: split each row group into this many parts, read as separate items.
    :param predicate: a :class:`~petastorm.predicates.PredicateBase`; ``do_include`` gets each decoded row.
    :param rowgroup_selector: a :class:`~petastorm.selectors.RowGroupSelectorBase` using the dataset's indexes.
    :param num_epochs: passes over the data; None repeats forever.
    :param cur_shard, shard_count: read only row groups with ``piece_index % shard_count == cur_shard``.
    :param shard_seed: deprecated; only changes the order of row groups.
    :param cache_type: only None / ``'null'`` (no cache) is supported by this engine.
    :param transform_spec: a :class:`~petastorm.transform.TransformSpec` applied to each decoded row.
    :param filters: pyarrow filters (list of tuples, or list of lists of tuples) applied to each row group.
    :param storage_options: fsspec options for non-local URLs.
    :param filesystem: a pyarrow or fsspec filesystem to use instead of one derived from the URL.
    """
    _check_options(reader_pool_type, cache_type, schema_fields)
    store = ParquetStore.open(dataset_url, hdfs_driver, storage_options, filesystem)
    try:
        stored_schema = get_schema(store)
    except PetastormMetadataError:
        warnings.warn(f"{dataset_url} is not a Petastorm dataset (no stored Unischema); make_reader infers the "
                      "schema from Parquet. make_batch_reader reads plain Parquet stores much faster.")
        stored_schema = infer_or_load_unischema(store)
    return _build(store, stored_schema, RowLoader, False, schema_fields, seed, shuffle_rows, shuffle_row_groups,
                  shuffle_row_drop_partitions, predicate, rowgroup_selector, num_epochs, cur_shard, shard_count,
                  shard_seed, transform_spec, filters)


def make_batch_reader(dataset_url_or_urls: UrlOrUrls, schema_fields: Any = None, reader_pool_type: str = "thread",
                      workers_count: int = 10, results_queue_size: int = 50, seed: int | None = None,
                      shuffle_rows: bool = False, shuffle_row_groups: bool = True,
                      shuffle_row_drop_partitions: int = 1, predicate: Any = None, rowgroup_selector: Any = None,
                      num_epochs: int | None = 1, cur_shard: int | None = None, shard_count: int | None = None,
                      shard_seed: int | None = None, cache_type: str | None = "null",
                      cache_location: str | None = None, cache_size_limit: int | None = None,
                      cache_row_size_estimate: int | None = None, cache_extra_settings: dict | None = None,
                      hdfs_driver: str = "libhdfs3", transform_spec: TransformSpec | None = None,
                      filters: Any = None, storage_options: dict | None = None, zmq_copy_buffers: bool = True,
                      filesystem: Any = None) -> Reader:
    """A reader yielding one namedtuple of numpy arrays per row group, for any Parquet store.

    Native Parquet columns convert as in the original (strings to ``str_`` arrays, equal-length lists to
    matrices). On a Petastorm dataset, tensor and image columns are decoded into ``(N, *shape)`` arrays.
    The predicate gets a pandas DataFrame and returns a boolean mask; ``transform_spec.func`` maps a pandas
    DataFrame to a DataFrame. Other parameters are as for :func:`make_reader`.
    """
    _check_options(reader_pool_type, cache_type, schema_fields)
    store = ParquetStore.open(dataset_url_or_urls, hdfs_driver, storage_options, filesystem)
    stored_schema = infer_or_load_unischema(store)
    return _build(store, stored_schema, BatchLoader, True, schema_fields, seed, shuffle_rows, shuffle_row_groups,
                  shuffle_row_drop_partitions, predicate, rowgroup_selector, num_epochs, cur_shard, shard_count,
                  shard_seed, transform_spec, filters)
