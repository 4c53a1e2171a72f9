"""Spark side of petastorm: the bundled jar, session set-up, the tensor type and SQL functions."""
from petastorm.spark.session import configure_spark, jar_path
from petastorm.spark.tensor import TensorArray, TensorUDT, as_tensor

__all__ = ["TensorArray", "TensorUDT", "as_tensor", "configure_spark", "jar_path"]
