"""TensorFlow's view of Petastorm values: numpy types to TensorFlow dtypes, the value conversions of Petastorm
0.13.1 (``Decimal`` to strings, dates to ``int64`` nanoseconds, unicode to UTF-8 bytes, ``uint16``/``uint32``
widened, nulls refused naming the field) and the ``TensorSpec`` of a schema's rows or batches."""
from __future__ import annotations

import datetime
import decimal
from calendar import timegm
from typing import Any

import numpy as np

from petastorm._extras import require

_NUMPY_TO_TF_NAMES = {
    np.int8: "int8", np.int16: "int16", np.int32: "int32", np.int64: "int64", np.uint8: "uint8",
    np.uint16: "int32", np.uint32: "int64", np.float16: "float16", np.float32: "float32", np.float64: "float64",
    np.bytes_: "string", np.str_: "string", np.bool_: "bool", decimal.Decimal: "string", np.datetime64: "int64",
}


def _tf() -> Any:
    return require("tensorflow", "petastorm.tf_utils")  # imported lazily on purpose (it takes seconds)


def _numpy_to_tf_dtype(numpy_dtype: Any, field_name: str = "?") -> Any:
    """The TensorFlow dtype for a field's numpy scalar type (ValueError when there is none)."""
    name = _NUMPY_TO_TF_NAMES.get(numpy_dtype)
    if name is None and isinstance(numpy_dtype, type) and issubclass(numpy_dtype, np.datetime64):
        name = "int64"
    if name is None:
        raise ValueError(f"Field '{field_name}': no TensorFlow dtype for numpy type {numpy_dtype!r}")
    return getattr(_tf(), name)


class _NullValueError(ValueError, RuntimeError):
    """A null value where TensorFlow needs one; a ValueError, and the RuntimeError Petastorm 0.13.1 raised."""


def _null_error(name: str) -> ValueError:
    return _NullValueError(f"Field '{name}' has a null (None) value, which TensorFlow tensors cannot hold. Filter "
                      f"such rows out with a predicate, or fill the nulls before writing the dataset.")


def _date_to_nsec(value: datetime.date) -> int:
    if isinstance(value, datetime.datetime):
        return int(np.datetime64(value.replace(tzinfo=None), "ns").astype(np.int64))
    return timegm(value.timetuple()) * 1_000_000_000


def date_to_nsec_from_epoch(dt: datetime.date) -> int:
    """Nanoseconds from the Unix epoch to ``dt`` (a date: its midnight; a datetime: its wall-clock time, with the
    time zone ignored) as TensorFlow receives date fields."""
    return _date_to_nsec(dt)


def _datetime_to_ns(value: Any) -> Any:
    return np.asarray(value).astype("datetime64[ns]").astype(np.int64)


def _sanitize_value(name: str, value: Any, target: Any) -> Any:
    """One field value (a row value, or a column of a batch) as something TensorFlow accepts as ``target``."""
    if value is None:
        raise _null_error(name)
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    if isinstance(value, (np.datetime64, datetime.date)):
        return _datetime_to_ns(value) if isinstance(value, np.datetime64) else np.int64(_date_to_nsec(value))
    if isinstance(value, str):
        return value.encode("utf-8")
    if not isinstance(value, np.ndarray):
        return value
    kind = value.dtype.kind
    if kind == "M":
        return _datetime_to_ns(value)
    if kind == "U":
        return np.char.encode(value, "utf-8") if value.size else value.astype(np.bytes_)
    if kind == "O":
        flat = value.ravel()
        if any(v is None for v in flat):
            raise _null_error(name)
        if len(flat) and isinstance(flat[0], decimal.Decimal):
            return np.array([str(v.normalize()) for v in flat], dtype=object).reshape(value.shape)
        if len(flat) and isinstance(flat[0], (datetime.date, np.datetime64)):
            return np.array([_date_to_nsec(v) if isinstance(v, datetime.date) else int(_datetime_to_ns(v))
                             for v in flat], dtype=np.int64).reshape(value.shape)
        if len(flat) and isinstance(flat[0], np.ndarray):
            raise ValueError(f"Field '{name}': cells have different shapes within one batch (got an object "
                             f"array of arrays); TensorFlow needs rectangular batches")
        return value
    if kind == "f" and target in ("int8", "int16", "int32", "int64", "uint8", "bool") and np.isnan(value).any():
        # pandas turns a nullable integer column with nulls into floats with NaN.
        raise _null_error(name)
    if kind == "u" and value.dtype.itemsize in (2, 4):
        return value.astype(np.int32 if value.dtype.itemsize == 2 else np.int64)
    return value


def _field_targets(schema: Any) -> dict[str, str]:
    return {name: _numpy_to_tf_dtype(f.numpy_dtype, name).name for name, f in schema.fields.items()}


def _sanitize_tuple(sample: Any, targets: dict[str, str]) -> Any:
    return type(sample)(*(_sanitize_value(name, value, targets[name])
                          for name, value in zip(sample._fields, sample)))


def _signature(schema: Any, batched: bool) -> Any:
    """A namedtuple of ``tf.TensorSpec`` for the rows (or batches) of ``schema``; static where shapes are fixed."""
    tf = _tf()
    specs = {}
    for name, field in schema.fields.items():
        shape = tuple(field.shape or ())
        specs[name] = tf.TensorSpec(((None,) if batched else ()) + shape, _numpy_to_tf_dtype(field.numpy_dtype, name),
                                    name=None)
    return schema._get_namedtuple()(**specs)
