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
    return F.call_function("load_image", _col(path), *_image_args(height, width, channels))


def decode_image(data: ColumnOrName, height: Optional[int] = None, width: Optional[int] = None,
                 channels: Optional[int] = None) -> Column:
    """PNG, JPEG, BMP or GIF bytes (a binary column) as an image tensor, exactly like `load_image`."""
    return F.call_function("decode_image", _col(data), *_image_args(height, width, channels))


def encode_image(tensor: ColumnOrName, format: str = "png", quality: Optional[int] = None) -> Column:
    """An image tensor (uint8 (H, W) or (H, W, C) with C 1, 3 or 4; uint16 for PNG) as 'png' or 'jpeg' bytes.

    `quality` (1 to 100, default 80) applies to JPEG.
    """
    args = [_col(tensor), F.lit(format)] + ([] if quality is None else [F.lit(int(quality))])
    return F.call_function("encode_image", *args)


def vector_to_tensor(vector: ColumnOrName, shape: Optional[Shape] = None) -> Column:
    """A Spark ML vector column (dense or sparse) as a float64 tensor of `shape` (default: (size,))."""
    args = [_col(vector)] + ([] if shape is None else [_shape(shape)])
    return F.call_function("vector_to_tensor", *args)


def image_failure_count(spark) -> int:
    """How many images `load_image` and `decode_image` turned into null so far in this SparkContext.

    Counted by the accumulator `petastorm.image.failures` (also in the Spark UI); a task that runs again counts again.
    """
    return spark._jvm.org.petastorm.spark.image.ImageFailures.count(spark._jsparkSession)
