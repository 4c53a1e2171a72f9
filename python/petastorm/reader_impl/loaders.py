"""Turning one work item into decoded columns: what a reader worker (thread or process) runs.

Per item: read the needed columns of one row group (one open per file and thread, footers cached), cut the item's
row range and drop partition, apply ``filters`` to the rows, decode whole columns (``decode_column``), apply the
predicate (vectorised for ``make_batch_reader``; on the predicate's columns only, before the other columns are
decoded, for ``make_reader``), the transform, the n-gram search and the in-row-group shuffle. The result is an
:class:`ItemResult` of numpy columns; ``make_reader``'s namedtuples are built from it by the consumer.
"""
from __future__ import annotations

import collections.abc
import os
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from petastorm.decode_limits import DecodeLimits, using_decode_limits
from petastorm.errors import DecodeFieldError
from petastorm.parquet_store import FilePieces, ParquetStore, RowGroupPiece
from petastorm.predicates import PredicateBase
from petastorm.reader_impl.filtering import FilterPlan, filter_mask_indices
from petastorm.reader_impl.planning import WorkItem
from petastorm.reader_impl.decoding import busy_thread, decode_table
from petastorm.reader_impl.row_group_io import ParquetFileCache, read_piece_columns
from petastorm.reader_impl.shuffling import ROWS, permutation
from petastorm.transform import TransformSpec
from petastorm.unischema import Unischema


class ReaderWorkerError(RuntimeError):
    """A reader worker failed with an exception that could not be re-raised as its own type."""


@dataclass
class ItemResult:
    """The decoded output of one work item.

    ``columns``: name -> numpy array (``num_rows`` long); ``rows``: output tuples already built (``make_reader``
    with a transform function); ``order``: the row (or n-gram) order to apply when building rows;
    ``ngram_starts``: row positions of the kept n-grams.
    """

    num_rows: int
    columns: dict | None = None
    rows: list | None = None
    order: np.ndarray | None = None
    ngram_starts: np.ndarray | None = None
    stats: dict = field(default_factory=dict)


def row_range(num_rows: int, partition: int, num_partitions: int) -> tuple[int, int]:
    """The contiguous rows of drop partition ``partition`` (same split as the original's drop mask)."""
    if num_partitions <= 1 or num_rows == 0:
        return 0, num_rows
    slice_size = num_rows / min(num_rows, num_partitions)
    positions = np.floor(np.arange(num_rows) / slice_size)
    selected = np.flatnonzero(positions == partition)
    if not len(selected):
        return 0, 0
    return int(selected[0]), int(selected[-1]) + 1


def annotate(exc: BaseException, context: str) -> BaseException:
    """``exc`` re-created with ``context`` (which file, row group) in front of its message, same type if possible."""
    message = f"{context}: {exc}"
    try:
        new = type(exc)(message)
        if str(new) != message:
            raise TypeError
    except Exception:
        new = ReaderWorkerError(f"{context}: {type(exc).__name__}: {exc}")
    new.__cause__ = exc
    return new


