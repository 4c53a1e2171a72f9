"""Row-group selectors: choose the row groups to read from the dataset's row-group indexes."""
from __future__ import annotations

import abc
from typing import Any, Iterable, Sequence


class RowGroupSelectorBase(abc.ABC):
    """Selects piece indexes using one or more named row-group indexes."""

    @abc.abstractmethod
    def get_index_names(self) -> list[str]:
        """Names of the indexes this selector needs."""

    @abc.abstractmethod
    def select_row_groups(self, index_dict: dict[str, Any]) -> set[int]:
        """The selected piece indexes, given ``{index name: indexer}``."""


class SingleIndexSelector(RowGroupSelectorBase):
    """Selects the row groups holding any of ``values_list`` in the index ``index_name``."""

    def __init__(self, index_name: str, values_list: Iterable[Any]):
        self._index_name = index_name
        self._values_to_select = list(values_list)

    def get_index_names(self) -> list[str]:
        return [self._index_name]

    def select_row_groups(self, index_dict: dict[str, Any]) -> set[int]:
        indexer = index_dict[self._index_name]
        selected: set[int] = set()
        for value in self._values_to_select:
            selected |= set(indexer.get_row_group_indexes(value))
        return selected


class _CompositeSelector(RowGroupSelectorBase):
    def __init__(self, single_index_selectors: Sequence[RowGroupSelectorBase]):
        if not single_index_selectors:
            raise ValueError(f"{type(self).__name__} needs at least one selector")
        self._selectors = list(single_index_selectors)

    def get_index_names(self) -> list[str]:
        return [name for selector in self._selectors for name in selector.get_index_names()]

    def _selections(self, index_dict: dict[str, Any]) -> list[set[int]]:
        return [set(selector.select_row_groups(index_dict)) for selector in self._selectors]


class IntersectIndexSelector(_CompositeSelector):
    """Selects the row groups chosen by every one of the given selectors."""

    def select_row_groups(self, index_dict: dict[str, Any]) -> set[int]:
        return set.intersection(*self._selections(index_dict))


class UnionIndexSelector(_CompositeSelector):
    """Selects the row groups chosen by any of the given selectors."""

    def select_row_groups(self, index_dict: dict[str, Any]) -> set[int]:
        return set.union(*self._selections(index_dict))
