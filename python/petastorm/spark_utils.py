"""Spark helpers kept from the original ``petastorm.spark_utils``: a Petastorm dataset as an RDD of decoded rows.

The fast way to bring a Petastorm dataset into Spark is the ``petastorm`` data source of the bundled jar. It
gives a DataFrame whose tensor and image fields are ``TensorUDT`` columns, decoded on the JVM with no Python
worker involved::

    df = spark.read.format("petastorm").load("file:///tmp/hello_world_dataset")
    df.select("id", "image1").show()

:func:`dataset_as_rdd` is the original's API: every row is decoded in Python workers into a namedtuple of numpy
values (the same values ``make_reader`` gives). Use it when Spark code needs those Python objects.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Iterable, Iterator, Sequence, Union

from petastorm.etl.dataset_metadata import get_schema, get_schema_from_dataset_url, load_row_groups
from petastorm.fs_utils import FilesystemResolver
from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.reader_impl.decoding import columns_to_read, decode_rows
from petastorm.reader_impl.row_group_io import ParquetFileCache, read_piece_columns
from petastorm.spark.session import require_classic
from petastorm.unischema import Unischema, UnischemaField

__all__ = ["FilesystemResolver", "dataset_as_rdd", "get_schema_from_dataset_url"]


def _rows_of_pieces(store: ParquetStore, schema: Unischema, pieces: Iterable[RowGroupPiece]) -> Iterator[tuple]:
    """Reads and decodes the given row groups (on a Spark executor); yields one namedtuple of ``schema`` per row."""
    files = ParquetFileCache()
    columns = columns_to_read(schema)
    try:
        for piece in pieces:
            table = read_piece_columns(store, piece, columns, files, schema)
            for row in decode_rows(table, schema):
                yield schema.make_namedtuple(**row)
    finally:
        files.close_thread_files()


def dataset_as_rdd(dataset_url: str, spark_session: Any,
                   schema_fields: Sequence[Union[UnischemaField, str]] | None = None,
                   hdfs_driver: str = "libhdfs3") -> Any:
    """An RDD of the rows of the Petastorm dataset at ``dataset_url``, each a namedtuple of decoded values.

    Every row group of the dataset becomes one Spark partition, in the dataset's row-group order; executors read
    and decode it with the reader's own code. For a DataFrame instead, prefer
    ``spark_session.read.format("petastorm").load(dataset_url)`` (decoded on the JVM, tensors as ``TensorUDT``).

    :param dataset_url: URL of a Petastorm dataset (one with a stored Unischema), e.g. ``file:///tmp/ds`` or
        ``hdfs:///path/to/ds``.
    :param spark_session: the classic ``pyspark.sql.SparkSession`` whose context runs the RDD (a Spark Connect
        session has no RDDs: ``SparkConnectUnsupportedError`` names the alternatives).
    :param schema_fields: ``UnischemaField`` objects and/or regular expressions selecting the fields to read
        (namedtuples then hold those fields, in schema order); None reads every field.
    :param hdfs_driver: accepted for compatibility (pyarrow has a single HDFS driver).
    :return: a ``pyspark.RDD`` of namedtuples.
    """
    require_classic(spark_session, "dataset_as_rdd",
                    'spark.read.format("petastorm").load(dataset_url) gives the dataset as a DataFrame (tensors as '
                    "TensorUDT columns); or make_reader(dataset_url) reads it in this process")
    store = ParquetStore.open(dataset_url, hdfs_driver)
    schema = get_schema(store)
    if schema_fields is not None:
        schema = schema.create_schema_view(list(schema_fields))
    pieces = load_row_groups(store)
    return (spark_session.sparkContext
            .parallelize(pieces, max(1, len(pieces)))
            .mapPartitions(partial(_rows_of_pieces, store, schema)))
