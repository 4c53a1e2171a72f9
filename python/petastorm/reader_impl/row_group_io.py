"""Reading one row group into Arrow and decoding it: into row dicts (``make_reader``) or numpy columns
(``make_batch_reader``).

Files are opened once per reading thread (or process) and their footers are read once per process: see
:class:`ParquetFileCache`.
"""
from __future__ import annotations

import collections
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from petastorm._checks import is_compliant_shape
from petastorm.codecs import (CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec, ScalarCodec,
                              _parse_npy_header, decode_column, decode_value)
from petastorm.errors import DecodeFieldError
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


# Image and compressed-array columns are decoded in slices of about this many cells, spread over the cores.
_SLICE_CELLS = 32
_CORES = os.cpu_count() or 1
_busy_lock = threading.Lock()
_busy_threads = 0  # threads reading or decoding now, process-wide
_busy_depth = threading.local()


@contextlib.contextmanager
def busy_thread() -> Iterator[None]:
    """Counts the calling thread as busy (process-wide) while the block runs; nested blocks count once. Slice
    decoding sends helper threads only while fewer threads are busy than there are cores."""
    global _busy_threads
    depth = getattr(_busy_depth, "value", 0)
    if depth == 0:
        with _busy_lock:
            _busy_threads += 1
    _busy_depth.value = depth + 1
    try:
        yield
    finally:
        _busy_depth.value = depth
        if depth == 0:
            with _busy_lock:
                _busy_threads -= 1


class _BufferView:
    """Exposes part of an Arrow buffer to numpy (``__array_interface__``) and keeps the buffer alive."""

    def __init__(self, buffer: pa.Buffer, offset: int, shape: tuple, strides: tuple, dtype: np.dtype):
        self._buffer = buffer
        self.__array_interface__ = {"data": (buffer.address + offset, False), "shape": shape,
                                    "strides": strides, "typestr": dtype.str, "version": 3}


def npy_column_view(field: Any, column: pa.Array) -> np.ndarray | None:
    """A fixed-shape NPY column (every cell the same header, C order, no nulls) as one ``(N, *shape)`` array that
    views the Arrow data buffer in place (strided over the cell headers, writable, no copy); None when the column
    does not qualify (``decode_column`` then copies or decodes cell by cell)."""
    n = len(column)
    if n == 0 or column.null_count or not isinstance(field.codec, NdarrayCodec) or \
            not all(d is not None for d in field.shape) or not pa.types.is_binary(column.type):
        return None
    _, offsets_buf, data_buf = column.buffers()[:3]
    if data_buf is None:
        return None
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1, offset=column.offset * 4)
    cell_len = int(offsets[1] - offsets[0])
    if int(offsets[-1] - offsets[0]) != cell_len * n:
        return None
    lengths = np.diff(offsets)
    if not (lengths == cell_len).all():
        return None
    start = int(offsets[0])
    data = np.frombuffer(data_buf, dtype=np.uint8)
    dtype, shape, fortran, header_len = _parse_npy_header(field.name, data[start:start + cell_len].tobytes())
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if fortran or cell_len != header_len + nbytes or dtype.hasobject or \
            not is_compliant_shape(tuple(shape), field.shape) or cell_len % dtype.itemsize or \
            (data_buf.address + start + header_len) % dtype.itemsize:
        return None
    headers = np.lib.stride_tricks.as_strided(data[start:], shape=(n, header_len), strides=(cell_len, 1),
                                              writeable=False)
    if not (headers == headers[0]).all():
        return None
    inner = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) * dtype.itemsize for i in range(len(shape)))
    view = _BufferView(data_buf, start + header_len, (n,) + tuple(shape), (cell_len,) + inner, dtype)
    return np.asarray(view)


def _fast_image_slice(field: Any, column: pa.Array, out: np.ndarray, lo: int, hi: int) -> bool:
    """Decodes cells ``lo:hi`` of an image column with OpenCV straight into ``out`` (RGB order), reading the cells
    in place from the Arrow buffer; False when a cell does not decode to the field's shape and dtype (the caller
    then uses the codec, which raises the precise error)."""
    import cv2

    _, offsets_buf, data_buf = column.buffers()[:3]
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=hi - lo + 1, offset=(column.offset + lo) * 4).tolist()
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    imdecode, unchanged, cvt_color, bgr2rgb = cv2.imdecode, cv2.IMREAD_UNCHANGED, cv2.cvtColor, cv2.COLOR_BGR2RGB
    shape, dtype, color = out.shape[1:], out.dtype, out.ndim == 4
    for i, start, stop in zip(range(lo, hi), offsets, offsets[1:]):
        image = imdecode(data[start:stop], unchanged)
        if image is None or image.shape != shape or image.dtype != dtype:
            return False
        if color:
            cvt_color(image, bgr2rgb, dst=out[i])
        else:
            out[i] = image
    return True


