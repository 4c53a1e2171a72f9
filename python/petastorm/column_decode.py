"""Decoding a whole column of stored cells at once: the codecs' column API that the engine calls.

* :func:`decode_column`: every cell of a field, as one ``(N, *shape)`` array when the field's shape is fixed and
  no cell is null, else a 1-D object array. NPY columns whose cells share one header are decoded without a
  per-row loop (:func:`npy_column_dense`, the one dense NPY path).
* :func:`decode_value`: one cell, as the original decoded it.
* :func:`image_column_out` and :func:`decode_images_into`: a fixed-shape PNG/JPEG column decoded by OpenCV
  straight into one preallocated array, a slice of cells at a time (the engine spreads slices over cores).
"""
from __future__ import annotations

import datetime
import decimal
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from petastorm._checks import is_compliant_shape
from petastorm.codecs import (CompressedImageCodec, NdarrayCodec, ScalarCodec, check_stored_dtype, opencv_backend,
                              parse_npy_header)
from petastorm.decode_limits import check_cell_bytes, decode_limits, image_size, png_chunks_fit
from petastorm.errors import DecodeFieldError

__all__ = ["decode_column", "decode_value", "npy_column_dense", "image_column_out", "decode_images_into",
           "concat_columns", "object_array"]


class _BufferView:
    """Exposes part of an Arrow buffer to numpy (``__array_interface__``) and keeps the buffer alive."""

    def __init__(self, buffer: pa.Buffer, offset: int, shape: tuple, strides: tuple, dtype: np.dtype):
        self._buffer = buffer
        self.__array_interface__ = {"data": (buffer.address + offset, False), "shape": shape,
                                    "strides": strides, "typestr": dtype.str, "version": 3}


def _binary_offsets(chunk: pa.Array, count: int, first: int = 0) -> np.ndarray:
    """``count`` value offsets of a (large) binary chunk from its ``first`` cell, as a numpy view."""
    offset_type = np.dtype(np.int64 if pa.types.is_large_binary(chunk.type) else np.int32)
    return np.frombuffer(chunk.buffers()[1], dtype=offset_type, count=count,
                         offset=(chunk.offset + first) * offset_type.itemsize)


def npy_column_dense(field_name: str, chunk: pa.Array, copy: bool = True) -> Optional[np.ndarray]:
    """Every cell of a null-free binary chunk as one ``(N, *shape)`` array, when all cells share one NPY header
    (C order, no objects); None when they do not (the caller then decodes cell by cell).

    :param copy: False returns, where the data is aligned for its dtype, a writable view of the Arrow data buffer
        strided over the cell headers (no copy); otherwise (and always with True) a contiguous copy.
    """
    n = len(chunk)
    if n == 0 or chunk.null_count or not (pa.types.is_binary(chunk.type) or pa.types.is_large_binary(chunk.type)):
        return None
    data_buf = chunk.buffers()[2]
    if data_buf is None:
        return None
    offsets = _binary_offsets(chunk, n + 1)
    lengths = np.diff(offsets)
    cell_len = int(lengths[0])
    if not (lengths == cell_len).all():
        return None
    data = np.frombuffer(data_buf, dtype=np.uint8)
    start = int(offsets[0])
    dtype, shape, fortran, header_len = parse_npy_header(field_name, data[start:start + cell_len].tobytes())
    check_cell_bytes(field_name, dtype, shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if fortran or dtype.hasobject or cell_len != header_len + nbytes:
        return None
    strided = np.lib.stride_tricks.as_strided
    headers = strided(data[start:], shape=(n, header_len), strides=(cell_len, 1), writeable=False)
    if not (headers == headers[0]).all():
        return None
    if not copy and not cell_len % dtype.itemsize and not (data_buf.address + start + header_len) % dtype.itemsize:
        inner = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) * dtype.itemsize for i in range(len(shape)))
        return np.asarray(_BufferView(data_buf, start + header_len, (n,) + tuple(shape), (cell_len,) + inner, dtype))
    payload = strided(data[start + header_len:], shape=(n, nbytes), strides=(cell_len, 1), writeable=False)
    return np.ascontiguousarray(payload).view(dtype).reshape((n,) + tuple(shape))