class ItemLoader:
    """Reads and decodes work items; picklable (with cloudpickle) so process workers can run it."""

    def __init__(self, store: ParquetStore, pieces: Sequence[RowGroupPiece] | FilePieces, stored_schema: Unischema,
                 read_schema: Unischema, output_schema: Unischema, batched: bool,
                 transform_spec: TransformSpec | None, predicate: PredicateBase | None,
                 filter_plan: FilterPlan | None, shuffle_rows: bool, ngram: Any = None,
                 cache_args: tuple | None = None, dataset_key: Any = None, files: ParquetFileCache | None = None,
                 parallel_decode: bool = True, decode_limits: DecodeLimits = DecodeLimits()):
        self._store = store
        self._pieces = pieces if isinstance(pieces, FilePieces) else list(pieces)
        self._read_schema = read_schema
        self._output_schema = output_schema
        self._batched = batched
        self._transform_spec = transform_spec
        self._predicate = predicate
        self._filter = filter_plan
        self._shuffle_rows = shuffle_rows
        self._ngram = ngram
        self._cache_args = cache_args
        self._dataset_key = dataset_key
        self.files = files or ParquetFileCache()
        self._parallel_decode = parallel_decode
        self._decode_limits = decode_limits
        self._cache = None
        self._executor: ThreadPoolExecutor | None = None
        extra: list[str] = []
        if predicate is not None:
            fields = set(predicate.get_fields())
            if not fields:
                raise ValueError("The predicate's get_fields() must name at least one field")
            unknown = fields - set(stored_schema.fields)
            if unknown:
                raise ValueError(f"Predicate fields {sorted(unknown)} are not in the dataset schema "
                                 f"{list(stored_schema.fields)}")
            extra = sorted(fields - set(read_schema.fields))
        self._decode_schema = Unischema(read_schema._name, list(read_schema.fields.values()) +
                                        [stored_schema.fields[name] for name in extra])
        self._extra = set(extra)
        self._columns = list(self._decode_schema.fields)
        filter_columns = list(filter_plan.columns) if filter_plan is not None else []
        self._filter_only = [name for name in filter_columns if name not in self._columns]
        self._pred_fields = sorted(predicate.get_fields()) if predicate is not None else []
        self._stored_schema = stored_schema
        self._validate_output()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = None
        state["_executor"] = None
        return state

    def _validate_output(self) -> None:
        if self._transform_spec is None or self._transform_spec.func is None:
            missing = [name for name in self._output_schema.fields if name not in self._read_schema.fields]
            if missing:
                raise ValueError(f"The transform adds fields {missing} but has no function to compute them")

    # -- resources --------------------------------------------------------------------------------------------

    def _get_cache(self) -> Any:
        if self._cache_args is None:
            return None
        if self._cache is None:
            from petastorm.cache import make_cache

            self._cache = make_cache(*self._cache_args)
        return self._cache

    def _get_executor(self) -> ThreadPoolExecutor | None:
        if not self._parallel_decode or (os.cpu_count() or 1) < 2:
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                                thread_name_prefix="petastorm-decode")
        return self._executor

    def close(self) -> None:
        """Stops the decode threads and closes the calling thread's files."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self.files.close_thread_files()

    # -- reading ----------------------------------------------------------------------------------------------

    def _describe(self, item: WorkItem) -> str:
        piece = self._pieces[item.piece_index]
        where = f"row group {piece.row_group} of {self._store.full_path(piece.path)} (piece {item.piece_index}"
        if item.start or item.stop is not None:
            where += f", rows {item.start}:{item.stop}"
        if item.num_drop_partitions > 1:
            where += f", drop partition {item.drop_partition}/{item.num_drop_partitions}"
        return where + ")"

    def describe(self, item: WorkItem) -> str:
        return self._describe(item)

    def _read_table(self, item: WorkItem, stats: dict) -> pa.Table:
        piece = self._pieces[item.piece_index]
        table = read_piece_columns(self._store, piece, self._columns + self._filter_only, self.files,
                                   self._stored_schema)
        if item.start or item.stop is not None:
            stop = table.num_rows if item.stop is None else min(item.stop, table.num_rows)
            table = table.slice(item.start, max(0, stop - item.start))
        if item.num_drop_partitions > 1:
            lo, hi = row_range(table.num_rows, item.drop_partition, item.num_drop_partitions)
            table = table.slice(lo, hi - lo)
        stats["rows_read"] = table.num_rows
        if self._filter is not None and table.num_rows:
            evaluated = table.select(self._filter.columns)
            for name, arrow_type in self._filter.partition_types.items():
                if name in evaluated.column_names and arrow_type != evaluated.schema.field(name).type:
                    position = evaluated.column_names.index(name)
                    evaluated = evaluated.set_column(position, name, evaluated.column(name).cast(arrow_type))
            indices = filter_mask_indices(evaluated, self._filter.expression)
            if indices is not None:
                table = table.take(indices)
        stats["rows_filtered_out"] = stats["rows_read"] - table.num_rows
        if self._filter_only:
            table = table.drop_columns(self._filter_only)
        return table

    def _decode(self, table: pa.Table) -> dict:
        return decode_table(table, self._decode_schema, self._batched, self._get_executor())

    def _cache_key(self, item: WorkItem) -> str:
        from petastorm.cache import cache_key

        piece = self._pieces[item.piece_index]  # the file and row group: the same under either piece numbering
        extra = {"file": piece.path, "kind": "batch" if self._batched else "rows", "start": item.start,
                 "stop": item.stop, "part": item.drop_partition, "parts": item.num_drop_partitions,
                 "filters": str(self._filter.expression) if self._filter is not None else None}
        return cache_key(self._dataset_key, piece.row_group, self._columns, None, extra)

    def _predicate_frame(self, columns: dict) -> pd.DataFrame:
        return pd.DataFrame({name: (list(columns[name]) if columns[name].ndim > 1 else columns[name])
                             for name in self._pred_fields})

    def _predicate_mask(self, columns: dict, num_rows: int) -> np.ndarray:
        if self._batched:
            mask = self._predicate.do_include_batch(self._predicate_frame(columns))
        else:
            names = self._pred_fields
            lists = [list(columns[name]) for name in names]
            do_include = self._predicate.do_include
            mask = np.fromiter((bool(do_include(dict(zip(names, values)))) for values in zip(*lists)),
                               dtype=bool, count=num_rows)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (num_rows,):
            raise ValueError(f"The predicate returned a mask of shape {mask.shape} for {num_rows} rows")
        return mask

    def _load_columns(self, item: WorkItem, stats: dict) -> tuple[dict, int]:
        cache = self._get_cache()
        if cache is not None:
            stats["cache_requests"] = 1
            loaded = {}

            def fill() -> dict:
                table = self._read_table(item, stats)
                loaded["n"] = table.num_rows
                return self._decode(table)

            columns = cache.get(self._cache_key(item), fill)
            stats["cache_hits"] = 0 if loaded else 1
            num_rows = len(next(iter(columns.values()))) if columns else 0
            if self._predicate is not None and num_rows:
                mask = self._predicate_mask(columns, num_rows)
                columns = {name: values[mask] for name, values in columns.items()}
                num_rows = int(mask.sum())
            return columns, num_rows
        table = self._read_table(item, stats)
        if self._predicate is None or table.num_rows == 0:
            return self._decode(table), table.num_rows
        predicate_columns = decode_table(table.select(self._pred_fields), self._decode_schema, self._batched)
        mask = self._predicate_mask(predicate_columns, table.num_rows)
        rest = [name for name in table.column_names if name not in predicate_columns]
        columns = {name: values[mask] for name, values in predicate_columns.items()}
        columns.update(self._decode(table.select(rest).filter(pa.array(mask))))
        return {name: columns[name] for name in table.column_names}, int(mask.sum())

    # -- the work ---------------------------------------------------------------------------------------------

    def __call__(self, task: tuple) -> ItemResult:
        item, epoch, seed = task
        try:
            with busy_thread(), using_decode_limits(self._decode_limits):
                return self._run(item, epoch, seed)
        except Exception as e:
            raise annotate(e, f"Reading {self._describe(item)} failed") from None

    @staticmethod
    def _row_order(item: WorkItem, epoch: int, seed: int, count: int) -> np.ndarray:
        return permutation(count, seed, epoch, ROWS, item.piece_index, item.drop_partition, item.start)

    def _run(self, item: WorkItem, epoch: int, seed: int) -> ItemResult:
        stats: dict = {}
        columns, num_rows = self._load_columns(item, stats)
        stats["rows_after_predicate"] = num_rows
        for name in self._extra:
            columns.pop(name, None)
        if self._ngram is not None:
            starts = self._ngram.ngram_starts(columns[self._ngram._timestamp_name]) if num_rows else \
                np.zeros(0, np.int64)
            if self._shuffle_rows and len(starts) > 1:
                starts = starts[self._row_order(item, epoch, seed, len(starts))]
            return ItemResult(len(starts), columns=columns, ngram_starts=starts, stats=stats)
        if self._batched:
            return self._run_batch(item, epoch, seed, columns, num_rows, stats)
        spec = self._transform_spec
        order = None
        if self._shuffle_rows and num_rows > 1:
            order = self._row_order(item, epoch, seed, num_rows)
        if spec is not None and spec.func is not None:
            rows = self._transform_rows(columns, num_rows)
            if order is not None:
                rows = [rows[i] for i in order.tolist()]
            return ItemResult(len(rows), rows=rows, stats=stats)
        return ItemResult(num_rows, columns={name: columns[name] for name in self._output_schema.fields},
                          order=order, stats=stats)

    def _transform_rows(self, columns: dict, num_rows: int) -> list:
        names = list(columns)
        lists = [list(columns[name]) for name in names]
        output_names = list(self._output_schema.fields)
        func = self._transform_spec.func
        rows = []
        for values in zip(*lists):
            row = func(dict(zip(names, values)))
            if not isinstance(row, collections.abc.Mapping):
                raise TypeError(_transform_output_error(func, "a dict of the row's fields (make_reader)", row))
            try:
                rows.append(tuple([row[name] for name in output_names]))
            except KeyError:
                missing = [name for name in output_names if name not in row]
                raise ValueError(f"The transformed row lacks fields {missing} of the reader schema "
                                 f"{output_names}") from None
        return rows

    def _run_batch(self, item: WorkItem, epoch: int, seed: int, columns: dict, num_rows: int,
                   stats: dict) -> ItemResult:
        if num_rows == 0:
            return ItemResult(0, columns={}, stats=stats)
        if self._transform_spec is not None:
            columns = self._transform_batch(columns)
            num_rows = len(next(iter(columns.values()))) if columns else 0
        missing = [name for name in self._output_schema.fields if name not in columns]
        if missing:
            raise ValueError(f"The transformed output lacks fields {missing} of the reader schema "
                             f"{list(self._output_schema.fields)}")
        columns = {name: columns[name] for name in self._output_schema.fields}
        if self._shuffle_rows and num_rows > 1:
            order = self._row_order(item, epoch, seed, num_rows)
            columns = {name: values[order] for name, values in columns.items()}
        return ItemResult(num_rows, columns=columns, stats=stats)

    def _transform_batch(self, columns: dict) -> dict:
        spec = self._transform_spec
        if spec.func is None:
            return {name: values for name, values in columns.items() if name not in spec.removed_fields}
        frame = pd.DataFrame({name: list(values) if values.ndim > 1 else values for name, values in columns.items()})
        frame = spec.func(frame)
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(_transform_output_error(spec.func, "a pandas DataFrame (make_batch_reader)", frame))
        return {name: _series_to_numpy(frame[name]) for name in frame.columns if name not in spec.removed_fields}


def _transform_output_error(func: Any, expected: str, got: Any) -> str:
    name = getattr(func, "__qualname__", None) or repr(func)
    hint = (" To return several values, return a dict, e.g. {'image': ..., 'label': ...}, and declare new or "
            "changed fields in TransformSpec(edit_fields=...)") if isinstance(got, (tuple, list)) else ""
    return f"TransformSpec func {name} must return {expected}; it returned a {type(got).__name__}.{hint}"


def _series_to_numpy(series: pd.Series) -> np.ndarray:
    values = series.to_numpy()
    if values.dtype == object and len(values) and all(isinstance(v, np.ndarray) for v in values):
        try:
            return np.stack(list(values))
        except ValueError:
            return values
    if values.dtype == object and len(values) and all(isinstance(v, str) for v in values):
        return values.astype(np.str_)
    return values


def format_remote_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
