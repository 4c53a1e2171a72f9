"""``filters`` pushed down: Hive-partition pruning and row-group statistics (through ``pyarrow.dataset``), then the
same expression evaluated on the rows of every row group read."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from petastorm.parquet_store import ParquetStore, RowGroupPiece


@dataclass
class FilterPlan:
    """The filter expression, the columns it reads, the Hive partition types it compares with, and the piece
    indexes whose partition values and row-group statistics may match it."""

    expression: Any
    columns: list[str]
    partition_types: dict
    allowed_indexes: list[int]


def _dnf_columns(filters: Any) -> list[str] | None:
    if isinstance(filters, list) and filters:
        groups = filters if isinstance(filters[0], list) else [filters]
        names = []
        for group in groups:
            for term in group:
                if not isinstance(term, tuple) or len(term) != 3:
                    raise ValueError(f"filters must be a list of (column, op, value) tuples or a list of such lists, "
                                     f"got the term {term!r}")
                if term[0] not in names:
                    names.append(term[0])
        return names
    return None


def _string_compared_columns(filters: Any) -> set[str]:
    if not isinstance(filters, list) or not filters:
        return set()
    groups = filters if isinstance(filters[0], list) else [filters]
    names = set()
    for group in groups:
        for name, _, value in group:
            values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
            if values and all(isinstance(v, str) for v in values):
                names.add(name)
    return names


def to_expression(filters: Any) -> ds.Expression:
    """A ``pyarrow.dataset.Expression`` from DNF filters (as ``pyarrow.parquet`` accepts) or an expression."""
    if isinstance(filters, ds.Expression):
        return filters
    return pq.filters_to_expression(filters)


def plan_filters(store: ParquetStore, pieces: Sequence[RowGroupPiece], filters: Any,
                 column_names: Sequence[str]) -> FilterPlan:
    """Prunes ``pieces`` with ``filters``: files whose partition values cannot match and row groups whose
    statistics cannot match are left out."""
    expression = to_expression(filters)
    columns = _dnf_columns(filters)
    if columns is None:  # an Expression: find the names it mentions
        text = str(expression)
        columns = [name for name in column_names if re.search(r"\b" + re.escape(name) + r"\b", text)]
    files = [store.full_path(path) for path in sorted({piece.path for piece in pieces})]
    # Partition columns typed as the reader types them (ParquetStore.partition_types), except that one compared
    # with strings is a string.
    string_compared = _string_compared_columns(filters)
    partition_types = {name: pa.string() if name in string_compared else arrow_type
                       for name, arrow_type in store.partition_types.items()}
    partitioning = ds.partitioning(pa.schema([pa.field(name, partition_types[name])
                                              for name in store.partition_names]), flavor="hive") \
        if store.partition_names else None
    dataset = ds.dataset(files, filesystem=store.filesystem, format="parquet", partitioning=partitioning,
                         partition_base_dir=store.root)
    unknown = [name for name in columns if name not in dataset.schema.names]
    if unknown:
        raise ValueError(f"filters name columns {unknown} that are not in the dataset (columns: "
                         f"{dataset.schema.names})")
    prefix = store.root.rstrip("/") + "/"
    kept: set[tuple[str, int]] = set()
    for fragment in dataset.get_fragments(filter=expression):
        relative = fragment.path[len(prefix):] if fragment.path.startswith(prefix) else fragment.path
        for part in fragment.split_by_row_group(expression, schema=dataset.schema):
            for row_group in part.row_groups:
                kept.add((relative, row_group.id))
    allowed = [index for index, piece in enumerate(pieces) if (piece.path, piece.row_group) in kept]
    return FilterPlan(expression, columns, partition_types, allowed)


def filter_mask_indices(table: pa.Table, expression: Any) -> pa.Array | None:
    """Row positions of ``table`` that match ``expression`` (None: all rows match)."""
    indexed = table.append_column("__petastorm_row__", pa.array(range(table.num_rows), pa.int64()))
    kept = indexed.filter(expression).column("__petastorm_row__")
    if len(kept) == table.num_rows:
        return None
    return pc.cast(kept, pa.int64()).combine_chunks() if isinstance(kept, pa.ChunkedArray) else kept
