"""PySpark wrappers of petastorm's SQL functions (they run on the JVM; the session needs `configure_spark`).

Each wrapper checks that the active session knows its function, and raises `SqlFunctionNotRegisteredError` saying
how to register them when it does not.
"""
from __future__ import annotations

import weakref
from typing import Optional, Sequence, Union

from pyspark.errors import AnalysisException
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from petastorm.spark.session import EXTENSIONS_CLASS, error_condition, is_connect

ColumnOrName = Union[Column, str]
Shape = Union[Sequence[int], Column]


class SqlFunctionNotRegisteredError(RuntimeError):
    """A petastorm SQL function is unknown to the active Spark session (the session lacks petastorm's extension)."""


# Function names already found in each session, so each is looked up in the catalog once per session.
_found: "weakref.WeakKeyDictionary[SparkSession, set]" = weakref.WeakKeyDictionary()


def _require(name: str) -> None:
    """Looks `name` up in the active session's catalog; Spark's UNRESOLVED_ROUTINE becomes an error saying how to
    register petastorm's functions. Without an active session, and on Spark Connect (where a read registering them
    is analysed only when the query runs), the check is left to Spark, when the column is used."""
    spark = SparkSession.getActiveSession()
    if spark is None or is_connect(spark) or name in _found.get(spark, ()):
        return
    try:
        spark.catalog.getFunction(name)
    except AnalysisException as e:
        if error_condition(e) != "UNRESOLVED_ROUTINE":
            raise
        raise SqlFunctionNotRegisteredError(
            f"{name}: petastorm's SQL functions are not registered in this Spark session. Start Spark with "
            f"`--conf spark.sql.extensions={EXTENSIONS_CLASS}` (and the petastorm jar), or build the session with "
            "petastorm.spark.configure_spark(SparkSession.builder); reading a dataset with "
            "spark.read.format('petastorm') also registers them in the session") from None
    _found.setdefault(spark, set()).add(name)


def _function(name: str, *args: Column) -> Column:
    """`name(args)` for one of petastorm's SQL functions, checked to be known to the active session."""
    _require(name)
    return F.call_function(name, *args)


def _shape(shape: Shape) -> Column:
    if isinstance(shape, Column):
        return shape
    return F.array(*[F.lit(int(d)) for d in shape])


def _col(column: ColumnOrName) -> Column:
    return F.col(column) if isinstance(column, str) else column


def tensor_shape(tensor: ColumnOrName) -> Column:
    """The dimensions of a tensor column, as `array<int>`."""
    return _function("tensor_shape", _col(tensor))


def tensor_dtype(tensor: ColumnOrName) -> Column:
    """The numpy dtype name of a tensor column (`float32`, `uint8`, ...)."""
    return _function("tensor_dtype", _col(tensor))


def tensor_to_array(tensor: ColumnOrName, dtype: Optional[str] = None) -> Column:
    """The elements of a tensor in row-major order: `array<double>`, or the Spark type that holds `dtype`."""
    args = [_col(tensor)] + ([] if dtype is None else [F.lit(dtype)])
    return _function("tensor_to_array", *args)


def tensor_reshape(tensor: ColumnOrName, shape: Shape) -> Column:
    """The same elements with another shape; one dimension may be -1."""
    return _function("tensor_reshape", _col(tensor), _shape(shape))


def array_to_tensor(values: ColumnOrName, shape: Shape, dtype: Optional[str] = None) -> Column:
    """A tensor from a flat numeric array column in row-major order.

    `dtype` (e.g. 'float32', 'uint8') defaults to the array's element type; values that do not fit it, null
    elements and a wrong element count for `shape` are errors.
    """
    args = [_col(values), _shape(shape)] + ([] if dtype is None else [F.lit(dtype)])
    return _function("array_to_tensor", *args)


def _int_or_null(value: Optional[int]) -> Column:
    return F.lit(None).cast("int") if value is None else F.lit(int(value))


def _image_args(height: Optional[int], width: Optional[int], channels: Optional[int]) -> list:
    if (height is None) != (width is None):
        raise ValueError("give both height and width (to resize) or neither")
    if channels is not None:
        return [_int_or_null(height), _int_or_null(width), F.lit(int(channels))]
    return [] if height is None else [F.lit(int(height)), F.lit(int(width))]


def load_image(path: ColumnOrName, height: Optional[int] = None, width: Optional[int] = None,
               channels: Optional[int] = None) -> Column:
    """The image file at each path (PNG, JPEG, BMP, GIF) as a tensor of shape (H, W, C) in RGB order.

    Files are read through Hadoop's FileSystem with the session's Hadoop configuration (local, `file:`, `s3a:`,
    `hdfs:`, ...). Pixels are uint8 (uint16 for 16-bit PNG); C is the image's own (1 grey, 3 colour, 4 with alpha)
    unless `channels` (1, 3 or 4) converts it; `height` and `width` resize bilinearly. A file that cannot be read
    or decoded gives null (counted, see `image_failure_count`), or an error when the session conf
    `spark.petastorm.image.onError` is `fail`.
    """
    return _function("load_image", _col(path), *_image_args(height, width, channels))


def decode_image(data: ColumnOrName, height: Optional[int] = None, width: Optional[int] = None,
                 channels: Optional[int] = None) -> Column:
    """PNG, JPEG, BMP or GIF bytes (a binary column) as an image tensor, exactly like `load_image`."""
    return _function("decode_image", _col(data), *_image_args(height, width, channels))


def encode_image(tensor: ColumnOrName, format: str = "png", quality: Optional[int] = None) -> Column:
    """An image tensor (uint8 (H, W) or (H, W, C) with C 1, 3 or 4; uint16 for PNG) as 'png' or 'jpeg' bytes.

    `quality` (1 to 100, default 80) applies to JPEG.
    """
    args = [_col(tensor), F.lit(format)] + ([] if quality is None else [F.lit(int(quality))])
    return _function("encode_image", *args)


def vector_to_tensor(vector: ColumnOrName, shape: Optional[Shape] = None) -> Column:
    """A Spark ML vector column (dense or sparse) as a float64 tensor of `shape` (default: (size,))."""
    args = [_col(vector)] + ([] if shape is None else [_shape(shape)])
    return _function("vector_to_tensor", *args)


def image_failure_count(spark: SparkSession) -> int:
    """How many images `load_image` and `decode_image` turned into null so far in this SparkContext.

    Counted by the accumulator `petastorm.image.failures` (also in the Spark UI); a task that runs again counts again.
    Read through the SQL function `image_failure_count()`, so it works on classic and Spark Connect sessions alike.
    """
    _require("image_failure_count")
    return int(spark.sql("SELECT image_failure_count()").first()[0])
