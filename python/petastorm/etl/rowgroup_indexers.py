"""Row-group indexers: which row groups (piece indexes) hold a value, or a non-null value, of a column.

The pickled state (``_index_name``, ``_column_name``, ``_index_data``) is the one of the original format, so
datasets indexed here open in readers of that format. Index keys are kept as plain Python values (``int``,
``str``, ``bytes``), which compare and hash equal to the numpy scalars the rows decode to.
"""
from __future__ import annotations

import base64
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

from petastorm.etl import RowGroupIndexerBase

_SCALAR_TYPES = (np.integer, np.str_, np.bytes_, int, str, bytes)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _column_values(decoded_rows: Iterable[dict], column_name: str) -> list[Any]:
    values = [row[column_name] for row in decoded_rows]
    if not values:
        raise ValueError(f"Cannot build an index on column '{column_name}' from an empty row group")
    return values


def encode_index_value(value: Any) -> Any:
    """An index key as JSON: ints and strings as is, bytes as ``{"bytes": base64}``."""
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (bool, int, str, float)):
        return value
    raise TypeError(f"Index value {value!r} of type {type(value).__name__} has no JSON form")


def decode_index_value(value: Any) -> Any:
    """Inverse of :func:`encode_index_value`."""
    if isinstance(value, dict):
        return base64.b64decode(value["bytes"])
    return value


class _ColumnIndexer(RowGroupIndexerBase):
    """What both indexers share: an index name, one column, and merging only with the same kind and column."""

    _index_name: str
    _column_name: str

    def _check_mergeable(self, other: Any) -> None:
        if not isinstance(other, type(self)):
            raise TypeError(f"Cannot merge a {type(self).__name__} with a {type(other).__name__}")
        if self._column_name != other._column_name:
            raise ValueError(f"Cannot merge indexes of different fields: '{self._column_name}' and "
                             f"'{other._column_name}'")

    @property
    def index_name(self) -> str:
        return self._index_name

    @property
    def column_names(self) -> list[str]:
        return [self._column_name]


class SingleFieldIndexer(_ColumnIndexer):
    """Indexes the values of one field: integer or string scalars, or arrays of them."""

    def __init__(self, index_name: str, index_field: str):
        self._index_name = index_name
        self._column_name = index_field
        self._index_data: defaultdict[Any, set[int]] = defaultdict(set)

    def __add__(self, other: "SingleFieldIndexer") -> "SingleFieldIndexer":
        self._check_mergeable(other)
        for value, pieces in other._index_data.items():
            self._index_data[value].update(pieces)
        return self

    @property
    def indexed_values(self) -> list[Any]:
        return list(self._index_data.keys())

    def get_row_group_indexes(self, value_key: Any = None) -> set[int]:
        return set(self._index_data.get(_plain(value_key), ()))

    def build_index(self, decoded_rows: Iterable[dict], piece_index: int) -> dict[Any, set[int]]:
        for value in _column_values(decoded_rows, self._column_name):
            if value is None:
                continue
            if isinstance(value, np.ndarray) and value.ndim <= 1:
                items = value.tolist()
            elif isinstance(value, _SCALAR_TYPES):
                items = [_plain(value)]
            else:
                raise ValueError(f"Cannot index column '{self._column_name}': expected integer or string values or "
                                 f"1-d arrays of them, got {type(value).__name__}")
            for item in items:
                self._index_data[item].add(int(piece_index))
        return self._index_data

    def to_json_dict(self) -> dict:
        """The JSON form of this index (see docs/format.md)."""
        return {"type": "SingleFieldIndexer", "index_name": self._index_name, "column": self._column_name,
                "values": [[encode_index_value(value), sorted(pieces)]
                           for value, pieces in self._index_data.items()]}

    @classmethod
    def from_json_dict(cls, data: dict) -> "SingleFieldIndexer":
        indexer = cls(data["index_name"], data["column"])
        for value, pieces in data["values"]:
            indexer._index_data[decode_index_value(value)] = set(pieces)
        return indexer


class FieldNotNullIndexer(_ColumnIndexer):
    """Indexes the row groups where a field is not null in at least one row."""

    def __init__(self, index_name: str, index_field: str):
        self._index_name = index_name
        self._column_name = index_field
        self._index_data: set[int] = set()

    def __add__(self, other: "FieldNotNullIndexer") -> "FieldNotNullIndexer":
        self._check_mergeable(other)
        self._index_data.update(other._index_data)
        return self

    @property
    def indexed_values(self) -> list[Any]:
        return ["Field is Not Null"]

    def get_row_group_indexes(self, value_key: Any = None) -> set[int]:
        return set(self._index_data)

    def build_index(self, decoded_rows: Iterable[dict], piece_index: int) -> set[int]:
        if any(value is not None for value in _column_values(decoded_rows, self._column_name)):
            self._index_data.add(int(piece_index))
        return self._index_data

    def to_json_dict(self) -> dict:
        """The JSON form of this index (see docs/format.md)."""
        return {"type": "FieldNotNullIndexer", "index_name": self._index_name, "column": self._column_name,
                "row_groups": sorted(self._index_data)}

    @classmethod
    def from_json_dict(cls, data: dict) -> "FieldNotNullIndexer":
        indexer = cls(data["index_name"], data["column"])
        indexer._index_data = set(data["row_groups"])
        return indexer


INDEXER_CLASSES = {cls.__name__: cls for cls in (SingleFieldIndexer, FieldNotNullIndexer)}


def indexer_from_json_dict(data: dict) -> RowGroupIndexerBase:
    """Rebuilds an indexer from its JSON form."""
    try:
        cls = INDEXER_CLASSES[data["type"]]
    except KeyError:
        raise ValueError(f"Unknown row-group indexer type {data.get('type')!r}; expected one of "
                         f"{sorted(INDEXER_CLASSES)}") from None
    return cls.from_json_dict(data)
