"""Building row-group indexes with Spark and reading them back from ``_common_metadata``.

Two keys are written side by side: ``petastorm.rowgroups_index.json.v1`` (JSON, read first) and the original
format's ``dataset-toolkit.rowgroups_index.v1`` (a pickled ``{index name: indexer}``, read with the allow-list
unpickler when no JSON form exists).
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, NamedTuple, Sequence

from petastorm.errors import PetastormMetadataError
from petastorm.etl import RowGroupIndexerBase
from petastorm.etl.dataset_metadata import (add_to_dataset_metadata, get_schema, legacy_dumps, load_json_or_pickle,
                                            load_row_groups)
from petastorm.etl.legacy import depickle_legacy_package_name_compatible  # noqa: F401 (re-export)
from petastorm.etl.rowgroup_indexers import indexer_from_json_dict
from petastorm.fs_utils import FilesystemResolver  # noqa: F401 (re-export)
from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.reader_impl.row_group_io import ParquetFileCache, decode_rows, read_piece_columns
from petastorm.unischema import Unischema

logger = logging.getLogger(__name__)

ROWGROUPS_INDEX_KEY = b"dataset-toolkit.rowgroups_index.v1"
ROWGROUPS_INDEX_JSON_KEY = b"petastorm.rowgroups_index.json.v1"

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


class _NoRowGroupIndexError(PetastormMetadataError, ValueError):
    """The dataset has no row-group index: a ValueError as in the original, and a PetastormMetadataError."""


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
    index_dict = {indexer.index_name: indexer for indexer in built}
    add_to_dataset_metadata(store, {
        ROWGROUPS_INDEX_JSON_KEY: json.dumps(
            {"indexes": [indexer.to_json_dict() for indexer in built]}).encode("utf-8"),
        ROWGROUPS_INDEX_KEY: legacy_dumps(index_dict),
    })
    logger.info("Built row-group indexes %s over %d row groups in %.1f s", names, len(pieces), time.time() - start)


def get_row_group_indexes(dataset: ParquetStore | str) -> dict[str, RowGroupIndexerBase]:
    """The row-group indexes stored in the dataset, as ``{index name: indexer}``.

    :raises PetastormMetadataError: the dataset has no index (then also a ``ValueError``, as in the original), or it
        cannot be loaded.
    """
    store = dataset if isinstance(dataset, ParquetStore) else ParquetStore.open(dataset)

    def from_json(text: str) -> dict[str, RowGroupIndexerBase]:
        return {entry["index_name"]: indexer_from_json_dict(entry) for entry in json.loads(text)["indexes"]}

    index_dict = load_json_or_pickle(store, ROWGROUPS_INDEX_JSON_KEY, from_json, ROWGROUPS_INDEX_KEY,
                                     "row-group index", f"{store.root} has no row-group index; build one with "
                                     "petastorm.etl.rowgroup_indexing.build_rowgroup_index", _NoRowGroupIndexError)
    if not isinstance(index_dict, dict) or \
            not all(isinstance(indexer, RowGroupIndexerBase) for indexer in index_dict.values()):
        raise PetastormMetadataError(f"{ROWGROUPS_INDEX_KEY.decode()} of {store.root} is not a dict of indexers")
    return index_dict
