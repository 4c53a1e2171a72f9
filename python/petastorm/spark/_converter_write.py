"""How the converter writes a DataFrame: the precision rule applied on the JVM, then one write through the
``petastorm`` Spark data source (the JVM writer owns the format: tensor cells, the common-shape rule, metadata).

There is no second writer: a session whose JVM (or Spark Connect server) lacks the data source gets an error that
says how to add it.
"""
from __future__ import annotations

from typing import Any

from petastorm.spark.session import connect_server_setup, error_condition, is_connect

SOURCE = "petastorm"


def _no_source_message(spark: Any) -> str:
    where = ("the Spark Connect server does not have it: " + connect_server_setup() if is_connect(spark) else
             "this session's JVM does not have it. Start the session with "
             "petastorm.spark.configure_spark(SparkSession.builder), or add the jar at petastorm.spark.jar_path() to "
             "spark.jars (spark-submit --jars) before the session starts")
    return f"make_spark_converter writes through the '{SOURCE}' Spark data source; " + where


def _is_vector(data_type: Any) -> bool:
    from pyspark.ml.linalg import VectorUDT
    from pyspark.mllib.linalg import VectorUDT as OldVectorUDT

    return isinstance(data_type, (VectorUDT, OldVectorUDT))


def _is_tensor(data_type: Any) -> bool:
    from petastorm.spark.tensor import TensorUDT

    return isinstance(data_type, TensorUDT)


def _is_nested_array(data_type: Any) -> bool:
    from pyspark.sql.types import ArrayType

    return isinstance(data_type, ArrayType) and isinstance(data_type.elementType, ArrayType)


def _cast_floats(data_type: Any, dtype: str | None) -> Any:
    """``data_type`` with its floating-point leaves (also inside arrays) turned into ``dtype``; None if unchanged."""
    from pyspark.sql.types import ArrayType, DoubleType, FloatType

    if dtype is None:
        return None
    source, target = (DoubleType, FloatType) if dtype == "float32" else (FloatType, DoubleType)
    if isinstance(data_type, source):
        return target()
    if isinstance(data_type, ArrayType):
        inner = _cast_floats(data_type.elementType, dtype)
        return ArrayType(inner, data_type.containsNull) if inner is not None else None
    return None


def _nested_array_to_tensor(column: Any, data_type: Any) -> Any:
    """A tensor column from a rectangular nested array column (on the JVM): flattened values, shape from the
    sizes of the first element at each level (a ragged cell fails the element count check)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    from petastorm.spark.functions import array_to_tensor

    sizes, flat, probe, level = [], column, column, data_type
    while isinstance(level, ArrayType):
        sizes.append(F.size(probe))
        probe = F.element_at(probe, 1)
        if isinstance(level.elementType, ArrayType):
            flat = F.flatten(flat)
        level = level.elementType
    return F.when(column.isNull(), F.lit(None)).otherwise(array_to_tensor(flat, F.array(*sizes)))


def prepare(df: Any, dtype: str | None) -> Any:
    """The precision rule on the JVM: floats (also in arrays), vectors and tensors to ``dtype``; nested numeric
    arrays to tensors."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from petastorm.spark.functions import array_to_tensor, tensor_dtype, tensor_shape, tensor_to_array

    for field in df.schema.fields:
        name = field.name
        if _is_vector(field.dataType):
            if dtype is not None:
                df = df.withColumn(name, vector_to_array(df[name], dtype))
        elif _is_tensor(field.dataType):
            if dtype is not None:
                source = "float64" if dtype == "float32" else "float32"
                converted = array_to_tensor(tensor_to_array(name, dtype), tensor_shape(name), dtype)
                df = df.withColumn(name, F.when(tensor_dtype(name) == source, converted).otherwise(F.col(name)))
        else:
            cast = _cast_floats(field.dataType, dtype)
            if cast is not None:
                df = df.withColumn(name, df[name].cast(cast))
            if _is_nested_array(field.dataType):
                df = df.withColumn(name, _nested_array_to_tensor(F.col(name), field.dataType))
    return df


def write_dataset(spark: Any, df: Any, dtype: str | None, spark_url: str, row_group_size_bytes: int,
                  compression_codec: str) -> None:
    """Materialises ``df`` at ``spark_url`` as a Petastorm dataset through the ``petastorm`` data source (on the
    session's JVM or its Spark Connect server); a session without that source gets an error saying how to add it."""
    try:
        (prepare(df, dtype).write.format(SOURCE).mode("overwrite")
         .option("compression", compression_codec)
         .option("parquet.block.size", str(row_group_size_bytes))
         .save(spark_url))
    except Exception as e:  # classic: a py4j error (Spark does not convert this one); Connect: a PySparkException
        if error_condition(e) != "DATA_SOURCE_NOT_FOUND":
            raise
        raise RuntimeError(_no_source_message(spark)) from None
