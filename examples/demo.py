"""`make demo`: the whole path on a local[2] Spark session.

1. Tensors through Spark: numpy arrays in, SQL functions on the JVM, Parquet on disk, numpy arrays out.
2. The original Petastorm README's hello world, unchanged: `materialize_dataset` + `make_reader`.
3. Digits written by Spark with `df.write.format("petastorm")` (an image tensor column built on the JVM), then
   read with `make_reader` / `make_batch_reader` to train a torch CNN and a Keras model.
"""
import sys
import tempfile
from pathlib import Path

import torch._dynamo  # noqa: F401  (torch's triton must load before TensorFlow: see docs/adapters.md)
import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

from petastorm.spark import TensorUDT, as_tensor, configure_spark
from petastorm.spark.functions import array_to_tensor, tensor_dtype, tensor_shape

EXAMPLES = Path(__file__).resolve().parent
sys.path[:0] = [str(EXAMPLES / "hello_world"), str(EXAMPLES / "digits")]


def tensor_round_trip(spark: SparkSession, workdir: str) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size=(4, 8, 3), dtype=np.uint8) for _ in range(6)]
    schema = StructType([StructField("id", IntegerType(), False), StructField("image", TensorUDT(), False)])
    df = spark.createDataFrame([(i, as_tensor(img)) for i, img in enumerate(images)], schema)
    flat = F.array(*[F.col("id").cast("float") + k for k in range(4)])
    df = df.withColumn("pixels", array_to_tensor(flat, [2, 2], "float32"))
    df.select("id", tensor_shape("image").alias("shape"), tensor_dtype("image").alias("dtype"),
              tensor_shape("pixels").alias("pixels_shape")).show()
    path = f"{workdir}/tensors.parquet"
    df.write.parquet(path)
    back = spark.read.parquet(path).orderBy("id").collect()
    assert all(np.array_equal(row.image, img) for row, img in zip(back, images))
    print(f"tensor round trip: {len(back)} rows of uint8 {images[0].shape} equal after Spark and Parquet; "
          f"pixels = {back[1].pixels.tolist()}")


def hello_world(spark: SparkSession, workdir: str) -> None:
    spark.sparkContext.addPyFile(str(EXAMPLES / "hello_world" / "generate_petastorm_dataset.py"))  # for its UDFs
    from generate_petastorm_dataset import generate_petastorm_dataset
    from python_hello_world import python_hello_world

    url = f"file://{workdir}/hello_world"
    generate_petastorm_dataset(url)
    print("hello world (the original README's generator and make_reader):")
    python_hello_world(url)


def write_digits(spark: SparkSession, workdir: str) -> str:
    """Digits as a Petastorm dataset written by Spark: `image` becomes a uint8 (8, 8) tensor stored as PNG."""
    from generate_digits_dataset import load_digits_arrays

    images, labels = load_digits_arrays()
    rows = [(i, images[i].reshape(-1).tolist(), int(labels[i])) for i in range(len(labels))]
    df = (spark.createDataFrame(rows, "idx int, pixels array<int>, digit int")
          .withColumn("image", array_to_tensor("pixels", [8, 8], "uint8")).drop("pixels"))
    url = f"file://{workdir}/digits"
    for split, keep in (("train", F.col("idx") % 5 != 0), ("test", F.col("idx") % 5 == 0)):
        (df.where(keep).repartition(4).write.format("petastorm")
           .option("codec.image", "png").option("rowGroupSizeMB", "0.0625").save(f"{url}/{split}"))
    print(f"digits: {len(labels)} images written with df.write.format('petastorm') to {url}")
    return url


def main() -> None:
    builder = (SparkSession.builder.master("local[2]").appName("petastorm-demo")
               .config("spark.ui.showConsoleProgress", "false"))
    spark = configure_spark(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory(prefix="petastorm-demo-") as workdir:
        tensor_round_trip(spark, workdir)
        hello_world(spark, workdir)
        digits = write_digits(spark, workdir)
        from train_keras import train_keras
        from train_torch import train_torch

        torch_accuracy = train_torch(digits, epochs=3)
        keras_accuracy = train_keras(digits, epochs=8)
        print(f"trained on a Spark-written Petastorm dataset: torch {torch_accuracy:.3f}, "
              f"Keras {keras_accuracy:.3f} test accuracy")
    spark.stop()


if __name__ == "__main__":
    main()
