"""Turning one work item into reader output: decoded row namedtuples, or one namedtuple of numpy columns."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.predicates import PredicateBase
from petastorm.reader_impl.planning import WorkItem
from petastorm.reader_impl.row_group_io import decode_batch, decode_rows, read_row_group, row_drop_mask
from petastorm.transform import TransformSpec
from petastorm.unischema import Unischema


class _LoaderBase:
    """Reads the columns of one work item: drop partition, row shuffle, Arrow ``filters``."""

    def __init__(self, store: ParquetStore, pieces: Sequence[RowGroupPiece], stored_schema: Unischema,
                 read_schema: Unischema, output_schema: Unischema, transform_spec: TransformSpec | None,
                 predicate: PredicateBase | None, filters: Any = None, shuffle_rows: bool = False,
                 seed: int | None = None):
        self._store = store
        self._pieces = pieces
        self._read_schema = read_schema
        self._output_schema = output_schema
        self._transform_spec = transform_spec
        self._predicate = predicate
        self._filter = pq.filters_to_expression(filters) if filters else None
        self._shuffle_rows = shuffle_rows
        self._rng = np.random.default_rng(seed)
        extra = []
        if predicate is not None:
            fields = set(predicate.get_fields())
            if not fields:
                raise ValueError("The predicate's get_fields() must name at least one field")
            unknown = fields - set(stored_schema.fields)
            if unknown:
                raise ValueError(f"Predicate fields {sorted(unknown)} are not in the dataset schema "
                                 f"{list(stored_schema.fields)}")
            extra = sorted(fields - set(read_schema.fields))
        self._decode_schema = Unischema(read_schema._name, list(read_schema.fields.values()) +
                                        [stored_schema.fields[name] for name in extra])
        self._extra = set(extra)

    def _read_table(self, item: WorkItem) -> pa.Table:
        table = read_row_group(self._store, self._pieces[item.piece_index], list(self._decode_schema.fields))
        if self._filter is not None:
            table = table.filter(self._filter)
        if item.num_drop_partitions > 1:
            table = table.filter(pa.array(row_drop_mask(table.num_rows, item.drop_partition,
                                                        item.num_drop_partitions)))
        if self._shuffle_rows:
            table = table.take(pa.array(self._rng.permutation(table.num_rows)))
        return table

    def _check_columns(self, names: Any) -> None:
        missing = [name for name in self._output_schema.fields if name not in names]
        if missing:
            raise ValueError(f"The transformed output lacks fields {missing} of the reader schema "
                             f"{list(self._output_schema.fields)}")


class RowLoader(_LoaderBase):
    """``make_reader`` output: decode each row, apply the predicate, then the transform."""

    def __call__(self, item: WorkItem) -> list[tuple]:
        rows = decode_rows(self._read_table(item), self._decode_schema)
        if self._predicate is not None:
            rows = [row for row in rows if self._predicate.do_include(row)]
        result = []
        for row in rows:
            for name in self._extra:
                del row[name]
            if self._transform_spec is not None and self._transform_spec.func is not None:
                row = self._transform_spec.func(row)
            self._check_columns(row)
            result.append(self._output_schema.make_namedtuple(
                **{name: row[name] for name in self._output_schema.fields}))
        return result


def _series_to_numpy(series: pd.Series) -> np.ndarray:
    values = series.to_numpy()
    if values.dtype == object and len(values) and all(isinstance(v, np.ndarray) for v in values):
        try:
            return np.stack(list(values))
        except ValueError:
            return values
    if values.dtype == object and len(values) and all(isinstance(v, str) for v in values):
        return values.astype(np.str_)
    return values


class BatchLoader(_LoaderBase):
    """``make_batch_reader`` output: one namedtuple of numpy columns per row group.

    The predicate gets a pandas DataFrame of its fields and returns a boolean mask; the transform gets a pandas
    DataFrame (multi-dimensional cells as one ndarray per row) and returns one.
    """

    def __call__(self, item: WorkItem) -> list[tuple]:
        table = self._read_table(item)
        if self._predicate is not None and table.num_rows:
            frame = table.select(sorted(self._predicate.get_fields())).to_pandas()
            mask = np.asarray(self._predicate.do_include(frame), dtype=bool)
            table = table.filter(pa.array(mask))
        if table.num_rows == 0:
            return []
        columns = decode_batch(table.drop_columns(list(self._extra)), self._decode_schema)
        if self._transform_spec is not None:
            columns = self._transform(columns)
        self._check_columns(columns)
        return [self._output_schema.make_namedtuple(**{name: columns[name] for name in self._output_schema.fields})]

    def _transform(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        frame = pd.DataFrame({name: list(values) if values.ndim > 1 else values for name, values in columns.items()})
        if self._transform_spec.func is not None:
            frame = self._transform_spec.func(frame)
        return {name: _series_to_numpy(frame[name]) for name in frame.columns
                if name not in self._transform_spec.removed_fields}