def _run_sliced(executor: ThreadPoolExecutor | None, count: int, fn: Callable[[int], Any]) -> list:
    """``[fn(0), ..., fn(count - 1)]``, computed by the calling thread, joined by ``executor`` threads while cores
    are idle.

    The caller works through the slices itself. Between two slices it looks at how many threads are busy
    process-wide (:func:`busy_thread`: reader workers count from the start to the end of each work item, reading
    included): while reader workers keep every core busy with their own row groups (the common case), it goes
    on alone, a tight loop being the cheapest per row; once a core is idle (a lone worker, or the last row groups
    of an epoch) it sends helpers that take the slices nobody has started. The first exception stops the slices
    not yet started and is raised once the running ones have ended."""
    results: list = [None] * count
    lock = threading.Lock()
    state: dict = {"next": 0, "error": None}

    def take() -> int | None:
        with lock:
            if state["next"] >= count or state["error"] is not None:
                return None
            state["next"] += 1
            return state["next"] - 1

    def run(i: int) -> bool:
        """Slice ``i``; False (the error kept for the caller to raise) when it fails."""
        try:
            results[i] = fn(i)
            return True
        except BaseException as e:  # noqa: BLE001 - raised by the caller
            with lock:
                state["error"] = state["error"] or e
            return False

    def drain() -> None:
        with busy_thread():
            while (i := take()) is not None:
                run(i)

    helpers: list = []
    try:
        with busy_thread():
            while (i := take()) is not None and run(i):
                idle = _CORES - _busy_threads
                if executor is not None and idle > 0 and state["next"] < count:
                    for _ in range(min(idle, count - state["next"])):
                        try:
                            helpers.append(executor.submit(drain))
                        except RuntimeError:  # the reader is closing and shut its executor down: finish alone
                            break
                    executor = None  # helpers are sent once per job
    finally:
        for helper in helpers:
            if not helper.cancel():
                helper.result()
    if state["error"] is not None:
        raise state["error"]
    return results


def _slice_bounds(n: int) -> np.ndarray:
    return np.linspace(0, n, max(1, n // _SLICE_CELLS) + 1).astype(int)


def _image_column_opencv(field: Any, column: pa.Array, executor: ThreadPoolExecutor | None) -> np.ndarray | None:
    """A fixed-shape, null-free PNG/JPEG column decoded by OpenCV into one preallocated ``(N, *shape)`` array, in
    slices on all cores; None when OpenCV is not the image backend or the column does not qualify."""
    from petastorm import codecs

    n = len(column)
    shape = tuple(field.shape)
    if codecs._opencv() is None or n == 0 or column.null_count or not pa.types.is_binary(column.type) or \
            any(d is None for d in shape) or not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)):
        return None
    try:
        dtype = np.dtype(field.numpy_dtype)
    except TypeError:
        return None
    if dtype not in (np.uint8, np.uint16):
        return None
    out = np.empty((n,) + shape, dtype=dtype)
    bounds = _slice_bounds(n)
    ok = _run_sliced(executor, len(bounds) - 1,
                     lambda k: _fast_image_slice(field, column, out, int(bounds[k]), int(bounds[k + 1])))
    return out if all(ok) else None


