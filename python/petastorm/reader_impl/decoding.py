"""Decoding a row group read into Arrow: into numpy columns (both readers) or row dicts (row-group indexing,
``dataset_as_rdd``), with image and compressed-array columns decoded in slices across the cores.

The cells are decoded by the codecs' column API (:mod:`petastorm.column_decode`); this module decides which
thread decodes which slice (:func:`busy_thread`, :func:`_run_sliced`).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, Iterator

import numpy as np
import pyarrow as pa

from petastorm.codecs import CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec, ScalarCodec
from petastorm.column_decode import (concat_columns, decode_column, decode_images_into, decode_value,
                                     image_column_out)
from petastorm.errors import DecodeFieldError
from petastorm.unischema import Unischema

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
                            helpers.append(executor.submit(contextvars.copy_context().run, drain))
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
    out = image_column_out(field, column)
    if out is None:
        return None
    bounds = _slice_bounds(len(column))
    ok = _run_sliced(executor, len(bounds) - 1,
                     lambda k: decode_images_into(column, out, int(bounds[k]), int(bounds[k + 1])))
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
    return concat_columns(results)


def decode_rows(table: pa.Table, schema: Unischema) -> list[dict]:
    """Decodes every row of ``table`` into a dict of the fields of ``schema`` present in it."""
    fields = [schema.fields[name] for name in table.column_names if name in schema.fields]
    columns = [table.column(field.name).to_pylist() for field in fields]
    return [{field.name: decode_value(field, column[i]) for field, column in zip(fields, columns)}
            for i in range(table.num_rows)]


def native_column_to_numpy(name: str, column: pa.ChunkedArray, field: Any) -> np.ndarray:
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
                result[name] = decode_column(field, chunk, copy=False)
            elif field is not None and field.codec is not None and not isinstance(field.codec, ScalarCodec):
                result[name] = decode_column_parallel(field, column, executor)
            elif batched or field is None:
                result[name] = native_column_to_numpy(name, column, field)
            elif _is_string(column.type) and column.null_count == 0 and field.shape == ():
                result[name] = column.to_numpy().astype(np.str_) if len(column) else np.empty(0, np.str_)
            else:
                result[name] = decode_column(field, column)
        except DecodeFieldError:
            raise
        except Exception as e:
            raise DecodeFieldError(f"Decoding column '{name}' failed: {e}") from e
    return result
