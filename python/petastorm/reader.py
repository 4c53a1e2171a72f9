"""``make_reader`` / ``make_batch_reader``: iterate a Petastorm dataset (or any Parquet store) from Python.

Planning (which row groups, in which order, per epoch and shard) lives in :mod:`petastorm.reader_impl.planning`;
reading and decoding a row group in :mod:`petastorm.reader_impl.loaders`; the worker pools in
:mod:`petastorm.reader_impl.pools`. The :class:`Reader` hands work items to the pool a bounded number at a time and
yields their output in plan order, so the sequence of samples is a function of ``seed`` alone (not of worker
timing), which is what makes :meth:`Reader.state_dict` resumable.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import warnings
import weakref
from typing import Any, Iterator

import numpy as np

from petastorm._lazy import lazy_dir, lazy_exports
from petastorm.cache import NullCache
from petastorm.errors import NoDataAvailableError, PetastormMetadataError
from petastorm.etl.dataset_metadata import get_schema, infer_or_load_unischema, load_row_groups
from petastorm.fs_utils import UrlOrUrls, normalize_dir_url
from petastorm.ngram import NGram
from petastorm.parquet_store import ParquetStore
from petastorm.reader_impl.filtering import plan_filters
from petastorm.reader_impl.loaders import ItemLoader, ItemResult, ReaderWorkerError
from petastorm.reader_impl.options import DEFAULT_WORKER_TIMEOUT_S, ReaderOptions
from petastorm.reader_impl.planning import ReadPlan, WorkItem, plan_reads
from petastorm.reader_impl.pools import WorkerDiedError, WorkerTimeoutError, cpu_count, make_pool
from petastorm.reader_impl.row_group_io import ParquetFileCache
from petastorm.transform import TransformSpec, transform_schema
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
    "get_filesystem_and_path_or_paths": "petastorm.fs_utils",
}


__getattr__ = lazy_exports(__name__, _REEXPORTS)
__dir__ = lazy_dir(__name__, _REEXPORTS)


def normalize_dataset_url_or_urls(dataset_url_or_urls: UrlOrUrls) -> UrlOrUrls:
    """A dataset URL, or a non-empty list of them, with trailing ``/`` stripped (as the original)."""
    if isinstance(dataset_url_or_urls, list):
        if not dataset_url_or_urls:
            raise ValueError("dataset url list must be non-empty.")
        return [normalize_dir_url(url) for url in dataset_url_or_urls]
    return normalize_dir_url(dataset_url_or_urls)

STATE_VERSION = 1


def _stop_pool(pool: Any, loader: Any) -> None:
    try:
        pool.stop()
        pool.join()
    finally:
        loader.close()


class Reader:
    """Iterates namedtuples: one per row (``make_reader``), one ``{offset: namedtuple}`` dict per n-gram, or one
    namedtuple of numpy arrays per row group (``make_batch_reader``). Use as an iterator and, preferably, as a
    context manager."""

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
        _assemble(self, dataset_path, store, stored, options)

    def _start(self, schema: Unischema, plan: ReadPlan, loader: ItemLoader, pool: Any, batched_output: bool,
                 ngram: NGram | None, results_queue_size: int, dataset_url: Any = None, cache: Any = None,
                 cache_cleanup: bool = False):
        self.schema = schema
        self.ngram = ngram
        self.plan = plan
        self.dataset_url = dataset_url
        self._loader = loader
        self._pool = pool
        self._batched_output = batched_output
        self._cache = cache
        self._cache_cleanup = cache_cleanup
        self._window = 1 if pool.kind == "dummy" else pool.workers_count + max(1, results_queue_size)
        self._row_type = schema._get_namedtuple()
        self._row_names = list(schema.fields)
        if ngram is not None:
            base = min(ngram.fields)
            self._ngram_steps = [(base + step, ngram.get_schema_at_timestep(schema, base + step))
                                 for step in range(ngram.length)]
        self._epoch = 0
        self._unit = 0
        self._rows_in_unit = 0
        self._end_epoch = plan.num_epochs
        self._units_cache: dict[int, list] = {}
        self._schedule: Iterator | None = None
        self._inflight: collections.deque = collections.deque()
        self._ready: dict[int, tuple[bool, Any]] = {}
        self._seq = 0
        self._outputs: Iterator | None = None
        self._failed: BaseException | None = None
        self.last_row_consumed = False
        self.stopped = False
        self._joined = False
        self._counters = collections.Counter()
        self._lock = threading.RLock()
        if pool.kind == "thread":
            pool.start(loader, on_exit=loader.files.close_thread_files)
        else:
            pool.start(loader)
        self._finalizer = weakref.finalize(self, _stop_pool, pool, loader)

    # -- public surface -----------------------------------------------------------------------------------------

    @property
    def batched_output(self) -> bool:
        """True when each item is a batch (a namedtuple of arrays), False when it is one row (or n-gram)."""
        return self._batched_output

    @property
    def num_epochs(self) -> int | None:
        """Passes over the data per ``reset()`` (None: no end), as the original's attribute."""
        return self.plan.num_epochs

    @property
    def is_batched_reader(self) -> bool:
        return self._batched_output

    def __iter__(self) -> "Reader":
        return self

    def __next__(self) -> Any:
        if self.stopped:
            raise RuntimeError("Trying to read a sample after the reader was stopped (for example after its "
                               "context manager exited)")
        if self._failed is not None:
            raise self._failed
        if self._outputs is None:
            self._outputs = self._iterate()
        try:
            return next(self._outputs)
        except StopIteration:
            self.last_row_consumed = True
            raise
        except BaseException as e:
            self._failed = e
            self._outputs = None
            self._finalizer()  # a failed reader releases its workers at once
            raise

    def next(self) -> Any:
        return self.__next__()

    def reset(self) -> None:
        """Starts another ``num_epochs`` epochs (with new shuffles); only allowed once every sample was consumed."""
        if not self.last_row_consumed:
            raise NotImplementedError("A reader can only be reset after all its samples were consumed")
        if self._end_epoch is not None:
            self._end_epoch = self._epoch + self.plan.num_epochs
        self.last_row_consumed = False
        self._outputs = None
        self._schedule = None

    def stop(self) -> None:
        """Stops reading and the workers; later ``next()`` calls raise."""
        self.stopped = True
        self._pool.stop()

    def join(self) -> None:
        """Waits (briefly) for the workers to end; worker processes still running are killed."""
        if self._joined:
            return
        self._joined = True
        self._finalizer()
        if self._cache_cleanup and self._cache is not None:
            self._cache.cleanup()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.stop()
        self.join()

    @property
    def diagnostics(self) -> dict:
        """Counters: the plan's row-group selection (``row_groups_total``, ``row_groups_selected``,
        ``row_groups_pruned_by_filters`` / ``_by_predicate`` / ``_by_selector``), what the workers did
        (``items_read``, ``rows_read``, ``rows_filtered_out`` by ``filters``, ``rows_dropped_by_predicate``,
        ``cache_requests``, ``cache_hits``), what was emitted (``samples_emitted``, ``rows_emitted``), the
        position (``epoch``, ``unit``, ``rows_in_unit``) and the pool (``pool_type``, ``workers_count``,
        ``items_in_flight``, ``file_opens``, ``footer_reads``)."""
        d = dict(self.plan.stats)
        for key in ("items_read", "rows_read", "rows_filtered_out", "rows_dropped_by_predicate", "cache_requests",
                    "cache_hits", "samples_emitted", "rows_emitted"):
            d[key] = int(self._counters.get(key, 0))
        d.update(epoch=self._epoch, unit=self._unit, rows_in_unit=self._rows_in_unit, pool_type=self._pool.kind,
                 workers_count=self._pool.workers_count, items_in_flight=len(self._inflight),
                 file_opens=self._loader.files.file_opens, footer_reads=self._loader.files.footer_reads)
        return d

    # -- resumable state ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The position of the next sample, as a small JSON-serialisable dict: give it to
        :meth:`load_state_dict` (or ``make_reader(..., resume_from=state)``) of a reader made with the same
        arguments to continue exactly there."""
        return {"version": STATE_VERSION, "seed": int(self.plan.seed), "epoch": self._epoch, "unit": self._unit,
                "rows_in_unit": self._rows_in_unit, "end_epoch": self._end_epoch,
                "batched": self._batched_output, "plan": self.plan.fingerprint()}

    def load_state_dict(self, state: dict) -> None:
        """Continues from a position saved by :meth:`state_dict` (same dataset and arguments; ``seed`` may be None
        here: the saved seed is used)."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"Not a reader state of version {STATE_VERSION}: {state!r}")
        if state.get("batched") != self._batched_output:
            raise ValueError("The state was saved by a reader of the other kind (make_reader vs make_batch_reader)")
        plan = dataclasses.replace(self.plan, seed=int(state["seed"]))
        if list(state.get("plan", [])) != plan.fingerprint():
            raise ValueError("The state was saved by a reader with different row groups, sharding, drop partitions "
                             "or shuffle buffer; it cannot be resumed by this reader")
        with self._lock:
            self.plan = plan
            self._units_cache.clear()
            self._epoch, self._unit = int(state["epoch"]), int(state["unit"])
            self._rows_in_unit = int(state["rows_in_unit"])
            self._end_epoch = state.get("end_epoch", self.plan.num_epochs)
            self._pool.discard_pending()
            self._inflight.clear()
            self._ready.clear()
            self._schedule = None
            self._outputs = None
            self.last_row_consumed = False

    # -- the engine ---------------------------------------------------------------------------------------------

    def _units(self, epoch: int) -> list:
        units = self._units_cache.get(epoch)
        if units is None:
            units = self.plan.epoch_units(epoch)
            self._units_cache[epoch] = units
            for old in [e for e in self._units_cache if e < epoch - 1]:
                del self._units_cache[old]
        return units

    def _done(self, epoch: int) -> bool:
        return self._end_epoch is not None and epoch >= self._end_epoch

    def _schedule_from(self, epoch: int, unit: int) -> Iterator[tuple[int, int, WorkItem]]:
        if not self.plan.segments:
            return
        while not self._done(epoch):
            units = self._units(epoch)
            for index in range(unit, len(units)):
                for item in units[index]:
                    yield epoch, index, item
            epoch, unit = epoch + 1, 0

    def _fill(self, minimum: int) -> None:
        while len(self._inflight) < max(self._window, minimum):
            try:
                epoch, unit, item = next(self._schedule)
            except StopIteration:
                return
            seq = self._seq
            self._seq += 1
            self._pool.submit(seq, (item, epoch, self.plan.seed), self._loader.describe(item))
            self._inflight.append((seq, epoch, unit, item))

    def _next_result(self, unit_size: int) -> ItemResult:
        self._fill(unit_size)
        seq, epoch, unit, item = self._inflight.popleft()
        valid = {entry[0] for entry in self._inflight} | {seq}
        while seq not in self._ready:
            got_seq, ok, value = self._pool.get()
            if got_seq in valid:
                self._ready[got_seq] = (ok, value)
        ok, value = self._ready.pop(seq)
        if not ok:
            if isinstance(value, Exception):
                raise value
            raise ReaderWorkerError(f"A reader worker failed on {self._loader.describe(item)}: {value!r}")
        self._fill(0)
        stats = value.stats
        self._counters["items_read"] += 1
        for key in ("rows_read", "rows_filtered_out", "cache_requests", "cache_hits"):
            self._counters[key] += stats.get(key, 0)
        if "rows_after_predicate" in stats and "rows_read" in stats:
            self._counters["rows_dropped_by_predicate"] += (stats["rows_read"] - stats.get("rows_filtered_out", 0)
                                                            - stats["rows_after_predicate"])
        return value

    def _iterate(self) -> Iterator[Any]:
        self._schedule = self._schedule_from(self._epoch, self._unit)
        self._pool.discard_pending()
        self._inflight.clear()
        self._ready.clear()
        if not self.plan.segments:
            return
        while not self._done(self._epoch):
            units = self._units(self._epoch)
            if self._unit >= len(units):
                self._epoch, self._unit, self._rows_in_unit = self._epoch + 1, 0, 0
                continue
            unit = units[self._unit]
            results = [self._next_result(len(unit)) for _ in unit]
            if self._batched_output:
                outputs = self._unit_batches(results, self._epoch, self._unit)
            else:
                outputs = self._unit_rows(results, self._epoch, self._unit)
            skip = self._rows_in_unit
            if self._batched_output:
                for batch, rows in self._skip_batches(outputs, skip):
                    self._rows_in_unit += rows
                    self._counters["samples_emitted"] += 1
                    self._counters["rows_emitted"] += rows
                    yield batch
            else:
                for position in range(skip, len(outputs)):
                    self._rows_in_unit += 1
                    self._counters["samples_emitted"] += 1
                    self._counters["rows_emitted"] += 1
                    yield outputs[position]
            self._unit += 1
            self._rows_in_unit = 0

    # -- assembling outputs -------------------------------------------------------------------------------------

    def _rows_of(self, result: ItemResult) -> list:
        if result.rows is not None:
            return list(map(self._row_type._make, result.rows))
        if result.ngram_starts is not None:
            return self._ngrams_of(result)
        if result.num_rows == 0:
            return []
        lists = [list(result.columns[name]) for name in self._row_names]
        rows = list(map(self._row_type._make, zip(*lists)))
        if result.order is not None:
            rows = [rows[i] for i in result.order.tolist()]
        return rows

    def _ngrams_of(self, result: ItemResult) -> list:
        starts = result.ngram_starts.tolist()
        if not starts:
            return []
        columns = result.columns
        per_step = []
        for offset, (key, step_schema) in enumerate(self._ngram_steps):
            names = list(step_schema.fields)
            row_type = step_schema._get_namedtuple()
            lists = [list(columns[name]) for name in names]
            per_step.append((key, offset, list(map(row_type._make, zip(*lists))) if names else None, row_type))
        ngrams = []
        for start in starts:
            ngrams.append({key: (rows[start + offset] if rows is not None else row_type())
                           for key, offset, rows, row_type in per_step})
        return ngrams

    def _window_order(self, epoch: int, unit: int, count: int) -> np.ndarray:
        return np.random.default_rng([self.plan.seed, epoch, unit, 11]).permutation(count)

    def _unit_rows(self, results: list, epoch: int, unit: int) -> list:
        rows = [row for result in results for row in self._rows_of(result)]
        if len(results) > 1 or (self.plan.shuffle_buffer_size and len(rows) > 1):
            rows = [rows[i] for i in self._window_order(epoch, unit, len(rows)).tolist()]
        return rows

    def _unit_batches(self, results: list, epoch: int, unit: int) -> list:
        parts = [r for r in results if r.num_rows]
        if not parts:
            return []
        if not self.plan.shuffle_buffer_size:
            return [self._row_type(**r.columns) for r in parts]
        total = sum(r.num_rows for r in parts)
        order = self._window_order(epoch, unit, total)
        merged = {}
        for name in self._row_names:
            arrays = [r.columns[name] for r in parts]
            if any(a.dtype == object for a in arrays) and not all(a.dtype == object for a in arrays):
                arrays = [a.astype(object) if a.ndim == 1 else _objects(a) for a in arrays]
            merged[name] = np.concatenate(arrays)[order]
        size = max(1, -(-total // len(parts)))
        return [self._row_type(**{name: values[i:i + size] for name, values in merged.items()})
                for i in range(0, total, size)]

    @staticmethod
    def _skip_batches(batches: list, skip: int) -> Iterator[tuple[Any, int]]:
        for batch in batches:
            rows = len(batch[0]) if len(batch) else 0
            if skip >= rows:
                skip -= rows
                continue
            if skip:
                batch = type(batch)(*[values[skip:] for values in batch])
                rows -= skip
                skip = 0
            yield batch, rows


def _objects(array: np.ndarray) -> np.ndarray:
    out = np.empty(len(array), dtype=object)
    for i, value in enumerate(array):
        out[i] = value
    return out


# -- construction ------------------------------------------------------------------------------------------------


def _make_cache(options: ReaderOptions) -> tuple[Any, tuple | None, bool]:
    if options.cache_type in (None, "null"):
        return None, None, False
    from petastorm.cache import make_cache

    cache = make_cache(*options.cache_args)
    return cache, options.cache_args, bool(getattr(cache, "cleanup_on_stop", False))


def _read_schema(store: ParquetStore, stored_schema: Unischema, options: ReaderOptions) -> Unischema:
    """The stored fields the reader reads: those of the NGram's timesteps (and its timestamp), those matching
    ``schema_fields``, or all."""
    ngram = options.ngram
    if ngram is not None:
        ngram.resolve_regex_field_names(stored_schema)
        names = ngram.get_field_names_at_all_timesteps()
        if ngram._timestamp_name not in names:
            names.append(ngram._timestamp_name)
        unknown = [name for name in names if name not in stored_schema.fields]
        if unknown:
            raise ValueError(f"NGram fields {unknown} are not in the dataset schema {list(stored_schema.fields)}")
        if not ngram.timestamp_overlap and options.shuffle_row_drop_partitions > 1:
            raise NotImplementedError("timestamp_overlap=False is not implemented with "
                                      "shuffle_row_drop_partitions > 1")
        return stored_schema.create_schema_view([stored_schema.fields[name] for name in names])
    fields = options.schema_fields
    read_schema = stored_schema.create_schema_view(list(fields)) if fields is not None else stored_schema
    if not read_schema.fields:
        raise ValueError(f"No fields match {fields!r} in the dataset {store.root} "
                         f"(its fields: {list(stored_schema.fields)})")
    return read_schema


def _assemble(reader: Reader, dataset_url: Any, store: ParquetStore, stored_schema: Unischema,
              options: ReaderOptions) -> Reader:
    """Plans the reads, makes the loader and the pool, and starts ``reader`` on them."""
    read_schema = _read_schema(store, stored_schema, options)
    transform_spec = options.transform_spec
    output_schema = transform_schema(read_schema, transform_spec) if transform_spec else read_schema
    pieces = load_row_groups(store)
    files = ParquetFileCache()
    filters = options.filters
    filter_plan = plan_filters(store, pieces, filters, list(stored_schema.fields)) if filters else None
    plan = plan_reads(
        store, pieces, stored_schema, options.predicate, options.rowgroup_selector, options.cur_shard,
        options.shard_count, options.shuffle_row_groups, options.shuffle_row_drop_partitions, options.num_epochs,
        options.seed, options.shard_seed, options.shard_mode, options.shard_remainder, options.shuffle_buffer_size,
        filter_plan.allowed_indexes if filter_plan is not None else None,
        lambda index: files.footer(store, pieces[index].path).row_group(pieces[index].row_group).num_rows)
    cache, cache_args_used, cache_cleanup = _make_cache(options)
    kind = options.reader_pool_type
    pool = make_pool(kind, _thread_count(kind, options.workers_count, store), options.worker_timeout)
    loader = ItemLoader(store, pieces, stored_schema, read_schema, output_schema, options.batched, transform_spec,
                        plan.worker_predicate, filter_plan, options.shuffle_rows, options.ngram, cache_args_used,
                        dataset_url, files, parallel_decode=_shares_decoding(pool))
    loader._cache = cache
    reader._start(output_schema, plan, loader, pool, options.batched, options.ngram, options.results_queue_size,
                  dataset_url, cache, cache_cleanup)
    if options.resume_from is not None:
        reader.load_state_dict(options.resume_from)
    return reader


def _build(dataset_url: Any, store: ParquetStore, stored_schema: Unischema, options: ReaderOptions) -> Reader:
    return _assemble(Reader.__new__(Reader), dataset_url, store, stored_schema, options)


def _shares_decoding(pool: Any) -> bool:
    """Whether a worker may share its image slices with helper threads when a core is idle. Threads see each other
    busy (one process-wide count) and the calling thread of the dummy pool is alone; worker processes cannot see
    each other, so they get helpers only when there are no more of them than cores (measured with PNG on 2
    cores: 10 processes went from 14,000-14,800 to 15,500-16,400 rows/s without helpers, while 2 processes are
    faster with them)."""
    return pool.kind != "process" or pool.workers_count <= cpu_count()


def _thread_count(reader_pool_type: str, workers_count: Any, store: ParquetStore) -> Any:
    """On local storage reading and decoding are CPU-bound: more threads than cores only add contention (measured:
    10 threads on 2 cores cost about 1.6x the CPU per row of 2 threads, and 3 threads about 3% more than 2), so the
    thread pool starts at most ``cpu_count`` of the ``workers_count`` threads there. Remote storage
    (latency-bound) gets them all."""
    if reader_pool_type != "thread" or not isinstance(workers_count, int) or workers_count < 1:
        return workers_count
    if store.is_local:
        return min(workers_count, cpu_count())
    return workers_count


_COMMON_DOC = """
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
        :class:`~petastorm.reader_impl.pools.WorkerTimeoutError` (None: no limit; default 600).
"""


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
                worker_timeout: float | None = DEFAULT_WORKER_TIMEOUT_S) -> Reader:
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
        warnings.warn(f"{dataset_url} is not a Petastorm dataset (no stored Unischema); make_reader infers the "
                      "schema from Parquet. make_batch_reader reads plain Parquet stores much faster.")
        stored_schema = infer_or_load_unischema(store)
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
                      worker_timeout: float | None = DEFAULT_WORKER_TIMEOUT_S) -> Reader:
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


make_reader.__doc__ += _COMMON_DOC
make_batch_reader.__doc__ += _COMMON_DOC.replace(":param dataset_url:", ":param dataset_url_or_urls:")
