"""The tensor column type: numpy arrays in Spark DataFrames, shared with the JVM's `TensorUDT`."""
from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql.types import ArrayType, BinaryType, IntegerType, StringType, StructField, StructType, UserDefinedType

#: numpy descrs a tensor may have: bool, signed and unsigned integers, and floats, little-endian.
SUPPORTED_DESCRS = frozenset(
    ["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f2", "<f4", "<f8"]
)

_SQL_TYPE = StructType(
    [
        StructField("dtype", StringType(), False),
        StructField("shape", ArrayType(IntegerType(), False), False),
        StructField("data", BinaryType(), False),
    ]
)


def tensor_dtype(dtype: Any) -> np.dtype:
    """The little-endian numpy dtype a tensor of `dtype` holds; an error for non-numeric dtypes."""
    dt = np.dtype(dtype)
    if dt.byteorder == ">":
        dt = dt.newbyteorder("<")
    if dt.str not in SUPPORTED_DESCRS:
        raise ValueError(
            f"A tensor holds bool, integer or float elements; got dtype {dt} ({dt.str}). "
            f"Supported: {', '.join(sorted(SUPPORTED_DESCRS))}"
        )
    return dt


def to_struct(value: Any) -> tuple[str, list[int], bytes]:
    """`(dtype descr, shape, C-order little-endian bytes)` of an array-like."""
    array = np.asarray(value)
    dt = tensor_dtype(array.dtype)
    return dt.str, [int(d) for d in array.shape], np.ascontiguousarray(array, dtype=dt).tobytes()


def from_struct(dtype: str, shape: list[int], data: bytes) -> np.ndarray:
    """The ndarray viewed (not copied) over `data`; checks dtype, dimensions and byte count."""
    if dtype not in SUPPORTED_DESCRS:
        raise ValueError(f"Unknown tensor dtype {dtype!r}: expected one of {', '.join(sorted(SUPPORTED_DESCRS))}")
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"Tensor shape {dims} has a negative dimension")
    dt = np.dtype(dtype)
    expected = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    if len(data) != expected:
        raise ValueError(
            f"Tensor of dtype {dt} and shape {dims} needs {expected} bytes "
            f"({expected // dt.itemsize} elements of {dt.itemsize} bytes), got {len(data)}"
        )
    return np.frombuffer(data, dtype=dt).reshape(dims)


class TensorUDT(UserDefinedType):
    """Spark SQL type of tensor columns: values are `numpy.ndarray` in Python, `Tensor` on the JVM.

    Stored as `struct<dtype:string, shape:array<int>, data:binary>`. Arrays read back are read-only
    `TensorArray` views over the row's bytes (no copy); `np.asarray` turns them into plain ndarrays.
    """

    @classmethod
    def sqlType(cls) -> StructType:
        return _SQL_TYPE

    @classmethod
    def module(cls) -> str:
        return "petastorm.spark.tensor"

    @classmethod
    def scalaUDT(cls) -> str:
        return "org.petastorm.spark.tensor.TensorUDT"

    def serialize(self, obj: Any) -> tuple[str, list[int], bytes]:
        return to_struct(obj)

    def deserialize(self, datum: Any) -> "TensorArray":
        """The array of a tensor struct: a Row or tuple, or the dict `mapInPandas` passes to Python."""
        if isinstance(datum, dict):
            return from_struct(datum["dtype"], datum["shape"], datum["data"]).view(TensorArray)
        return from_struct(datum[0], datum[1], datum[2]).view(TensorArray)

    def simpleString(self) -> str:
        return "tensor"


class TensorArray(np.ndarray):
    """An ndarray that PySpark recognises as a tensor value.

    `createDataFrame` verifies each value of a `TensorUDT` field by its `__UDT__`, which plain ndarrays lack; wrap
    them with `as_tensor` (a zero-copy view), or pass `verifySchema=False`. With `as_tensor` values the schema can
    also be inferred. Arrays read back from Spark are `TensorArray`s too, so collected rows can be written again.
    """

    __UDT__ = TensorUDT()


def as_tensor(value: Any) -> TensorArray:
    """A zero-copy `TensorArray` view of an array-like, for `createDataFrame` rows."""
    return np.asarray(value).view(TensorArray)