def image_column_out(field: Any, column: pa.Array) -> Optional[np.ndarray]:
    """An empty ``(N, *shape)`` array to decode a fixed-shape, null-free PNG/JPEG column into with
    :func:`decode_images_into`; None when OpenCV is not the image backend or the column does not qualify."""
    shape = tuple(field.shape)
    if not isinstance(field.codec, CompressedImageCodec) or opencv_backend() is None or len(column) == 0 or \
            column.null_count or not pa.types.is_binary(column.type) or any(d is None for d in shape) or \
            not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)):
        return None
    try:
        dtype = np.dtype(field.numpy_dtype)
    except TypeError:
        return None
    if dtype not in (np.uint8, np.uint16) or shape[0] * shape[1] > decode_limits().max_image_pixels:
        return None  # the codec decodes (and refuses an image over the pixel limit) cell by cell
    return np.empty((len(column),) + shape, dtype=dtype)


def decode_images_into(column: pa.Array, out: np.ndarray, lo: int, hi: int) -> bool:
    """Decodes cells ``lo:hi`` of an image column with OpenCV into ``out`` (RGB order), reading the cells in place
    from the Arrow buffer; False when a cell does not decode to ``out``'s shape and dtype (the caller then uses
    the codec, which raises the precise error)."""
    cv2 = opencv_backend()
    offsets = _binary_offsets(column, hi - lo + 1, lo).tolist()
    data_buf = column.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    imdecode, unchanged, cvt_color, bgr2rgb = cv2.imdecode, cv2.IMREAD_UNCHANGED, cv2.cvtColor, cv2.COLOR_BGR2RGB
    shape, dtype, color = out.shape[1:], out.dtype, out.ndim == 4
    want = (shape[1], shape[0])
    for i, start, stop in zip(range(lo, hi), offsets, offsets[1:]):
        cell = data[start:stop]
        if image_size(cell) != want or (len(cell) and cell[0] == 0x89 and not png_chunks_fit(cell)):
            return False  # another (or no) stated size, or PNG chunks that do not fit: the codec checks and says
        try:
            image = imdecode(cell, unchanged)
        except cv2.error:
            return False
        if image is None or image.shape != shape or image.dtype != dtype:
            return False
        if color:
            cvt_color(image, bgr2rgb, dst=out[i])
        else:
            out[i] = image
    return True




def _fixed_shape(field: Any) -> bool:
    return all(d is not None for d in field.shape)


