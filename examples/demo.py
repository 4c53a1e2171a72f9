"""`make demo`: tensors through Spark on a local[2] session — numpy arrays in, SQL functions on the JVM, Parquet
on disk, numpy arrays out."""
import tempfile

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

from petastorm.spark import TensorUDT, as_tensor, configure_spark
from petastorm.spark.functions import array_to_tensor, tensor_dtype, tensor_shape


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


def main() -> None:
    builder = SparkSession.builder.master("local[2]").appName("petastorm-demo").config("spark.ui.showConsoleProgress", "false")
    spark = configure_spark(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory(prefix="petastorm-demo-") as workdir:
        tensor_round_trip(spark, workdir)
    spark.stop()


if __name__ == "__main__":
    main()
