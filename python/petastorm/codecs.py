"""Codecs: how a UnischemaField's values are stored in a Parquet column.

Byte formats (compatible with Petastorm 0.13.1):

* ``ScalarCodec(spark_type)``: a native Parquet scalar of that Spark type.
* ``NdarrayCodec``: exactly ``numpy.save`` output (NPY format) in a BINARY column.
* ``CompressedNdarrayCodec``: ``numpy.savez_compressed(buf, arr=value)`` (a ZIP with member ``arr.npy``).
* ``CompressedImageCodec``: a standard PNG or JPEG file; 3-channel arrays are RGB.

Images are encoded/decoded with OpenCV when it is importable, otherwise with Pillow (PNG pixels are identical
either way). Set ``IMAGE_BACKEND`` (or the environment variable ``PETASTORM_IMAGE_BACKEND``) to ``"pillow"`` or
``"opencv"`` to force one.
"""
from __future__ import annotations

import datetime
import decimal
import io
import os
import zipfile
from abc import ABC, abstractmethod
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa

from petastorm._checks import check_ndarray, check_scalar, is_compliant_shape
from petastorm._npy import cell_header, load_npy
from petastorm.errors import DecodeFieldError

__all__ = ["DataframeColumnCodec", "ScalarCodec", "NdarrayCodec", "CompressedNdarrayCodec",
           "CompressedImageCodec", "decode_column", "decode_value", "IMAGE_BACKEND"]

#: "auto" (OpenCV if importable, else Pillow), "opencv" or "pillow".
IMAGE_BACKEND: str = os.environ.get("PETASTORM_IMAGE_BACKEND", "auto")


