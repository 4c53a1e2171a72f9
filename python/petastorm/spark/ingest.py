"""Images plus a label CSV into a Petastorm dataset, in one distributed Spark job (decoding on the JVM).

Built with the DataFrame API (the CSV read, the labels, `load_image`, `format("petastorm")`), so the same code runs
on a classic session and on Spark Connect; `org.petastorm.spark.ingest.ImageIngest` is the same pipeline in Scala.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from petastorm.spark.functions import image_failure_count, load_image
from petastorm.spark.session import error_condition, is_connect

# Rows per partition of the label table when it is spread over the executors (images are read per partition).
_ROWS_PER_PARTITION = 2000


class OutputExistsError(FileExistsError):
    """The output of an ingest exists already and the mode (`errorifexists`, the default) does not replace it."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class IngestResult:
    """Rows this ingest wrote (in `append` mode: not counting the rows already there), images that could not be read
    (left out), and where."""

    rows: int
    failed_images: int
    output: str


def read_labels(spark: SparkSession, labels_csv: str) -> DataFrame:
    """`filename,label` rows of `labels_csv` (the header line is optional).

    When every label is an integer, `label` is an integer column. Otherwise `label` keeps the text and `label_index`
    is its position (from 0) in the sorted distinct labels, so the same set of labels always gets the same indexes.
    """
    raw = spark.read.option("header", "false").csv(labels_csv)
    if len(raw.columns) < 2:
        raise ValueError(f"{labels_csv}: expected two columns, filename,label; got {len(raw.columns)}")
    named = (raw.select(F.trim(raw.columns[0]).alias("filename"), F.trim(raw.columns[1]).alias("label"))
             .where(~((F.col("filename") == "filename") & (F.col("label") == "label"))))
    # No cast that can throw (ANSI mode): a label is an integer when it is digits and try_cast takes it (the SQL
    # form: pyspark 3.5's Column has no try_cast).
    label, as_int = F.col("label"), F.expr("try_cast(label AS INT)")
    is_integer = label.rlike("^[+-]?[0-9]+$") & as_int.isNotNull()
    if named.where(label.isNotNull() & ~is_integer).isEmpty():
        return named.withColumn("label", as_int)
    # Computed by Spark (a window over the distinct labels), not collected to the driver: labels may be many.
    indexes = (named.where(label.isNotNull()).select("label").distinct()
               .withColumn("label_index", (F.row_number().over(Window.orderBy("label")) - 1).cast("int")))
    return named.join(indexes, ["label"], "left").select("filename", "label", "label_index")


def _default_parallelism(spark: SparkSession) -> int:
    """The cluster's default parallelism: the SparkContext's, or on Spark Connect (no SparkContext) measured,
    since `spark.range` splits its rows into that many partitions."""
    if not is_connect(spark):
        return spark.sparkContext.defaultParallelism
    return spark.range(1 << 16).select(F.spark_partition_id().alias("p")).agg(F.max("p")).first()[0] + 1


def _image_column(images_dir: str, size: Optional[Tuple[int, int]]) -> Column:
    path = F.concat(F.lit(images_dir.rstrip("/") + "/"), F.col("filename"))
    height, width = size if size else (None, None)
    return load_image(path, height, width, 3)


def _output_exists(spark: SparkSession, output_url: str) -> bool:
    """Whether `output_url` exists for the Spark driver's Hadoop file systems (on Spark Connect: the server's, which
    may differ from this process's): resolving a read of it lists it, or fails with PATH_NOT_FOUND."""
    try:
        spark.read.format("binaryFile").load(output_url).schema
    except PySparkException as e:
        if error_condition(e) == "PATH_NOT_FOUND":
            return False
        raise
    return True


def _row_count(spark: SparkSession, output_url: str) -> int:
    return spark.read.format("petastorm").load(output_url).count()


def _rows_there(spark: SparkSession, output_url: str) -> int:
    """The rows of an existing `output_url`: 0 for a folder without data files (nothing to infer a schema from)."""
    try:
        return _row_count(spark, output_url)
    except PySparkException as e:
        if error_condition(e) == "UNABLE_TO_INFER_SCHEMA":
            return 0
        raise


def ingest_images(spark: SparkSession, labels_csv: str, images_dir: str, output_url: str,
                  size: Optional[Tuple[int, int]] = None, codec: str = "ndarray",
                  mode: str = "errorifexists") -> IngestResult:
    """Writes `output_url` with columns `filename`, `label` and `image` (uint8 (H, W, 3)) from `labels_csv`.

    The CSV holds `filename,label` rows (the header line is optional); file names are relative to `images_dir`.
    Images are read through Hadoop file systems and decoded (PNG, JPEG, BMP, GIF) on the executors, resized to
    `size` = (height, width) if given, and stored with `codec` ('ndarray' or 'png'). Labels as `read_labels` gives
    them. Unreadable images are counted in the result and left out, unless the session sets
    `spark.petastorm.image.onError=fail`, which fails the job instead. In the default `mode` an existing
    `output_url` raises `OutputExistsError` (a `FileExistsError`) before anything is read; `ignore` leaves it as it
    is (0 rows written, nothing read) and `append` adds to it (the result counts the added rows). Works on classic
    and Spark Connect sessions (the server needs the petastorm jar).
    """
    # Spark Connect's writer knows "error" but not its synonyms "errorifexists" and "default".
    mode = mode.strip().lower()
    mode = {"errorifexists": "error", "default": "error"}.get(mode, mode)
    exists = mode in ("error", "ignore", "append") and _output_exists(spark, output_url)
    # Checked first: Spark's own check comes only after the shuffle before the write has run, reading the images.
    if exists and mode == "error":
        raise OutputExistsError(f"ingest: output {output_url} already exists; use mode 'overwrite' to replace it or "
                                f"'append' to add to it", output_url)
    if exists and mode == "ignore":  # Spark would not write
        return IngestResult(rows=0, failed_images=0, output=output_url)
    existing = _rows_there(spark, output_url) if exists and mode == "append" else 0
    labels = read_labels(spark, labels_csv)
    partitions = max(_default_parallelism(spark), labels.count() // _ROWS_PER_PARTITION)
    images = labels.repartition(partitions).withColumn("image", _image_column(images_dir, size))
    before = image_failure_count(spark)
    (images.where(F.col("image").isNotNull())
     .write.format("petastorm").mode(mode).option("codec.image", codec).save(output_url))
    failed = image_failure_count(spark) - before
    return IngestResult(rows=_row_count(spark, output_url) - existing, failed_images=failed, output=output_url)
