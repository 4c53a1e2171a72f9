"""``make_reader`` / ``make_batch_reader``: iterate a Petastorm dataset (or any Parquet store) from Python.

The public face of the reader engine, at the original's module path: the arguments are normalised once into
:class:`~petastorm.reader_impl.options.ReaderOptions`, :func:`~petastorm.reader_impl.assembly.assemble` plans the
reads and builds the loader and pool, and :class:`~petastorm.reader_impl.engine.ReaderCore` iterates (see
``docs/architecture.md``). The original's other names (pools, workers, serializers, caches) are re-exported here.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

from petastorm.decode_limits import DecodeLimits
from petastorm._lazy import lazy_module
from petastorm.cache import NullCache
from petastorm.errors import NoDataAvailableError, PetastormMetadataError
from petastorm.etl.dataset_metadata import get_schema, infer_or_load_unischema
from petastorm.fs_utils import UrlOrUrls, normalize_dir_url
from petastorm.parquet_store import ParquetStore
from petastorm.reader_impl.assembly import assemble
from petastorm.reader_impl.engine import STATE_VERSION, ReaderCore
from petastorm.reader_impl.loaders import ReaderWorkerError
from petastorm.reader_impl.options import DEFAULT_WORKER_TIMEOUT_S, OPTIONS_DOC, ReaderOptions
from petastorm.reader_impl.pools import WorkerDiedError, WorkerTimeoutError
from petastorm.transform import TransformSpec
from petastorm.unischema import Unischema

__all__ = ["make_reader", "make_batch_reader", "Reader", "NoDataAvailableError", "WorkerDiedError",
           "WorkerTimeoutError", "ReaderWorkerError", "STATE_VERSION"]

logger = logging.getLogger(__name__)

NULL_CACHE = "null"
LOCAL_DISK_CACHE = "local-disk"

# The original's names re-exported here, loaded on first use (they are not needed to read).
_REEXPORTS = {
    "ArrowReaderWorker": "petastorm.arrow_reader_worker", "PyDictReaderWorker": "petastorm.py_dict_reader_worker",
    "ArrowTableSerializer": "petastorm.reader_impl.arrow_table_serializer",
    "PickleSerializer": "petastorm.reader_impl.pickle_serializer",
    "ConcurrentVentilator": "petastorm.workers_pool.ventilator", "DummyPool": "petastorm.workers_pool.dummy_pool",
    "ProcessPool": "petastorm.workers_pool.process_pool", "ThreadPool": "petastorm.workers_pool.thread_pool",
    "LocalDiskCache": "petastorm.local_disk_cache",
    "PredicateBase": "petastorm.predicates", "RowGroupSelectorBase": "petastorm.selectors",
    "get_filesystem_and_path_or_paths": "petastorm.fs_utils", "NGram": "petastorm.ngram",
    "transform_schema": "petastorm.transform",
}


__getattr__, __dir__ = lazy_module(__name__, _REEXPORTS)


def normalize_dataset_url_or_urls(dataset_url_or_urls: UrlOrUrls) -> UrlOrUrls:
    """A dataset URL, or a non-empty list of them, with trailing ``/`` stripped (as the original)."""
    if isinstance(dataset_url_or_urls, list):
        if not dataset_url_or_urls:
            raise ValueError("dataset url list must be non-empty.")
        return [normalize_dir_url(url) for url in dataset_url_or_urls]
    return normalize_dir_url(dataset_url_or_urls)

class Reader(ReaderCore):
    """Iterates namedtuples: one per row (``make_reader``), one ``{offset: namedtuple}`` dict per n-gram, or one
    namedtuple of numpy arrays per row group (``make_batch_reader``). Use as an iterator and, preferably, as a
    context manager. Iteration, resume and diagnostics are :class:`~petastorm.reader_impl.engine.ReaderCore`'s.
    """

    def __init__(self, pyarrow_filesystem: Any, dataset_path: Any, schema_fields: Any = None, seed: int | None = None,
                 shuffle_rows: bool = False, shuffle_row_groups: bool = True, shuffle_row_drop_partitions: int = 1,
                 predicate: Any = None, rowgroup_selector: Any = None, reader_pool: Any = None,
                 num_epochs: int | None = 1, cur_shard: int | None = None, shard_count: int | None = None,
                 cache: Any = None, worker_class: Any = None, transform_spec: TransformSpec | None = None,
                 is_batched_reader: bool = False, filters: Any = None, shard_seed: int | None = None,
                 convert_early_to_numpy: bool = False):
        """The original's constructor: ``dataset_path`` (a path or a list of file paths) on ``pyarrow_filesystem``
        (a ``pyarrow.fs`` or fsspec filesystem, or None for a URL). ``reader_pool`` is a pool object of
        :mod:`petastorm.workers_pool` (default ``ThreadPool(10)``); ``worker_class`` is accepted and unused (one
        engine reads both kinds); ``cache`` must be None or a ``NullCache`` here (use ``make_reader``'s
        ``cache_type`` for a disk cache)."""
        if cache is not None and not isinstance(cache, NullCache):
            raise ValueError("Reader(cache=...) takes only NullCache; for a disk cache use make_reader(..., "
                             "cache_type='local-disk', cache_location=...)")
        store = ParquetStore.open(dataset_path, "libhdfs3", None, pyarrow_filesystem)
        options = ReaderOptions.from_arguments(
            is_batched_reader, schema_fields=schema_fields, seed=seed, shuffle_rows=shuffle_rows,
            shuffle_row_groups=shuffle_row_groups, shuffle_row_drop_partitions=shuffle_row_drop_partitions,
            predicate=predicate, rowgroup_selector=rowgroup_selector, num_epochs=num_epochs, cur_shard=cur_shard,
            shard_count=shard_count, transform_spec=transform_spec, filters=filters, shard_seed=shard_seed,
            convert_early_to_numpy=convert_early_to_numpy,
            **({"reader_pool_type": reader_pool} if reader_pool is not None else {}))
        stored = infer_or_load_unischema(store)
        assemble(self, dataset_path, store, stored, options)


# -- construction ------------------------------------------------------------------------------------------------


def _build(dataset_url: Any, store: ParquetStore, stored_schema: Unischema, options: ReaderOptions) -> Reader:
    return assemble(Reader.__new__(Reader), dataset_url, store, stored_schema, options)


# Arguments that open the store or have no effect: not engine options.
_NOT_ENGINE_ARGUMENTS = ("dataset_url", "dataset_url_or_urls", "hdfs_driver", "storage_options", "filesystem",
                         "zmq_copy_buffers", "pyarrow_serialize")


def _open(dataset_url: UrlOrUrls, hdfs_driver: str, storage_options: Any, filesystem: Any) -> ParquetStore:
    return ParquetStore.open(dataset_url, hdfs_driver, storage_options, filesystem)


def _options(batched: bool, arguments: dict) -> ReaderOptions:
    """The engine's options from a public function's ``locals()`` (the store's arguments left out)."""
    engine = {k: v for k, v in arguments.items() if k not in _NOT_ENGINE_ARGUMENTS}
    return ReaderOptions.from_arguments(batched, **engine)


def make_reader(dataset_url: UrlOrUrls, schema_fields: Any = None, reader_pool_type: Any = "thread",
                workers_count: int = 10, pyarrow_serialize: bool = False, results_queue_size: int = 50,
                seed: int | None = None, shuffle_rows: bool = False, shuffle_row_groups: bool = True,
                shuffle_row_drop_partitions: int = 1, predicate: Any = None, rowgroup_selector: Any = None,
                num_epochs: int | None = 1, cur_shard: int | None = None, shard_count: int | None = None,
                shard_seed: int | None = None, cache_type: str | None = "null", cache_location: str | None = None,
                cache_size_limit: int | None = None, cache_row_size_estimate: int | None = None,
                cache_extra_settings: dict | None = None, hdfs_driver: str = "libhdfs3",
                transform_spec: TransformSpec | None = None, filters: Any = None,
                storage_options: dict | None = None, zmq_copy_buffers: bool = True,
                filesystem: Any = None, convert_early_to_numpy: bool = False, *,
                shuffle_buffer_size: int | None = None, shard_mode: str = "row-group",
                shard_remainder: str = "drop", resume_from: dict | None = None,
                worker_timeout: float | None = DEFAULT_WORKER_TIMEOUT_S,
                decode_limits: DecodeLimits = DecodeLimits()) -> Reader:
    """A reader yielding one namedtuple per row of a Petastorm dataset, every codec decoded (or one
    ``{offset: namedtuple}`` dict per n-gram when ``schema_fields`` is an NGram).

    The predicate's ``do_include`` gets a dict of the predicate's fields of one row; ``transform_spec.func`` gets
    a row dict and returns one. ``pyarrow_serialize`` (deprecated in the original) has no effect;
    ``convert_early_to_numpy`` has none either (the original ignored it in ``make_reader``).
    """
    if pyarrow_serialize:
        warnings.warn("pyarrow_serialize is deprecated and has no effect (as in Petastorm 0.13): results of worker "
                      "processes always travel as raw numpy buffers", DeprecationWarning, stacklevel=2)
    options = _options(False, locals())
    store = _open(dataset_url, hdfs_driver, storage_options, filesystem)
    try:
        stored_schema = get_schema(store)
    except PetastormMetadataError:
        stored_schema = infer_or_load_unischema(store)  # raises when a stored schema is there but unreadable
        warnings.warn(f"{dataset_url} is not a Petastorm dataset (no stored Unischema); make_reader infers the "
                      "schema from Parquet. make_batch_reader reads plain Parquet stores much faster.")
    return _build(dataset_url, store, stored_schema, options)


def make_batch_reader(dataset_url_or_urls: UrlOrUrls, schema_fields: Any = None, reader_pool_type: Any = "thread",
                      workers_count: int = 10, results_queue_size: int = 50, seed: int | None = None,
                      shuffle_rows: bool = False, shuffle_row_groups: bool = True,
                      shuffle_row_drop_partitions: int = 1, predicate: Any = None, rowgroup_selector: Any = None,
                      num_epochs: int | None = 1, cur_shard: int | None = None, shard_count: int | None = None,
                      shard_seed: int | None = None, cache_type: str | None = "null",
                      cache_location: str | None = None, cache_size_limit: int | None = None,
                      cache_row_size_estimate: int | None = None, cache_extra_settings: dict | None = None,
                      hdfs_driver: str = "libhdfs3", transform_spec: TransformSpec | None = None,
                      filters: Any = None, storage_options: dict | None = None, zmq_copy_buffers: bool = True,
                      filesystem: Any = None, convert_early_to_numpy: bool = False, *,
                      shuffle_buffer_size: int | None = None, shard_mode: str = "row-group",
                      shard_remainder: str = "drop", resume_from: dict | None = None,
                      worker_timeout: float | None = DEFAULT_WORKER_TIMEOUT_S,
                      decode_limits: DecodeLimits = DecodeLimits()) -> Reader:
    """A reader yielding one namedtuple of numpy arrays per row group, for any Parquet store.

    Native Parquet columns convert as in the original (strings to ``str_`` arrays, equal-length lists to
    matrices). On a Petastorm dataset, tensor and image columns are decoded into ``(N, *shape)`` arrays.
    The predicate gets a pandas DataFrame (``do_include_batch``) and returns a boolean mask;
    ``transform_spec.func`` maps a pandas DataFrame to a DataFrame. ``convert_early_to_numpy`` is accepted for
    compatibility: columns are always converted to numpy in the workers, so the output is the same either way.
    """
    options = _options(True, locals())
    store = _open(dataset_url_or_urls, hdfs_driver, storage_options, filesystem)
    return _build(dataset_url_or_urls, store, infer_or_load_unischema(store), options)


make_reader.__doc__ += OPTIONS_DOC
make_batch_reader.__doc__ += OPTIONS_DOC.replace(":param dataset_url:", ":param dataset_url_or_urls:")
