"""Turning reader values into torch tensors for the loaders of :mod:`petastorm.pytorch`, with the original's type
promotions: ``uint16`` -> ``int32``, ``uint32`` -> ``int64``, ``bool`` -> ``uint8``, ``datetime64`` -> ``int64``
nanoseconds since the epoch; strings, object arrays and nulls raise ``TypeError`` naming the field."""
from __future__ import annotations

import collections.abc
import decimal
from typing import Any

import numpy as np

from petastorm._batching import BatchBuffers
from petastorm._extras import require

torch = require("torch", "petastorm.pytorch")
from torch.utils.data.dataloader import default_collate  # noqa: E402

__all__ = ["sanitize_pytorch_types", "as_tensor", "batch_tensor", "decimal_friendly_collate"]

_STRING_CLASSES = (str, bytes)


def sanitize_pytorch_types(row_as_dict: dict) -> None:
    """Promotes values (in place) to types torch supports; TypeError naming the field for strings, objects, None."""
    for name, value in row_as_dict.items():
        if isinstance(value, np.ndarray):
            if value.dtype == np.uint16:
                row_as_dict[name] = value.astype(np.int32)
            elif value.dtype == np.uint32:
                row_as_dict[name] = value.astype(np.int64)
            elif value.dtype == np.bool_:
                row_as_dict[name] = value.astype(np.uint8)
            elif value.dtype.kind == "M":
                row_as_dict[name] = _datetime_to_ns(value)
            elif value.dtype.kind in "SaUO":
                if value.dtype.kind == "O" and any(v is None for v in value.ravel()):
                    raise TypeError(f"Pytorch does not support nullable fields. Found None in {name}")
                raise TypeError(f"Pytorch does not support arrays of string or object classes. Found in field "
                                f"{name}.")
        elif isinstance(value, np.bool_):
            row_as_dict[name] = np.uint8(value)
        elif isinstance(value, np.uint16):
            row_as_dict[name] = np.int32(value)
        elif isinstance(value, np.uint32):
            row_as_dict[name] = np.int64(value)
        elif isinstance(value, np.datetime64):
            row_as_dict[name] = np.int64(_datetime_to_ns(value))
        elif value is None:
            raise TypeError(f"Pytorch does not support nullable fields. Found None in {name}")


def as_tensor(value: Any) -> torch.Tensor:
    """``torch.as_tensor``, copying read-only numpy arrays (torch cannot share them) instead of warning."""
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        value = value.copy()
    return torch.as_tensor(value)


def batch_tensor(value: Any, buffers: BatchBuffers) -> torch.Tensor:
    """A numpy batch column as a contiguous torch tensor, copied at most once, by numpy.

    Writable C-contiguous arrays are shared (``torch.from_numpy``); strided views (fixed-shape NPY cells read in
    place from an Arrow buffer) and read-only arrays get one numpy copy (much faster than torch's copy of a
    strided tensor) into an array from ``buffers``, reused only once the tensor and all its views are gone.
    """
    if not isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if value.dtype.kind in "biufc" and (not value.flags.c_contiguous or not value.flags.writeable):
        value = buffers.copy(value)
    elif not value.flags.c_contiguous:
        value = np.ascontiguousarray(value)
    elif not value.flags.writeable:
        value = value.copy()
    try:
        return torch.from_numpy(value)
    except (TypeError, ValueError):  # e.g. non-native byte order
        return torch.as_tensor(value.astype(value.dtype.newbyteorder("=")))


def _datetime_to_ns(value: Any) -> Any:
    return np.asarray(value).astype("datetime64[ns]").astype(np.int64)


def decimal_friendly_collate(batch: list) -> Any:
    """``default_collate`` that leaves ``decimal.Decimal`` (and string) values as lists instead of failing."""
    first = batch[0]
    if isinstance(first, decimal.Decimal):
        return batch
    if isinstance(first, collections.abc.Mapping):
        return {key: decimal_friendly_collate([d[key] for d in batch]) for key in first}
    if isinstance(first, _STRING_CLASSES):
        return batch
    if isinstance(first, collections.abc.Sequence):
        return [decimal_friendly_collate(samples) for samples in zip(*batch)]
    return default_collate(batch)
