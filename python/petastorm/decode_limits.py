"""Decode limits: bounds checked from a cell's header before the cell is decoded, so that a crafted cell of a
few bytes (an NPY header claiming billions of elements, a ZIP bomb, a PNG claiming 30000 x 30000 pixels) is refused
with an error naming the field instead of making the reader allocate gigabytes. The limits in force are a context
variable: the reader sets its own around its decoding (``make_reader(..., decode_limits=...)``)."""
from __future__ import annotations

import contextlib
import contextvars
import struct
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple, Union

import numpy as np

from petastorm.errors import DecodeFieldError

__all__ = ["DecodeLimits", "decode_limits", "using_decode_limits", "check_cell_bytes", "check_image_pixels",
           "limit_error", "image_size", "png_chunks_fit"]


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds checked from a cell's header before it is decoded, so that a crafted cell of a few bytes cannot make
    the reader allocate gigabytes: ``max_cell_bytes`` for an ``NdarrayCodec`` / ``CompressedNdarrayCodec`` array
    (decoded size), ``max_image_pixels`` for a ``CompressedImageCodec`` image (width x height, as Pillow's
    ``MAX_IMAGE_PIXELS``). Give larger ones to ``make_reader`` / ``make_batch_reader`` (``decode_limits=``) for data
    that needs them."""

    max_cell_bytes: int = 512 * 2 ** 20
    max_image_pixels: int = 89_478_485

    def __post_init__(self) -> None:
        for name in ("max_cell_bytes", "max_image_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DecodeLimits.{name} must be a positive int, got {value!r}")


_decode_limits: contextvars.ContextVar[DecodeLimits] = contextvars.ContextVar("petastorm_decode_limits",
                                                                              default=DecodeLimits())


def decode_limits() -> DecodeLimits:
    """The limits that decoding in this context checks (the reader's, inside its workers; else the defaults)."""
    return _decode_limits.get()


@contextlib.contextmanager
def using_decode_limits(limits: DecodeLimits) -> Iterator[None]:
    """Decoding inside the block checks ``limits``."""
    token = _decode_limits.set(limits)
    try:
        yield
    finally:
        _decode_limits.reset(token)


def limit_error(field_name: str, what: str, size: int, limit: int, name: str) -> DecodeFieldError:
    """The error for a cell whose header claims more than a limit allows."""
    return DecodeFieldError(f"Field '{field_name}': the cell's header claims {what} of {size:,}, over the limit of "
                            f"{limit:,} (DecodeLimits.{name}); pass decode_limits=DecodeLimits({name}=...) to the "
                            f"reader if the data really needs it")


def check_cell_bytes(field_name: str, dtype: np.dtype, shape: tuple) -> None:
    """Raises ``DecodeFieldError`` when an array of ``shape`` and ``dtype`` is over the decode limit."""
    limit = decode_limits().max_cell_bytes
    size = dtype.itemsize
    for dim in shape:
        size *= int(dim)
    if size > limit:
        raise limit_error(field_name, "an array", size, limit, "max_cell_bytes")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_HEAD = struct.Struct(">8s4x4sII")  # signature, IHDR length, "IHDR", width, height
_CHUNK_HEAD = struct.Struct(">I4s")
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def image_size(data: Union[bytes, memoryview, np.ndarray]) -> Optional[Tuple[int, int]]:
    """``(width, height)`` from a PNG or JPEG header, without decoding; None when the header does not say."""
    if len(data) >= _PNG_HEAD.size:
        signature, chunk, width, height = _PNG_HEAD.unpack_from(data)
        if signature == _PNG_SIGNATURE:
            return (width, height) if chunk == b"IHDR" else None
    view = memoryview(data).cast("B")
    if bytes(view[:2]) != b"\xff\xd8":
        return None
    i, end = 2, min(len(view), 1 << 20)
    while i + 9 <= end and view[i] == 0xFF:
        marker, length = view[i + 1], int.from_bytes(view[i + 2:i + 4], "big")
        if marker in _SOF_MARKERS:
            return int.from_bytes(view[i + 7:i + 9], "big"), int.from_bytes(view[i + 5:i + 7], "big")
        i += 2 + length
    return None


def png_chunks_fit(data: Union[bytes, memoryview, np.ndarray]) -> bool:
    """Whether every chunk of a PNG (up to ``IEND``) lies within ``data``: a decoder trusts a chunk's stated length
    and allocates it before reading (a fuzzed 268-byte PNG whose IDAT claims 2 GB made OpenCV allocate 2 GB)."""
    at, end = 8, len(data)
    while at + 8 <= end:
        length, kind = _CHUNK_HEAD.unpack_from(data, at)
        if at + 12 + length > end:
            return False
        if kind == b"IEND":
            return True
        at += 12 + length
    return False


def check_image_pixels(field_name: str, data: Union[bytes, memoryview]) -> None:
    """Raises ``DecodeFieldError`` when an image's header claims more pixels than the decode limit, or a PNG's
    chunks claim more bytes than the cell has."""
    size = image_size(data)
    limit = decode_limits().max_image_pixels
    if size is not None and size[0] * size[1] > limit:
        raise limit_error(field_name, f"a {size[0]}x{size[1]} image, a pixel count", size[0] * size[1], limit,
                          "max_image_pixels")
    if bytes(data[:8]) == _PNG_SIGNATURE and not png_chunks_fit(data):
        raise DecodeFieldError(f"Field '{field_name}': cell is not a valid PNG image: its chunks do not fit in its "
                               f"{len(data):,} bytes (truncated, or a chunk length crafted to make the decoder "
                               f"allocate)")
