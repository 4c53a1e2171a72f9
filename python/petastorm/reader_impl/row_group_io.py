"""Reading one row group's columns into Arrow (with typed Hive partition columns); decoding them is
:mod:`petastorm.reader_impl.decoding`.

Files are opened once per reading thread (or process) and their footers are read once per process: see
:class:`ParquetFileCache`.
"""
from __future__ import annotations

import collections
import threading
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.unischema import Unischema


class ParquetFileCache:
    """Footers cached (bounded LRU) and open ``ParquetFile`` handles cached per thread, so every file is opened at
    most once by each reading thread and its footer parsed once. One per reader; a pickled copy (sent to a worker
    process) starts empty."""

    def __getstate__(self) -> dict:
        return {"max_footers": self._max_footers, "max_open_files": self._max_open_files}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_footers"], state["max_open_files"])

    def __init__(self, max_footers: int = 4096, max_open_files: int = 64):
        self._footers: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict = {}
        self._local = threading.local()
        self._max_footers = max_footers
        self._max_open_files = max_open_files
        self.footer_reads = 0
        self.file_opens = 0

    def footer(self, store: ParquetStore, relative_path: str) -> pq.FileMetaData:
        key = (id(store.filesystem), store.root, relative_path)
        with self._lock:
            md = self._footers.get(key)
            if md is not None:
                self._footers.move_to_end(key)
                return md
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one read per footer, also when several threads ask at once
            with self._lock:
                md = self._footers.get(key)
            if md is None:
                md = store.footer(relative_path)
                with self._lock:
                    self.footer_reads += 1
                    self._footers[key] = md
                    self._loading.pop(key, None)
                    while len(self._footers) > self._max_footers:
                        self._footers.popitem(last=False)
        return md

    def open(self, store: ParquetStore, relative_path: str) -> pq.ParquetFile:
        handles = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = collections.OrderedDict()
        key = (id(store.filesystem), store.root, relative_path)
        pf = handles.get(key)
        if pf is not None:
            handles.move_to_end(key)
            return pf
        metadata = self.footer(store, relative_path)
        pf = store.open_parquet_file(relative_path, metadata)
        with self._lock:
            self.file_opens += 1
        handles[key] = pf
        while len(handles) > self._max_open_files:
            _, old = handles.popitem(last=False)
            try:
                old.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        return pf

    def close_thread_files(self) -> None:
        """Closes the files opened by the calling thread."""
        handles = getattr(self._local, "handles", None) or {}
        for pf in handles.values():
            try:
                pf.close()
            except Exception:  # pragma: no cover
                pass
        self._local.handles = collections.OrderedDict()


def partition_column_types(store: ParquetStore, schema: Unischema | None) -> dict:
    """The Arrow type of each Hive partition column: the store's inference (:attr:`ParquetStore.partition_types`),
    except that a column the schema declares as non-integer stays a string even when its values look like
    integers."""
    types = dict(store.partition_types)
    for name in types:
        field = schema.fields.get(name) if schema is not None else None
        dtype = getattr(field, "numpy_dtype", None)
        if field is not None and not (isinstance(dtype, type) and issubclass(dtype, np.integer)):
            types[name] = pa.string()
    return types


def read_piece_columns(store: ParquetStore, piece: RowGroupPiece, column_names: Sequence[str],
                       files: ParquetFileCache, schema: Unischema | None = None) -> pa.Table:
    """Reads ``column_names`` of one row group through the file cache; a Hive partition column is built from the
    path, typed by :func:`partition_column_types` (``schema``: the dataset's stored schema, if any)."""
    partition_values = dict(piece.partition_keys)
    if partition_values:
        partition_types = partition_column_types(store, schema)
    parquet_file = files.open(store, piece.path)
    file_columns = set(parquet_file.schema_arrow.names)
    stored = [name for name in column_names if name not in partition_values]
    missing = [name for name in stored if name not in file_columns]
    if missing:
        raise ValueError(f"Columns {missing} requested but not found in {store.full_path(piece.path)} "
                         f"(it has {sorted(file_columns)})")
    table = parquet_file.read_row_group(piece.row_group, columns=stored, use_threads=False)
    columns = []
    for name in column_names:
        if name in partition_values:
            value = pa.scalar(partition_values[name], pa.string())
            if partition_types.get(name, pa.string()) != pa.string():
                value = value.cast(partition_types[name])
            columns.append(pa.array([value.as_py()] * table.num_rows, value.type))
        else:
            columns.append(table.column(name))
    return pa.table(columns, names=list(column_names)) if columns else table
