"""Validation of values against a UnischemaField (shared by codecs and ``dict_to_spark_row``)."""
from __future__ import annotations

import datetime
import decimal
import numbers
from typing import Any, Optional, Sequence

import numpy as np

from petastorm.errors import FieldValueError

# For a field of numpy kind K (key), the kinds of scalar values it accepts.
_ACCEPTED_KINDS = {
    "b": {"b"},
    "i": {"b", "i", "u"},
    "u": {"b", "i", "u"},
    "f": {"b", "i", "u", "f"},
    "c": {"b", "i", "u", "f", "c"},
    "U": {"U"},
    "S": {"S", "U"},
    "M": {"M"},
    "m": {"m"},
    "decimal": {"decimal", "i", "u"},
}


def is_compliant_shape(actual: Sequence[int], expected: Sequence[Optional[int]]) -> bool:
    """True if ``actual`` has the rank of ``expected`` and matches its fixed (non-None) dimensions."""
    if len(actual) != len(expected):
        return False
    return all(e is None or a == e for a, e in zip(actual, expected))


def dtype_name(numpy_dtype: Any) -> str:
    """Readable name of a field's numpy_dtype (a numpy scalar class or decimal.Decimal)."""
    return getattr(numpy_dtype, "__name__", str(numpy_dtype))


def _field_kind(numpy_dtype: Any) -> Optional[str]:
    if numpy_dtype is decimal.Decimal:
        return "decimal"
    try:
        return np.dtype(numpy_dtype).kind
    except TypeError:
        return None


def _value_kind(value: Any) -> Optional[str]:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.dtype.kind
    if isinstance(value, bool):
        return "b"
    if isinstance(value, numbers.Integral):
        return "i"
    if isinstance(value, numbers.Real):
        return "f"
    if isinstance(value, numbers.Complex):
        return "c"
    if isinstance(value, str):
        return "U"
    if isinstance(value, (bytes, bytearray)):
        return "S"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "M"
    if isinstance(value, datetime.timedelta):
        return "m"
    return None


def check_scalar(field: Any, value: Any) -> None:
    """Raise :class:`FieldValueError` unless ``value`` is a scalar acceptable for the scalar field ``field``."""
    if isinstance(value, np.ndarray) and value.shape != ():
        raise FieldValueError(f"Field '{field.name}': expected a scalar of {dtype_name(field.numpy_dtype)}, "
                         f"got an array of shape {value.shape}")
    if isinstance(value, (list, tuple, dict, set)):
        raise FieldValueError(f"Field '{field.name}': expected a scalar of {dtype_name(field.numpy_dtype)}, "
                         f"got {type(value).__name__}")
    want, got = _field_kind(field.numpy_dtype), _value_kind(value)
    if want is None or got is None:
        return
    accepted = _ACCEPTED_KINDS.get(want)
    if accepted is not None and got not in accepted:
        raise FieldValueError(f"Field '{field.name}': expected a value of type {dtype_name(field.numpy_dtype)}, "
                         f"got {type(value).__name__} ({value!r:.60})")


def check_ndarray(field: Any, value: Any, allowed_dtypes: Optional[Sequence[type]] = None) -> None:
    """Raise :class:`FieldValueError` unless ``value`` is an ndarray of the field's dtype and compliant shape."""
    if not isinstance(value, np.ndarray):
        raise FieldValueError(f"Field '{field.name}': expected a numpy.ndarray of {dtype_name(field.numpy_dtype)} "
                         f"with shape {field.shape}, got {type(value).__name__}")
    if value.dtype.type is not field.numpy_dtype:
        raise FieldValueError(f"Field '{field.name}': expected dtype {dtype_name(field.numpy_dtype)}, "
                         f"got {value.dtype}")
    if allowed_dtypes is not None and value.dtype.type not in allowed_dtypes:
        names = ", ".join(dtype_name(t) for t in allowed_dtypes)
        raise FieldValueError(f"Field '{field.name}': dtype {value.dtype} is not supported by this codec "
                         f"(supported: {names})")
    if not is_compliant_shape(value.shape, field.shape):
        raise FieldValueError(f"Field '{field.name}': expected shape {field.shape}, got {value.shape}")