class DataframeColumnCodec(ABC):
    """Encodes a field's value into a Spark/Parquet cell and decodes it back."""

    @abstractmethod
    def encode(self, unischema_field: Any, value: Any) -> Any:
        """The cell value to store for ``value``."""

    @abstractmethod
    def decode(self, unischema_field: Any, value: Any) -> Any:
        """The field value for a stored (non-null) cell."""

    @abstractmethod
    def spark_dtype(self) -> Any:
        """The ``pyspark.sql.types.DataType`` of the stored column."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _binary_type() -> Any:
    from pyspark.sql.types import BinaryType

    return BinaryType()


def _complete_spark_type(spark_type: Any) -> Any:
    """Fill in attributes that a type pickled by an older pyspark lacks (e.g. StringType.collation)."""
    from pyspark.sql.types import DataType

    if not isinstance(spark_type, DataType):
        return spark_type
    try:
        fresh = type(spark_type)()
    except TypeError:
        return spark_type
    fresh.__dict__.update(spark_type.__dict__)
    return fresh


class ScalarCodec(DataframeColumnCodec):
    """Stores a scalar as a native Parquet value of the given Spark type; decodes by casting to numpy_dtype."""

    def __init__(self, spark_type: Any) -> None:
        self._spark_type = spark_type

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._spark_type = _complete_spark_type(self._spark_type)

    def encode(self, unischema_field: Any, value: Any) -> Any:
        from pyspark.sql import types as T

        if unischema_field.shape:
            raise ValueError(f"Field '{unischema_field.name}': ScalarCodec needs shape (), "
                             f"the field has shape {unischema_field.shape}")
        check_scalar(unischema_field, value)
        if isinstance(value, np.ndarray):
            value = value[()]
        if isinstance(self._spark_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
            return int(value)
        if isinstance(self._spark_type, (T.FloatType, T.DoubleType)):
            return float(value)
        if isinstance(self._spark_type, T.BooleanType):
            return bool(value)
        if isinstance(self._spark_type, T.StringType):
            if not isinstance(value, str):
                raise ValueError(f"Field '{unischema_field.name}': expected a str for a StringType column, "
                                 f"got {type(value).__name__}")
            return str(value)
        return value

    def decode(self, unischema_field: Any, value: Any) -> Any:
        return unischema_field.numpy_dtype(value)

    def spark_dtype(self) -> Any:
        return self._spark_type

    def __repr__(self) -> str:
        return f"ScalarCodec({self._spark_type!r})"


def _parse_npy_header(field_name: str, cell: Union[bytes, memoryview]) -> Tuple[np.dtype, tuple, bool, int]:
    """(dtype, shape, fortran_order, data offset) of an NPY cell; DecodeFieldError if it is not valid NPY."""
    try:
        return cell_header(cell, f"Field '{field_name}'")
    except ValueError as e:
        raise DecodeFieldError(str(e)) from e


def _load_npy(field_name: str, cell: Union[bytes, memoryview]) -> np.ndarray:
    try:
        return load_npy(cell, f"Field '{field_name}'")
    except ValueError as e:
        raise DecodeFieldError(str(e)) from e


class NdarrayCodec(DataframeColumnCodec):
    """Stores an ndarray as ``numpy.save`` bytes (NPY format, uncompressed)."""

    def encode(self, unischema_field: Any, value: Any) -> bytearray:
        check_ndarray(unischema_field, value)
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return bytearray(buf.getvalue())

    def decode(self, unischema_field: Any, value: Any) -> np.ndarray:
        return _load_npy(unischema_field.name, value)

    def spark_dtype(self) -> Any:
        return _binary_type()


class CompressedNdarrayCodec(DataframeColumnCodec):
    """Stores an ndarray as ``numpy.savez_compressed(buf, arr=value)`` bytes."""

    def encode(self, unischema_field: Any, value: Any) -> bytearray:
        check_ndarray(unischema_field, value)
        buf = io.BytesIO()
        np.savez_compressed(buf, arr=value)
        return bytearray(buf.getvalue())

    def decode(self, unischema_field: Any, value: Any) -> np.ndarray:
        try:
            with zipfile.ZipFile(io.BytesIO(value)) as archive:
                member = archive.read("arr.npy")
        except (zipfile.BadZipFile, KeyError, EOFError, OSError) as e:
            raise DecodeFieldError(f"Field '{unischema_field.name}': cell is not a compressed ndarray "
                                   f"(a ZIP with member arr.npy): {e}") from e
        return _load_npy(unischema_field.name, member)

    def spark_dtype(self) -> Any:
        return _binary_type()


def _opencv() -> Optional[Any]:
    """The cv2 module if it should be used, else None."""
    if IMAGE_BACKEND == "pillow":
        return None
    try:
        import cv2
    except ImportError:
        if IMAGE_BACKEND == "opencv":
            raise
        return None
    return cv2


def __getattr__(name: str) -> Any:
    if name == "OPENCV_AVAILABLE":  # the original's flag; looked up lazily so importing codecs skips cv2
        try:
            return _opencv() is not None
        except ImportError:  # IMAGE_BACKEND = "opencv" without OpenCV installed
            return False
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _png_is_16bit_color(data: bytes) -> bool:
    # IHDR follows the 8-byte signature: length(4) type(4) width(4) height(4) bit depth(1) colour type(1).
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 25 and data[24] == 16 and data[25] in (2, 6)


class CompressedImageCodec(DataframeColumnCodec):
    """Stores an (H, W) or (H, W, 3) RGB image as PNG (uint8 or uint16) or JPEG (uint8) bytes."""

    def __init__(self, image_codec: str = "png", quality: int = 80) -> None:
        image_codec = image_codec.lower().lstrip(".")
        if image_codec not in ("png", "jpeg", "jpg"):
            raise ValueError(f"Unsupported image codec '{image_codec}': use 'png' or 'jpeg'")
        self._image_codec = ".jpeg" if image_codec == "jpg" else "." + image_codec
        self._quality = quality

    @property
    def image_codec(self) -> str:
        """'png' or 'jpeg'."""
        return self._image_codec[1:]

    @property
    def quality(self) -> int:
        """JPEG quality (0-100)."""
        return self._quality

    def _is_png(self) -> bool:
        return self._image_codec == ".png"

    def encode(self, unischema_field: Any, value: Any) -> bytearray:
        allowed = (np.uint8, np.uint16) if self._is_png() else (np.uint8,)
        check_ndarray(unischema_field, value, allowed)
        if not (value.ndim == 2 or (value.ndim == 3 and value.shape[2] == 3)):
            raise ValueError(f"Field '{unischema_field.name}': an image must have shape (H, W) or (H, W, 3), "
                             f"got {value.shape}")
        cv2 = _opencv()
        if cv2 is not None:
            bgr_or_gray = value[:, :, ::-1] if value.ndim == 3 else value
            params = [] if self._is_png() else [int(cv2.IMWRITE_JPEG_QUALITY), int(self._quality)]
            ok, contents = cv2.imencode(self._image_codec, np.ascontiguousarray(bgr_or_gray), params)
            if not ok:
                raise ValueError(f"Field '{unischema_field.name}': OpenCV failed to encode {self.image_codec}")
            return bytearray(contents.tobytes())
        return bytearray(self._pillow_encode(unischema_field, value))

    def _pillow_encode(self, field: Any, value: np.ndarray) -> bytes:
        from PIL import Image

        if value.dtype == np.uint16 and value.ndim == 3:
            raise ValueError(f"Field '{field.name}': 16-bit colour PNG needs OpenCV (opencv-python-headless); "
                             f"Pillow writes only 8-bit colour")
        image = Image.fromarray(np.ascontiguousarray(value))
        buf = io.BytesIO()
        if self._is_png():
            image.save(buf, format="PNG")
        else:
            image.save(buf, format="JPEG", quality=int(self._quality))
        return buf.getvalue()

    def decode(self, unischema_field: Any, value: Any) -> np.ndarray:
        cv2 = _opencv()
        if cv2 is not None:
            image = cv2.imdecode(np.frombuffer(value, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise DecodeFieldError(f"Field '{unischema_field.name}': cell is not a valid "
                                       f"{self.image_codec.upper()} image ({len(value)} bytes)")
        else:
            image = self._pillow_decode(unischema_field, bytes(value))
        if image.ndim == 2:
            return image
        if image.ndim == 3 and image.shape[2] == 3:
            return np.ascontiguousarray(image[:, :, ::-1]) if cv2 is not None else image
        raise DecodeFieldError(f"Field '{unischema_field.name}': decoded image has shape {image.shape}; "
                               f"only (H, W) and (H, W, 3) are supported")

    def _pillow_decode(self, field: Any, data: bytes) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        if _png_is_16bit_color(data):
            raise DecodeFieldError(f"Field '{field.name}': 16-bit colour PNG needs OpenCV "
                                   f"(opencv-python-headless); Pillow would lose precision")
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.mode in ("P", "1"):
                    image = image.convert("RGB" if image.mode == "P" else "L")
                array = np.asarray(image)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise DecodeFieldError(f"Field '{field.name}': cell is not a valid {self.image_codec.upper()} image "
                                   f"({len(data)} bytes): {e}") from e
        if array.dtype == np.int32 or array.dtype.byteorder == ">":  # 16-bit greyscale opened as mode I / I;16B
            array = array.astype(np.uint16)
        return array

    def spark_dtype(self) -> Any:
        return _binary_type()

    def __repr__(self) -> str:
        return f"CompressedImageCodec('{self.image_codec}', {self._quality})"


# ---------------------------------------------------------------------------------------------------------------
# Column (batch) decoding


def _fixed_shape(field: Any) -> bool:
    return all(d is not None for d in field.shape)


def _object_array(values: Sequence[Any]) -> np.ndarray:
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
    return _object_array(values)


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


def _npy_chunk_dense(field: Any, chunk: pa.Array) -> Optional[np.ndarray]:
    """All cells of a null-free binary chunk as one array, if they share one NPY header; else None."""
    n = len(chunk)
    if n == 0 or chunk.null_count:
        return None
    offset_type = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
    _, offsets_buf, data_buf = chunk.buffers()[:3]
    offsets = np.frombuffer(offsets_buf, dtype=offset_type, count=n + 1,
                            offset=chunk.offset * np.dtype(offset_type).itemsize)
    lengths = np.diff(offsets)
    cell_len = int(lengths[0])
    if not (lengths == cell_len).all():
        return None
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    start = int(offsets[0])
    dtype, shape, fortran, header_len = _parse_npy_header(field.name, data[start:start + cell_len].tobytes())
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if fortran or cell_len != header_len + nbytes:
        return None
    strided = np.lib.stride_tricks.as_strided
    headers = strided(data[start:], shape=(n, header_len), strides=(cell_len, 1), writeable=False)
    if not (headers == headers[0]).all():
        return None
    payload = strided(data[start + header_len:], shape=(n, nbytes), strides=(cell_len, 1), writeable=False)
    return np.ascontiguousarray(payload).view(dtype).reshape((n,) + tuple(shape))


def _decode_npy_chunk(field: Any, chunk: pa.Array) -> np.ndarray:
    dense = _npy_chunk_dense(field, chunk)
    if dense is None:
        return _stack_or_objects(field, _decode_cells(field, chunk.to_pylist()))
    if _fixed_shape(field):
        if not is_compliant_shape(dense.shape[1:], field.shape):
            raise DecodeFieldError(f"Field '{field.name}': stored arrays have shape {dense.shape[1:]}, "
                                   f"the field's shape is {field.shape}")
        return dense
    return _object_array(list(dense))


def _decode_scalar_chunk(field: Any, chunk: pa.Array) -> np.ndarray:
    kind = np.dtype(field.numpy_dtype).kind if field.numpy_dtype.__module__ == "numpy" else "O"
    if chunk.null_count == 0 and kind in "biufc":
        return chunk.to_numpy(zero_copy_only=False).astype(field.numpy_dtype, copy=False)
    if chunk.null_count == 0 and kind in "Mm":
        return chunk.to_numpy(zero_copy_only=False)
    return _object_array([decode_value(field, v) for v in chunk.to_pylist()])


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


def _decode_chunk(field: Any, chunk: pa.Array) -> np.ndarray:
    if isinstance(field.codec, NdarrayCodec):
        return _decode_npy_chunk(field, chunk)
    if field.codec is None or isinstance(field.codec, ScalarCodec):
        return _decode_scalar_chunk(field, chunk) if field.shape == () else _decode_list_chunk(field, chunk)
    return _stack_or_objects(field, _decode_cells(field, chunk.to_pylist()))


def _empty_column(field: Any) -> np.ndarray:
    numeric = getattr(field.numpy_dtype, "__module__", "") == "numpy" and np.dtype(field.numpy_dtype).kind in "biufc"
    if numeric and _fixed_shape(field):
        return np.empty((0,) + tuple(field.shape), dtype=field.numpy_dtype)
    return np.empty(0, dtype=object)


def decode_column(field: Any, cells: Union[pa.Array, pa.ChunkedArray, Sequence[Any]]) -> np.ndarray:
    """Decode a whole column of stored cells of ``field`` at once.

    :param field: the UnischemaField whose codec stored the cells.
    :param cells: a pyarrow Array/ChunkedArray or a sequence of cells (``None`` for null).
    :return: for a field of fully fixed shape and no null cell, one array of shape ``(N, *field.shape)``
        (scalar fields: shape ``(N,)``; str/bytes/Decimal scalars as an object array); otherwise a 1-D object
        array holding one decoded value (or None) per row. NdarrayCodec columns whose cells share one NPY
        header are decoded without a per-row loop.
    """
    chunks = _as_chunks(cells)
    parts = [_decode_chunk(field, c) for c in chunks if len(c)]
    if not parts:
        return _empty_column(field)
    if len(parts) == 1:
        return parts[0]
    if any(p.dtype == object for p in parts) and not all(p.dtype == object for p in parts):
        parts = [p if p.dtype == object else _object_array(list(p)) for p in parts]
    return np.concatenate(parts)
