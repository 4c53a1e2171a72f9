"""PySpark wrappers of petastorm's SQL functions (they run on the JVM; the session needs `configure_spark`)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from pyspark.sql import Column
from pyspark.sql import functions as F

ColumnOrName = Union[Column, str]
Shape = Union[Sequence[int], Column]


def _shape(shape: Shape) -> Column:
    if isinstance(shape, Column):
        return shape
    return F.array(*[F.lit(int(d)) for d in shape])


def _col(column: ColumnOrName) -> Column:
    return F.col(column) if isinstance(column, str) else column


def tensor_shape(tensor: ColumnOrName) -> Column:
    """The dimensions of a tensor column, as `array<int>`."""
    return F.call_function("tensor_shape", _col(tensor))


def tensor_dtype(tensor: ColumnOrName) -> Column:
    """The numpy dtype name of a tensor column (`float32`, `uint8`, ...)."""
    return F.call_function("tensor_dtype", _col(tensor))


def tensor_to_array(tensor: ColumnOrName, dtype: Optional[str] = None) -> Column:
    """The elements of a tensor in row-major order: `array<double>`, or the Spark type that holds `dtype`."""
    args = [_col(tensor)] + ([] if dtype is None else [F.lit(dtype)])
    return F.call_function("tensor_to_array", *args)


def tensor_reshape(tensor: ColumnOrName, shape: Shape) -> Column:
    """The same elements with another shape; one dimension may be -1."""
    return F.call_function("tensor_reshape", _col(tensor), _shape(shape))


def array_to_tensor(values: ColumnOrName, shape: Shape, dtype: Optional[str] = None) -> Column:
    """A tensor from a flat numeric array column in row-major order.

    `dtype` (e.g. 'float32', 'uint8') defaults to the array's element type; values that do not fit it, null
    elements and a wrong element count for `shape` are errors.
    """
    args = [_col(values), _shape(shape)] + ([] if dtype is None else [F.lit(dtype)])
    return F.call_function("array_to_tensor", *args)
