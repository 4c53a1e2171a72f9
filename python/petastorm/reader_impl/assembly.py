"""Building a reader: the fields it reads, the cache, the plan, the loader and the pool, from a store, its
schema and the :class:`~petastorm.reader_impl.options.ReaderOptions`; then starting the engine on them."""
from __future__ import annotations

from typing import Any

from petastorm.parquet_store import FilePieces, ParquetStore
from petastorm.reader_impl.filtering import plan_filters
from petastorm.reader_impl.loaders import ItemLoader
from petastorm.reader_impl.options import ReaderOptions
from petastorm.reader_impl.file_planning import plan_file_reads, plans_by_file
from petastorm.reader_impl.planning import ReadPlan, plan_reads
from petastorm.reader_impl.pools import cpu_count, make_pool
from petastorm.reader_impl.row_group_io import ParquetFileCache
from petastorm.etl.dataset_metadata import footer_row_groups, listed_row_groups
from petastorm.transform import transform_schema
from petastorm.unischema import Unischema

__all__ = ["assemble", "shares_decoding"]


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


def assemble(reader: Any, dataset_url: Any, store: ParquetStore, stored_schema: Unischema,
              options: ReaderOptions) -> Any:
    """Plans the reads, makes the loader and the pool, and starts ``reader`` (a
    :class:`~petastorm.reader_impl.engine.ReaderCore`) on them."""
    read_schema = _read_schema(store, stored_schema, options)
    transform_spec = options.transform_spec
    output_schema = transform_schema(read_schema, transform_spec) if transform_spec else read_schema
    files = ParquetFileCache()
    pieces, plan, filter_plan = _plan(store, stored_schema, options, files)
    cache, cache_args_used, cache_cleanup = _make_cache(options)
    kind = options.reader_pool_type
    pool = make_pool(kind, _thread_count(kind, options.workers_count, store), options.worker_timeout)
    loader = ItemLoader(store, pieces, stored_schema, read_schema, output_schema, options.batched, transform_spec,
                        plan.worker_predicate, filter_plan, options.shuffle_rows, options.ngram, cache_args_used,
                        dataset_url, files, parallel_decode=shares_decoding(pool), decode_limits=options.decode_limits)
    loader._cache = cache
    reader._start(output_schema, plan, loader, pool, options.batched, options.ngram, options.results_queue_size,
                  dataset_url, cache, cache_cleanup)
    if options.resume_from is not None:
        reader.load_state_dict(options.resume_from)
    return reader


def _plan(store: ParquetStore, stored_schema: Unischema, options: ReaderOptions,
          files: ParquetFileCache) -> tuple[Any, ReadPlan, Any]:
    """The pieces (a list, or :class:`FilePieces` for a plan over files), the plan and the ``filters`` plan."""
    pieces = listed_row_groups(store)
    if pieces is None and plans_by_file(options.rowgroup_selector, options.cur_shard, options.shard_count,
                                        options.shuffle_buffer_size, options.filters):
        pieces = FilePieces(store.data_files)
        return pieces, plan_file_reads(store, pieces, stored_schema, options.predicate, options.shuffle_row_groups,
                                       options.shuffle_row_drop_partitions, options.num_epochs, options.seed), None
    if pieces is None:
        pieces = footer_row_groups(store)
    filters = options.filters
    filter_plan = plan_filters(store, pieces, filters, list(stored_schema.fields)) if filters else None
    plan = plan_reads(
        store, pieces, stored_schema, options.predicate, options.rowgroup_selector, options.cur_shard,
        options.shard_count, options.shuffle_row_groups, options.shuffle_row_drop_partitions, options.num_epochs,
        options.seed, options.shard_seed, options.shard_mode, options.shard_remainder, options.shuffle_buffer_size,
        filter_plan.allowed_indexes if filter_plan is not None else None,
        lambda index: files.footer(store, pieces[index].path).row_group(pieces[index].row_group).num_rows)
    return pieces, plan, filter_plan


def shares_decoding(pool: Any) -> bool:
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
