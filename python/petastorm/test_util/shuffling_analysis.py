"""Measuring how well reader shuffling decorrelates row order (the original's
``petastorm.test_util.shuffling_analysis``).

:func:`generate_shuffle_analysis_dataset` writes a dataset of consecutive ids; :func:`compute_correlation_distribution`
reads a dataset many times with shuffling and reports how strongly the shuffled order of ids still correlates with
the unshuffled order.
"""
from __future__ import annotations, division

from typing import Any

import numpy as np
from pyspark.sql.types import LongType

from petastorm import make_reader
from petastorm.codecs import ScalarCodec
from petastorm.etl.dataset_metadata import materialize_dataset
# Importable from here as in the original (its dataset was built with them).
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row  # noqa: F401

__all__ = ["generate_shuffle_analysis_dataset", "compute_correlation_distribution"]


_ShuffleAnalysisSchema = Unischema("_ShuffleAnalysisSchema",
                                   [UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False)])


def generate_shuffle_analysis_dataset(spark: Any, output_dataset_url: str, num_rows: int = 1000,
                                      row_group_size: int = 100) -> None:
    """Writes a Petastorm dataset with one int64 field ``id`` holding 0 .. ``num_rows - 1`` in order.

    :param spark: a SparkSession.
    :param output_dataset_url: where to write it (must not exist yet).
    :param num_rows: the number of rows.
    :param row_group_size: about how many rows each row group (each file) holds: the rows are written as
        ``max(1, num_rows // row_group_size)`` files of one row group each, uncompressed.
    """
    with materialize_dataset(spark, output_dataset_url, _ShuffleAnalysisSchema):
        # repartitionByRange: exactly that many files, ids in order across them (sort + coalesce let adaptive
        # execution merge the sort's partitions into one file first, which left nothing to shuffle).
        spark.range(num_rows) \
            .repartitionByRange(max(1, int(num_rows / row_group_size)), "id") \
            .sortWithinPartitions("id") \
            .write.option("compression", "none") \
            .parquet(output_dataset_url)


def _ids(reader: Any, id_column: Any) -> list:
    if isinstance(id_column, str):
        return [getattr(row, id_column) for row in reader]
    return [row[id_column] for row in reader]


def compute_correlation_distribution(dataset_url: str, id_column: Any, shuffle_row_drop_partitions: int,
                                     num_corr_samples: int = 100) -> tuple[float, float]:
    """(mean, standard deviation) of the absolute correlation between the unshuffled order of ids and the order
    a shuffling reader (``shuffle_row_groups=True`` with ``shuffle_row_drop_partitions``) yields, over
    ``num_corr_samples`` reads. Values near 0 mean well shuffled, near 1 hardly shuffled.

    :param dataset_url: the dataset (e.g. one written by :func:`generate_shuffle_analysis_dataset`).
    :param id_column: the field holding a numeric id per row: its name, or its position in the row.
    :param shuffle_row_drop_partitions: passed to ``make_reader``.
    :param num_corr_samples: how many shuffled reads to correlate.
    """
    with make_reader(dataset_url, shuffle_row_groups=False, reader_pool_type="dummy") as reader:
        unshuffled = _ids(reader, id_column)
    correlations = []
    for _ in range(num_corr_samples):
        with make_reader(dataset_url, shuffle_row_groups=True,
                         shuffle_row_drop_partitions=shuffle_row_drop_partitions) as reader:
            shuffled = _ids(reader, id_column)
        correlations.append(abs(np.corrcoef(unshuffled, shuffled)[0, 1]))
    return float(np.mean(correlations)), float(np.std(correlations))
