"""The row-group indexes of a dataset's ``_common_metadata``: their two keys, reading them, and storing built ones.

Two keys are written side by side: ``petastorm.rowgroups_index.json.v1`` (JSON, read first) and the original
format's ``dataset-toolkit.rowgroups_index.v1`` (a pickled ``{index name: indexer}``, read with the allow-list
unpickler when no JSON form exists). Building indexes (with Spark) is :mod:`petastorm.etl.rowgroup_indexing`.
"""
from __future__ import annotations

import json
from typing import Sequence

from petastorm.errors import PetastormMetadataError
from petastorm.etl import RowGroupIndexerBase
from petastorm.etl.dataset_metadata import add_to_dataset_metadata, legacy_dumps, load_json_or_pickle
from petastorm.etl.rowgroup_indexers import indexer_from_json_dict
from petastorm.parquet_store import ParquetStore

ROWGROUPS_INDEX_KEY = b"dataset-toolkit.rowgroups_index.v1"
ROWGROUPS_INDEX_JSON_KEY = b"petastorm.rowgroups_index.json.v1"


class _NoRowGroupIndexError(PetastormMetadataError, ValueError):
    """The dataset has no row-group index: a ValueError as in the original, and a PetastormMetadataError."""


def store_row_group_indexes(store: ParquetStore, indexers: Sequence[RowGroupIndexerBase]) -> None:
    """Writes built indexers under both keys of the dataset's ``_common_metadata``."""
    add_to_dataset_metadata(store, {
        ROWGROUPS_INDEX_JSON_KEY: json.dumps(
            {"indexes": [indexer.to_json_dict() for indexer in indexers]}).encode("utf-8"),
        ROWGROUPS_INDEX_KEY: legacy_dumps({indexer.index_name: indexer for indexer in indexers}),
    })


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
