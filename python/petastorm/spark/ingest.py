"""Images plus a label CSV into a Petastorm dataset, in one distributed Spark job (decoding on the JVM)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from py4j.java_gateway import is_instance_of
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession


class OutputExistsError(FileExistsError):
    """The output of an ingest exists already and the mode (`errorifexists`, the default) does not replace it."""

    def __init__(self, message: str, output: str):
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class IngestResult:
    """Rows written, images that could not be read (left out), and where."""

    rows: int
    failed_images: int
    output: str


def ingest_images(spark: SparkSession, labels_csv: str, images_dir: str, output_url: str,
                  size: Optional[Tuple[int, int]] = None, codec: str = "ndarray",
                  mode: str = "errorifexists") -> IngestResult:
    """Writes `output_url` with columns `filename`, `label` and `image` (uint8 (H, W, 3)) from `labels_csv`.

    The CSV holds `filename,label` rows (the header line is optional); file names are relative to `images_dir`.
    Images are read through Hadoop file systems and decoded (PNG, JPEG, BMP, GIF) on the executors, resized to
    `size` = (height, width) if given, and stored with `codec` ('ndarray' or 'png'). When every label is an integer,
    `label` is an integer column; otherwise `label` keeps the text and `label_index` (int32) is the label's position
    in the sorted distinct labels. Unreadable images are counted in the result and left out, unless the session sets
    `spark.petastorm.image.onError=fail`, which fails the job instead. In the default `mode` an existing
    `output_url` raises `OutputExistsError` (a `FileExistsError`) before any image is read.
    """
    height, width = size if size else (0, 0)
    try:
        result = spark._jvm.org.petastorm.spark.ingest.ImageIngest.run(
            spark._jsparkSession, labels_csv, images_dir, output_url, int(height), int(width), codec, mode)
    except Py4JJavaError as e:
        if not is_instance_of(spark.sparkContext._gateway, e.java_exception,
                              "org.apache.hadoop.fs.FileAlreadyExistsException"):
            raise
        raise OutputExistsError(e.java_exception.getMessage(), output_url) from None
    return IngestResult(rows=result.rows(), failed_images=result.failedImages(), output=result.output())
