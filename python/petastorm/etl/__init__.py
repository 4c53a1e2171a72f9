"""Writing Petastorm datasets: metadata, row-group indexes, command-line tools."""
from __future__ import annotations

import abc
from typing import Any, Iterable


class RowGroupIndexerBase(abc.ABC):
    """Builds, per row group (piece index), an index from values of some columns to the row groups holding them."""

    @abc.abstractmethod
    def __add__(self, other: "RowGroupIndexerBase") -> "RowGroupIndexerBase":
        """Merges the index data of ``other`` (built on other row groups) into this indexer and returns it."""

    @property
    @abc.abstractmethod
    def index_name(self) -> str:
        """The name selectors use to find this index."""

    @property
    @abc.abstractmethod
    def column_names(self) -> list[str]:
        """The columns this indexer reads."""

    @property
    @abc.abstractmethod
    def indexed_values(self) -> list[Any]:
        """The values present in the index."""

    @abc.abstractmethod
    def get_row_group_indexes(self, value_key: Any = None) -> set[int]:
        """The piece indexes of the row groups holding ``value_key``."""

    @abc.abstractmethod
    def build_index(self, decoded_rows: Iterable[dict], piece_index: int) -> Any:
        """Adds the decoded rows of the row group ``piece_index`` to the index."""