def object_array(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object array with one element per value (a sub-array stays one element)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _as_chunks(cells: Any) -> List[pa.Array]:
    if isinstance(cells, pa.ChunkedArray):
        return list(cells.chunks)
    if isinstance(cells, pa.Array):
        return [cells]
    if any(isinstance(c, (bytes, bytearray, memoryview)) for c in cells):
        return [pa.array([None if c is None else bytes(c) for c in cells], type=pa.binary())]
    return [pa.array(list(cells))]


def _stack_or_objects(field: Any, values: List[Any]) -> np.ndarray:
    """(N, *shape) array for a fixed-shape field without nulls, else a 1-D object array."""
    if values and _fixed_shape(field) and all(v is not None for v in values):
        for i, v in enumerate(values):
            if not is_compliant_shape(np.shape(v), field.shape):
                raise DecodeFieldError(f"Field '{field.name}': row {i} decoded to shape {np.shape(v)}, "
                                       f"the field's shape is {field.shape}")
        return np.stack(values)
    return object_array(values)


def _decode_cells(field: Any, cells: List[Any]) -> List[Any]:
    out = []
    for i, cell in enumerate(cells):
        if cell is None:
            out.append(None)
            continue
        try:
            out.append(field.codec.decode(field, cell))
        except DecodeFieldError as e:
            raise DecodeFieldError(f"{e} (row {i} of the column)") from e
    return out


def _decode_npy_chunk(field: Any, chunk: pa.Array, copy: bool) -> np.ndarray:
    dense = npy_column_dense(field.name, chunk, copy=copy or not _fixed_shape(field))
    if dense is None:
        return _stack_or_objects(field, _decode_cells(field, chunk.to_pylist()))
    check_stored_dtype(field, dense.dtype)
    if _fixed_shape(field):
        if not is_compliant_shape(dense.shape[1:], field.shape):
            raise DecodeFieldError(f"Field '{field.name}': stored arrays have shape {dense.shape[1:]}, "
                                   f"the field's shape is {field.shape}")
        return dense
    return object_array(list(dense))


def _decode_scalar_chunk(field: Any, chunk: pa.Array) -> np.ndarray:
    kind = np.dtype(field.numpy_dtype).kind if field.numpy_dtype.__module__ == "numpy" else "O"
    if chunk.null_count == 0 and kind in "biufc":
        return chunk.to_numpy(zero_copy_only=False).astype(field.numpy_dtype, copy=False)
    if chunk.null_count == 0 and kind in "Mm":
        return chunk.to_numpy(zero_copy_only=False)
    return object_array([decode_value(field, v) for v in chunk.to_pylist()])


def decode_value(field: Any, value: Any) -> Any:
    """Decodes one stored cell as the original did: by the field's codec, else cast to the field's numpy type
    (or ``Decimal``); nulls stay None."""
    if value is None:
        return None
    try:
        if field.codec is not None:
            return field.codec.decode(field, value)
        if isinstance(field.numpy_dtype, type) and issubclass(field.numpy_dtype, (np.generic, decimal.Decimal)):
            if getattr(value, "tzinfo", None) is not None:  # numpy has no time zones: UTC, as Arrow stores it
                value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return field.numpy_dtype(value)
        return value
    except DecodeFieldError:
        raise
    except Exception as e:
        raise DecodeFieldError(f"Decoding field '{field.name}' failed: {e}") from e


def _decode_list_chunk(field: Any, chunk: pa.Array) -> np.ndarray:
    rows = [None if v is None else np.asarray(v, dtype=field.numpy_dtype) for v in chunk.to_pylist()]
    return _stack_or_objects(field, rows)


def _decode_chunk(field: Any, chunk: pa.Array, copy: bool) -> np.ndarray:
    if isinstance(field.codec, NdarrayCodec):
        return _decode_npy_chunk(field, chunk, copy)
    if field.codec is None or isinstance(field.codec, ScalarCodec):
        return _decode_scalar_chunk(field, chunk) if field.shape == () else _decode_list_chunk(field, chunk)
    return _stack_or_objects(field, _decode_cells(field, chunk.to_pylist()))


def _empty_column(field: Any) -> np.ndarray:
    numeric = getattr(field.numpy_dtype, "__module__", "") == "numpy" and np.dtype(field.numpy_dtype).kind in "biufc"
    if numeric and _fixed_shape(field):
        return np.empty((0,) + tuple(field.shape), dtype=field.numpy_dtype)
    return np.empty(0, dtype=object)


def decode_column(field: Any, cells: Union[pa.Array, pa.ChunkedArray, Sequence[Any]], copy: bool = True) -> np.ndarray:
    """Decode a whole column of stored cells of ``field`` at once.

    :param field: the UnischemaField whose codec stored the cells.
    :param cells: a pyarrow Array/ChunkedArray or a sequence of cells (``None`` for null).
    :return: for a field of fully fixed shape and no null cell, one array of shape ``(N, *field.shape)``
        (scalar fields: shape ``(N,)``; str/bytes/Decimal scalars as an object array); otherwise a 1-D object
        array holding one decoded value (or None) per row. NdarrayCodec columns whose cells share one NPY
        header are decoded without a per-row loop.
    :param copy: False lets a fixed-shape NPY column in one chunk come back as a view of the Arrow buffer
        (see :func:`npy_column_dense`).
    """
    chunks = _as_chunks(cells)
    parts = [_decode_chunk(field, c, copy) for c in chunks if len(c)]
    if not parts:
        return _empty_column(field)
    return concat_columns(parts)


def concat_columns(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Decoded parts of one column joined (the part itself when there is one); as a 1-D object array, one element
    per row, when some parts are object arrays and others are not."""
    if len(parts) == 1:
        return parts[0]
    if any(p.dtype == object for p in parts) and not all(p.dtype == object for p in parts):
        parts = [p if p.dtype == object else object_array(list(p)) for p in parts]
    return np.concatenate(parts)
