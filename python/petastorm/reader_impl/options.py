"""``ReaderOptions``: the public arguments of ``make_reader`` / ``make_batch_reader`` (and of the original's
``Reader`` constructor), normalised and validated once.

The engine takes the options object whole. Adding a reader option is one field here (with its check in
:meth:`ReaderOptions.__post_init__` when it needs one) plus the code that uses it.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import multiprocessing
from typing import Any

from petastorm.decode_limits import DecodeLimits
from petastorm.ngram import NGram
from petastorm.transform import TransformSpec

__all__ = ["ReaderOptions", "POOL_TYPES", "DEFAULT_WORKER_TIMEOUT_S", "OPTIONS_DOC", "pool_settings"]

POOL_TYPES = ("thread", "process", "dummy")
DEFAULT_WORKER_TIMEOUT_S = 600.0
_CACHE_TYPES = (None, "null", "local-disk")


def pool_settings(reader_pool_type: Any, workers_count: Any,
                  results_queue_size: Any) -> tuple[str, Any, Any]:
    """``(kind, workers_count, results_queue_size)`` from a pool name or from a pool object of
    :mod:`petastorm.workers_pool` (``ThreadPool(4)`` as in the original), whose settings win."""
    kind = getattr(reader_pool_type, "engine_kind", None)
    if kind is None:
        return reader_pool_type, workers_count, results_queue_size
    return kind, getattr(reader_pool_type, "workers_count", workers_count), \
        getattr(reader_pool_type, "results_queue_size", results_queue_size)


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ReaderOptions:
    """What a reader reads and how; built by :meth:`from_arguments` from the public arguments."""

    batched: bool
    schema_fields: Any = None
    reader_pool_type: str = "thread"
    workers_count: int = 10
    results_queue_size: int = 50
    seed: int | None = None
    shuffle_rows: bool = False
    shuffle_row_groups: bool = True
    shuffle_row_drop_partitions: int = 1
    predicate: Any = None
    rowgroup_selector: Any = None
    num_epochs: int | None = 1
    cur_shard: int | None = None
    shard_count: int | None = None
    shard_seed: int | None = None
    cache_type: str | None = "null"
    cache_location: Any = None
    cache_size_limit: int | None = None
    cache_row_size_estimate: int | None = None
    cache_extra_settings: dict | None = None
    transform_spec: TransformSpec | None = None
    filters: Any = None
    convert_early_to_numpy: bool = False
    shuffle_buffer_size: int | None = None
    shard_mode: str = "row-group"
    shard_remainder: str = "drop"
    resume_from: dict | None = None
    worker_timeout: float | None = DEFAULT_WORKER_TIMEOUT_S
    decode_limits: DecodeLimits = DecodeLimits()

    @classmethod
    def from_arguments(cls, batched: bool, **arguments: Any) -> "ReaderOptions":
        """Normalises loose arguments (a pool object as ``reader_pool_type``) into one validated object."""
        kind, workers, queue = pool_settings(arguments.get("reader_pool_type", "thread"),
                                             arguments.get("workers_count", 10),
                                             arguments.get("results_queue_size", 50))
        arguments.update(reader_pool_type=kind, workers_count=workers, results_queue_size=queue)
        return cls(batched=batched, **arguments)

    def __post_init__(self) -> None:
        if self.reader_pool_type not in POOL_TYPES:
            raise ValueError(f"Unknown reader_pool_type {self.reader_pool_type!r}; expected one of {POOL_TYPES} "
                             "or a pool object of petastorm.workers_pool")
        if self.reader_pool_type == "process" and multiprocessing.current_process().daemon:
            raise ValueError("A process pool (reader_pool_type='process' or a ProcessPool) cannot start worker "
                             "processes here: this is a daemonic "
                             "process (a torch DataLoader worker, a multiprocessing.Pool worker), and those may not "
                             "have children. Use reader_pool_type='thread' inside such workers")
        _positive_int("workers_count", self.workers_count)
        _positive_int("results_queue_size", self.results_queue_size)
        fields = self.schema_fields
        if fields is not None and not isinstance(fields, NGram) and (
                isinstance(fields, str) or not isinstance(fields, collections.abc.Iterable)):
            raise ValueError("schema_fields must be None, an NGram, or an iterable of UnischemaField objects and/or "
                             f"regular expressions, got {fields!r}")
        if isinstance(fields, NGram) and self.batched:
            raise ValueError("NGram is not supported by make_batch_reader; use make_reader")
        if isinstance(fields, NGram) and self.transform_spec is not None:
            raise NotImplementedError("transform_spec is not supported together with an NGram")
        if self.cache_type not in _CACHE_TYPES:
            raise ValueError(f"Unknown cache_type {self.cache_type!r}; expected None, 'null' or 'local-disk'")
        timeout = self.worker_timeout
        if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool)
                                    or timeout <= 0):
            raise ValueError(f"worker_timeout must be a positive number of seconds or None, got {timeout!r}")
        if not isinstance(self.decode_limits, DecodeLimits):
            raise ValueError(f"decode_limits must be a petastorm.codecs.DecodeLimits, got {self.decode_limits!r}")

    @property
    def ngram(self) -> NGram | None:
        """The NGram asked for through ``schema_fields``, if any."""
        return self.schema_fields if isinstance(self.schema_fields, NGram) else None

    @property
    def cache_args(self) -> tuple:
        """The cache arguments in :func:`petastorm.cache.make_cache` order."""
        return (self.cache_type, self.cache_location, self.cache_size_limit, self.cache_row_size_estimate,
                self.cache_extra_settings)


#: The options' documentation, appended to ``make_reader`` / ``make_batch_reader``'s docstrings.
OPTIONS_DOC = """
    :param dataset_url: URL of the dataset directory (``file://``, ``s3://``, ``gs://``, ``hdfs://``, ``abfs://``...
        or a local path; a trailing ``/`` is ignored), or a list of Parquet file URLs.
    :param schema_fields: ``UnischemaField`` objects and/or regular expressions matching whole field names (None:
        every field); ``make_reader`` also takes an :class:`~petastorm.ngram.NGram`.
    :param reader_pool_type: ``'thread'`` (default), ``'process'`` (forkserver/spawn worker processes),
        ``'dummy'`` (read in the calling thread), or a pool object of :mod:`petastorm.workers_pool` (its
        ``workers_count`` and ``results_queue_size`` are used).
    :param workers_count: number of worker threads or processes (on local storage the thread pool uses at most
        ``os.cpu_count()`` threads).
    :param results_queue_size: how many decoded row groups may wait for the consumer (memory bound: at most
        ``workers_count + results_queue_size`` row groups are read ahead).
    :param seed: seeds every shuffle (row-group order per epoch, rows, shuffle buffer); 0 is a seed, None draws
        one at random (kept in ``state_dict()``).
    :param shuffle_rows: shuffle rows inside each row group (differently each epoch).
    :param shuffle_row_groups: read row groups in a random order, drawn anew each epoch.
    :param shuffle_row_drop_partitions: split each row group into this many parts read as separate items.
    :param predicate: a :class:`~petastorm.predicates.PredicateBase` deciding which rows to keep.
    :param rowgroup_selector: a :class:`~petastorm.selectors.RowGroupSelectorBase` using the dataset's indexes.
    :param num_epochs: passes over the data; None repeats forever.
    :param cur_shard, shard_count: read one shard of ``shard_count`` (see ``shard_mode``).
    :param shard_seed: shuffles the assignment of row groups to shards (``shard_mode='row-group'``).
    :param cache_type, cache_location, cache_size_limit, cache_row_size_estimate, cache_extra_settings:
        ``'null'`` (no cache) or ``'local-disk'``: decoded row groups kept in a local directory.
    :param hdfs_driver: accepted for compatibility (pyarrow has one HDFS driver).
    :param transform_spec: a :class:`~petastorm.transform.TransformSpec`.
    :param filters: pyarrow filters (DNF list of tuples or of lists of tuples, or a ``pyarrow.dataset``
        expression): prune partitions and row groups by their statistics, then filter rows.
    :param storage_options: fsspec options for non-local URLs.
    :param zmq_copy_buffers: accepted for compatibility (no ZeroMQ here).
    :param filesystem: a pyarrow or fsspec filesystem to use instead of one derived from the URL.
    :param shuffle_buffer_size: (extension) shuffle across row groups: consecutive row groups of the epoch's order
        holding up to this many rows are read together and their rows shuffled; memory grows by at most this many
        rows. None/0: off.
    :param shard_mode: (extension) ``'row-group'`` (the original: row group ``i`` goes to shard
        ``i % shard_count``) or ``'equal'``: every shard reads the same number of rows per epoch, row groups are
        split between shards.
    :param shard_remainder: (extension, ``shard_mode='equal'``) ``'drop'`` the last ``N % shard_count`` rows or
        ``'pad'`` shards with rows from the start so that no row is lost.
    :param resume_from: (extension) a :meth:`Reader.state_dict` to continue from.
    :param worker_timeout: (extension) seconds one work item may take before the reader raises
        :class:`~petastorm.reader_impl.pools.WorkerTimeoutError` (None: no limit; default 600). The ``'dummy'``
        pool decodes in the calling thread, where nothing can interrupt it: the limit applies to the thread and
        process pools only.
    :param decode_limits: (extension) a :class:`~petastorm.codecs.DecodeLimits`: the most bytes one decoded array
        cell and the most pixels one image may have, checked from the cell's header before decoding (defaults:
        512 MiB, 89,478,485 pixels).
"""
