"""Building row-group indexes with Spark; their keys and reading them back are
:mod:`petastorm.etl.rowgroup_index_metadata` (re-exported here, the original's module path).
"""
from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple, Sequence

from petastorm.errors import PetastormMetadataError
from petastorm.etl import RowGroupIndexerBase
from petastorm.etl.dataset_metadata import get_schema, load_row_groups
from petastorm.etl.legacy import depickle_legacy_package_name_compatible  # noqa: F401 (re-export)
from petastorm.etl.rowgroup_index_metadata import (ROWGROUPS_INDEX_JSON_KEY, ROWGROUPS_INDEX_KEY,  # noqa: F401
                                                   _NoRowGroupIndexError, get_row_group_indexes,
                                                   store_row_group_indexes)
from petastorm.fs_utils import FilesystemResolver  # noqa: F401 (re-export)
from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.reader_impl.decoding import decode_rows
from petastorm.reader_impl.row_group_io import ParquetFileCache, read_piece_columns
from petastorm.spark.session import require_classic
from petastorm.unischema import Unischema

logger = logging.getLogger(__name__)

# The most Spark partitions (slices) the row groups are spread over when building indexes.
PARALLEL_SLICE_NUM = 2000


class PieceInfo(NamedTuple):
    """The original's description of one row group to index: piece index, file path, row group, Hive keys.

    Kept for code that builds these; :func:`build_rowgroup_index` ships ``RowGroupPiece`` objects instead.
    """

    piece_index: int
    path: str
    row_group: int
    partition_keys: Any


def _index_pieces(indexed_pieces: list[tuple[int, RowGroupPiece]], dataset_url: str, hdfs_driver: str,
                  storage_options: dict | None, indexers: list[RowGroupIndexerBase],
                  schema: Unischema) -> list[RowGroupIndexerBase]:
    """Runs on an executor: feeds the decoded rows of each piece to every indexer."""
    store = ParquetStore.open(dataset_url, hdfs_driver, storage_options)
    column_names = sorted({name for indexer in indexers for name in indexer.column_names})
    unknown = [name for name in column_names if name not in schema.fields]
    if unknown:
        raise ValueError(f"Indexed columns {unknown} are not fields of the dataset schema {list(schema.fields)}")
    files = ParquetFileCache()
    for piece_index, piece in indexed_pieces:
        rows = decode_rows(read_piece_columns(store, piece, column_names, files, schema), schema)
        for indexer in indexers:
            indexer.build_index(rows, piece_index)
    return indexers


def _combine(indexers1: list[RowGroupIndexerBase], indexers2: list[RowGroupIndexerBase]) -> list:
    return [first + second for first, second in zip(indexers1, indexers2)]


def build_rowgroup_index(dataset_url: str, spark_context: Any, indexers: Sequence[RowGroupIndexerBase],
                         hdfs_driver: str = "libhdfs3", storage_options: dict | None = None) -> None:
    """Builds the given indexes over every row group with Spark and stores them in ``_common_metadata``.

    :param indexers: objects implementing :class:`~petastorm.etl.RowGroupIndexerBase`, e.g.
        ``[SingleFieldIndexer('label_index', 'label')]``; index names must be unique.
    """
    require_classic(spark_context, "build_rowgroup_index",
                    "pass the SparkContext of a classic SparkSession (SparkSession.builder.master(...), without "
                    ".remote()); row-group indexes are built with RDDs, which Spark Connect does not have")
    indexers = list(indexers)
    names = [indexer.index_name for indexer in indexers]
    if not indexers or len(set(names)) != len(names):
        raise ValueError(f"Expected a non-empty list of indexers with unique index names, got {names}")
    store = ParquetStore.open(dataset_url, hdfs_driver, storage_options)
    pieces = list(enumerate(load_row_groups(store)))
    if not pieces:
        raise PetastormMetadataError(f"No row groups to index in {dataset_url}")
    schema = get_schema(store)

    start = time.time()
    built = (spark_context.parallelize(pieces, min(len(pieces), PARALLEL_SLICE_NUM))
             .mapPartitions(lambda part: [_index_pieces(list(part), dataset_url, hdfs_driver, storage_options,
                                                        indexers, schema)])
             .reduce(_combine))
    store_row_group_indexes(store, built)
    logger.info("Built row-group indexes %s over %d row groups in %.1f s", names, len(pieces), time.time() - start)
