"""Spark side of petastorm: the bundled jar, session set-up, the tensor type and SQL functions."""
from petastorm.spark.session import configure_spark, jar_path
from petastorm.spark.tensor import TensorArray, TensorUDT, as_tensor
from petastorm.spark.spark_dataset_converter import SparkDatasetConverter, make_spark_converter  # noqa: F401,E402

__all__ = ["TensorArray", "TensorUDT", "as_tensor", "configure_spark", "jar_path"]