def decode_column_parallel(field: Any, column: pa.ChunkedArray | pa.Array,
                           executor: ThreadPoolExecutor | None = None) -> np.ndarray:
    """``decode_column``; with an ``executor``, image and compressed-array columns are split in slices decoded on
    all cores (the decoders release the GIL)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    n = len(column)
    if isinstance(field.codec, CompressedImageCodec):
        fast = _image_column_opencv(field, column, executor)
        if fast is not None:
            return fast
    if executor is None or not isinstance(field.codec, (CompressedImageCodec, CompressedNdarrayCodec)) \
            or n < 2 * _SLICE_CELLS:
        return decode_column(field, column)
    bounds = _slice_bounds(n)
    results = _run_sliced(executor, len(bounds) - 1,
                          lambda k: decode_column(field, column.slice(int(bounds[k]), int(bounds[k + 1] - bounds[k]))))
    if any(r.dtype == object for r in results) and not all(r.dtype == object for r in results):
        out = np.empty(n, dtype=object)
        position = 0
        for r in results:
            for value in r:
                out[position] = value
                position += 1
        return out
    return np.concatenate(results)


def row_drop_mask(num_rows: int, partition: int, num_partitions: int) -> np.ndarray:
    """Rows kept by drop partition ``partition`` of ``num_partitions`` (contiguous, near-equal slices)."""
    if num_partitions <= 1 or num_rows == 0:
        return np.ones(num_rows, dtype=bool)
    slice_size = num_rows / min(num_rows, num_partitions)
    return np.floor(np.arange(num_rows) / slice_size) == partition


def decode_rows(table: pa.Table, schema: Unischema) -> list[dict]:
    """Decodes every row of ``table`` into a dict of the fields of ``schema`` present in it."""
    fields = [schema.fields[name] for name in table.column_names if name in schema.fields]
    columns = [table.column(field.name).to_pylist() for field in fields]
    return [{field.name: decode_value(field, column[i]) for field, column in zip(fields, columns)}
            for i in range(table.num_rows)]


def _native_column_to_numpy(name: str, column: pa.ChunkedArray, field: Any) -> np.ndarray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pandas().to_numpy().astype(np.str_)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or \
            pa.types.is_fixed_size_list(column.type):
        values = column.to_pandas().to_numpy()
        if len(values) == 0:
            return values
        lengths = {len(v) if v is not None else None for v in values}
        if len(lengths) != 1 or None in lengths:
            raise ValueError(f"Field '{name}': list values must all have the same length to form a batch, "
                             f"got lengths {sorted(lengths, key=str)}")
        stacked = np.vstack(values.tolist())
        shape = tuple(field.shape) if field is not None else ()
        if len(shape) > 1 and None not in shape:
            stacked = stacked.reshape((len(values),) + shape)
        return stacked
    return column.to_pandas().to_numpy()


def decode_batch(table: pa.Table, schema: Unischema) -> dict[str, np.ndarray]:
    """Decodes a row group into numpy columns.

    Columns with a tensor or image codec are decoded by ``decode_column`` into stacked ``(N, *shape)`` arrays;
    native Parquet columns convert as in the original batch reader: strings to ``str_`` arrays, equal-length lists
    to a matrix, everything else through pandas.
    """
    result = {}
    for name in table.column_names:
        field = schema.fields.get(name)
        column = table.column(name)
        try:
            if field is not None and field.codec is not None and not isinstance(field.codec, ScalarCodec):
                result[name] = decode_column(field, column.combine_chunks())
            else:
                result[name] = _native_column_to_numpy(name, column, field)
        except DecodeFieldError:
            raise
        except Exception as e:
            raise DecodeFieldError(f"Decoding column '{name}' failed: {e}") from e
    return result


def columns_to_read(schema: Unischema, extra: Collection[str] = ()) -> list[str]:
    """Field names of ``schema`` followed by any ``extra`` names not among them."""
    names = list(schema.fields)
    return names + [name for name in extra if name not in schema.fields]


def _is_string(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def decode_table(table: pa.Table, schema: Unischema, batched: bool,
                 executor: ThreadPoolExecutor | None = None) -> dict[str, np.ndarray]:
    """Decodes every column of ``table`` into one numpy array per column, whole columns at a time.

    Tensor/image columns: ``(N, *shape)`` arrays (1-D object arrays when shapes vary or cells are null), images
    decoded on all cores. ``batched=True`` converts native columns as the original batch reader did (strings to
    ``str_`` arrays, equal-length lists to matrices); ``batched=False`` (``make_reader``) casts scalars to the
    field's numpy type, gives null-free strings as ``str_`` arrays and keeps nulls as ``None`` in object arrays.
    """
    result = {}
    for name in table.column_names:
        field = schema.fields.get(name)
        column = table.column(name)
        try:
            if field is not None and isinstance(field.codec, NdarrayCodec):
                chunk = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
                view = npy_column_view(field, chunk)
                result[name] = view if view is not None else decode_column(field, chunk)
            elif field is not None and field.codec is not None and not isinstance(field.codec, ScalarCodec):
                result[name] = decode_column_parallel(field, column, executor)
            elif batched:
                result[name] = _native_column_to_numpy(name, column, field)
            elif field is None:
                result[name] = _native_column_to_numpy(name, column, field)
            elif _is_string(column.type) and column.null_count == 0 and field.shape == ():
                result[name] = column.to_numpy().astype(np.str_) if len(column) else np.empty(0, np.str_)
            else:
                result[name] = decode_column(field, column)
        except DecodeFieldError:
            raise
        except Exception as e:
            raise DecodeFieldError(f"Decoding column '{name}' failed: {e}") from e
    return result
