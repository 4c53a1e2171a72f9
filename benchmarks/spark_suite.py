"""Spark-side benchmarks of the `petastorm` data source, each against the route a user would otherwise take,
measured in the same run on the same machine.

    .venv/bin/python benchmarks/spark_suite.py                  # 60,000 images, 3 repetitions
    .venv/bin/python benchmarks/spark_suite.py --images 3000    # smaller

1. Ingest: N generated 32x32 RGB PNG files plus a `filename,label` CSV (`--extra-columns` adds columns, as in
   seed 004 where the image path sits among hundreds of others; they cost both routes the same).
   - ours: `load_image(path)` on the executors -> (32, 32, 3) uint8 tensor column -> `write.format("petastorm")`;
   - Python-UDF route (the seed's): a Python UDF opens each path with Pillow and returns the pixels as a flattened
     3,072-d Spark ML vector, written with `write.parquet`.
   Both start from the label CSV spread over every core; each is warmed up on 1,000 images first.
   Reported: images/s of each (median) and ours / UDF.
2. Tensor read: the ingested dataset's `label` and `image` columns read back and materialised through Spark's
   `noop` sink:
   `spark.read.format("petastorm")` (decodes NPY cells into tensors) against `spark.read.parquet` of the same files
   (binary cells, no decode). Reported: rows/s of each and the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _session(master: str):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from petastorm.spark import configure_spark

    builder = (SparkSession.builder.master(master).appName("petastorm-spark-benchmarks")
               .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "4g"))
    spark = configure_spark(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _generate(folder: Path, count: int, extra_columns: int) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    lines = [",".join(["filename", "label"] + [f"feature_{k}" for k in range(extra_columns)])]
    for i in range(count):
        name = f"img_{i:06d}.png"
        Image.fromarray(np.roll(base, i, axis=1)).save(folder / name, compress_level=1)
        lines.append(",".join([name, str(i % 10)] + [str((i * k) % 97) for k in range(extra_columns)]))
    labels = folder / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    return labels


def _timed(body) -> float:
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


def _labels(spark, labels: Path):
    """The label table, spread over every core (a small CSV is read as one partition)."""
    return spark.read.option("header", "true").csv(str(labels)).repartition(spark.sparkContext.defaultParallelism)


def _paired(args, name: str, body, baseline_name: str, baseline) -> dict:
    """Rows/s of `body` and of `baseline`, run alternately; medians, and the median of the paired ratios."""
    ours, theirs, ratios = [], [], []
    for _ in range(args.repetitions):
        t_ours, t_theirs = _timed(body), _timed(baseline)
        ours.append(args.images / t_ours)
        theirs.append(args.images / t_theirs)
        ratios.append(t_theirs / t_ours)
    return {name: statistics.median(ours), baseline_name: statistics.median(theirs),
            "ratio": statistics.median(ratios), "ratios": ratios}


def ingest_ours(spark, labels: Path, folder: Path, out: str) -> None:
    from pyspark.sql import functions as F

    from petastorm.spark.functions import load_image

    df = _labels(spark, labels)
    df = df.withColumn("image", load_image(F.concat(F.lit(f"{folder}/"), F.col("filename"))))
    df.write.format("petastorm").mode("overwrite").save(out)


def ingest_python_udf(spark, labels: Path, folder: Path, out: str) -> None:
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql import functions as F

    prefix = f"{folder}/"

    @F.udf(VectorUDT())
    def pixels(name):
        from PIL import Image as PILImage

        with PILImage.open(prefix + name) as image:
            return Vectors.dense(np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1))

    _labels(spark, labels).withColumn("image", pixels("filename")).write.mode("overwrite").parquet(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--extra-columns", type=int, default=0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--output", default="benchmarks/results/spark_suite.json")
    args = parser.parse_args(argv)

    spark = _session(args.master)
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "loadavg_at_start": os.getloadavg()}, "images": args.images,
               "extra_columns": args.extra_columns}
    with tempfile.TemporaryDirectory(prefix="petastorm-spark-bench-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        labels = _generate(folder, args.images, args.extra_columns)
        ours_out, udf_out = f"file://{tmp}/ours", f"file://{tmp}/udf"
        warmup = Path(tmp) / "warmup.csv"  # JIT and Python workers warm up on 1,000 images, not measured
        warmup.write_text("".join(labels.read_text().splitlines(keepends=True)[:1001]))
        ingest_ours(spark, warmup, folder, ours_out)
        ingest_python_udf(spark, warmup, folder, udf_out)
        results["ingest"] = _paired(args, "ours", lambda: ingest_ours(spark, labels, folder, ours_out),
                                    "python_udf", lambda: ingest_python_udf(spark, labels, folder, udf_out))
        print(f"ingest: ours {results['ingest']['ours']:,.0f} images/s, Python UDF "
              f"{results['ingest']['python_udf']:,.0f} images/s, ratio {results['ingest']['ratio']:.1f}x")

        def read(reader):
            reader.load(ours_out).select("label", "image").write.format("noop").mode("overwrite").save()

        results["tensor_read"] = _paired(args, "petastorm", lambda: read(spark.read.format("petastorm")),
                                         "parquet", lambda: read(spark.read.format("parquet")))
        print(f"tensor read: format('petastorm') {results['tensor_read']['petastorm']:,.0f} rows/s, parquet "
              f"{results['tensor_read']['parquet']:,.0f} rows/s, ratio {results['tensor_read']['ratio']:.2f}")
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
