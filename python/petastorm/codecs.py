"""Codecs: how a UnischemaField's values are stored in a Parquet column.

Byte formats (compatible with Petastorm 0.13.1):

* ``ScalarCodec(spark_type)``: a native Parquet scalar of that Spark type.
* ``NdarrayCodec``: exactly ``numpy.save`` output (NPY format) in a BINARY column.
* ``CompressedNdarrayCodec``: ``numpy.savez_compressed(buf, arr=value)`` (a ZIP with member ``arr.npy``).
* ``CompressedImageCodec``: a standard PNG or JPEG file; 3-channel arrays are RGB.

Decoding a whole column at once (``decode_column``, ``decode_value``; also importable from here) is in
:mod:`petastorm.column_decode`.

Images are encoded/decoded with OpenCV when it is importable, otherwise with Pillow (PNG pixels are identical
either way). Set ``IMAGE_BACKEND`` (or the environment variable ``PETASTORM_IMAGE_BACKEND``) to ``"pillow"`` or
``"opencv"`` to force one.
"""
from __future__ import annotations

import io
import os
import zipfile
import zlib
from abc import ABC, abstractmethod
from typing import Any, Optional, Tuple, Union

import numpy as np

from petastorm._checks import check_ndarray, check_scalar
from petastorm._npy import cell_header, load_npy
from petastorm.decode_limits import (DecodeLimits, check_cell_bytes, check_image_pixels,  # noqa: F401
                                     decode_limits, limit_error, using_decode_limits)
from petastorm.errors import DecodeFieldError

__all__ = ["DataframeColumnCodec", "ScalarCodec", "NdarrayCodec", "CompressedNdarrayCodec",
           "CompressedImageCodec", "decode_column", "decode_value", "IMAGE_BACKEND", "opencv_backend",
           "parse_npy_header", "check_stored_dtype", "DecodeLimits", "decode_limits", "using_decode_limits"]

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


def parse_npy_header(field_name: str, cell: Union[bytes, memoryview]) -> Tuple[np.dtype, tuple, bool, int]:
    """(dtype, shape, fortran_order, data offset) of an NPY cell; DecodeFieldError if it is not valid NPY."""
    try:
        return cell_header(cell, f"Field '{field_name}'")
    except ValueError as e:
        raise DecodeFieldError(str(e)) from e


def check_stored_dtype(field: Any, stored: np.dtype) -> None:
    """Raises ``DecodeFieldError`` when arrays stored for ``field`` are of another type than the field's: another
    kind or item size (byte order and datetime units may differ; they convert without loss)."""
    try:
        want = np.dtype(field.numpy_dtype)
    except TypeError:  # Decimal and other non-numpy field types: nothing to compare
        return
    same = stored.kind == want.kind and (want.kind in "USVMm" or stored.itemsize == want.itemsize)
    if not same:
        raise DecodeFieldError(f"Field '{field.name}': the stored arrays are {stored}, the field's dtype is {want} "
                               f"(the dataset's schema does not match its data)")


def _load_npy(field_name: str, cell: Union[bytes, memoryview]) -> np.ndarray:
    try:
        return load_npy(cell, f"Field '{field_name}'", lambda dtype, shape: check_cell_bytes(field_name, dtype, shape))
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
        array = _load_npy(unischema_field.name, value)
        check_stored_dtype(unischema_field, array.dtype)
        return array

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
                size, limit = archive.getinfo("arr.npy").file_size, decode_limits().max_cell_bytes
                if size > limit:  # checked before inflating: zipfile never inflates past the size it states
                    raise limit_error(unischema_field.name, "an arr.npy member", size, limit, "max_cell_bytes")
                member = archive.read("arr.npy")
        except (zipfile.BadZipFile, KeyError, EOFError, OSError, zlib.error, NotImplementedError, RuntimeError) as e:
            raise DecodeFieldError(f"Field '{unischema_field.name}': cell is not a compressed ndarray "
                                   f"(a ZIP with member arr.npy): {e}") from e
        array = _load_npy(unischema_field.name, member)
        check_stored_dtype(unischema_field, array.dtype)
        return array

    def spark_dtype(self) -> Any:
        return _binary_type()


def opencv_backend() -> Optional[Any]:
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
    if name in ("decode_column", "decode_value"):  # the column API lives in petastorm.column_decode (imports us)
        from petastorm import column_decode

        return getattr(column_decode, name)
    if name == "OPENCV_AVAILABLE":  # the original's flag; looked up lazily so importing codecs skips cv2
        try:
            return opencv_backend() is not None
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
        cv2 = opencv_backend()
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
        check_image_pixels(unischema_field.name, value)
        cv2 = opencv_backend()
        if cv2 is not None:
            try:
                image = cv2.imdecode(np.frombuffer(value, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            except cv2.error:  # an empty cell, or one OpenCV's decoder refuses outright
                image = None
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
