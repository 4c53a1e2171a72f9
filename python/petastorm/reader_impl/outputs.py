"""Turning a unit's decoded work items into what a reader yields: rows, n-grams, batches, or column chunks (for
adapters that batch in columns). Every order comes from the plan's seed (:mod:`~petastorm.reader_impl.shuffling`).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from petastorm.column_decode import concat_columns, object_array
from petastorm.reader_impl.loaders import ItemResult
from petastorm.reader_impl.shuffling import UNITS, permutation


class OutputAssembly:
    """The assembling half of :class:`~petastorm.reader_impl.engine.ReaderCore` (which sets ``plan``,
    ``_row_type``, ``_row_names``, ``_batched_output`` and, for n-grams, ``_ngram_steps``)."""

    def _rows_of(self, result: ItemResult) -> list:
        """The rows of a result that is not plain decoded columns: a transform's row tuples, or n-grams."""
        if result.rows is not None:
            return list(map(self._row_type._make, result.rows))
        return self._ngrams_of(result)

    def _ngrams_of(self, result: ItemResult) -> list:
        starts = result.ngram_starts.tolist()
        if not starts:
            return []
        columns = result.columns
        per_step = []
        for offset, (key, step_schema) in enumerate(self._ngram_steps):
            names = list(step_schema.fields)
            row_type = step_schema._get_namedtuple()
            lists = [list(columns[name]) for name in names]
            per_step.append((key, offset, list(map(row_type._make, zip(*lists))) if names else None, row_type))
        ngrams = []
        for start in starts:
            ngrams.append({key: (rows[start + offset] if rows is not None else row_type())
                           for key, offset, rows, row_type in per_step})
        return ngrams

    def _window_order(self, epoch: int, unit: int, count: int) -> np.ndarray:
        return permutation(count, self.plan.seed, epoch, UNITS, unit)

    def _unit_rows(self, results: list, epoch: int, unit: int) -> Iterator:
        """The rows of a unit in emission order, as an iterator: decoded columns become rows one at a time as the
        consumer takes them (a unit never holds thousands of row tuples at once, which would push the interpreter
        into full garbage collections of every object of the process); transform rows and n-grams come as built."""
        if all(r.rows is None and r.ngram_starts is None for r in results):
            return self._column_rows(results, epoch, unit)
        rows = [row for result in results for row in self._rows_of(result)]
        if len(results) > 1 or (self.plan.shuffle_buffer_size and len(rows) > 1):
            rows = [rows[i] for i in self._window_order(epoch, unit, len(rows)).tolist()]
        return iter(rows)

    def _column_rows(self, results: list, epoch: int, unit: int) -> Iterator:
        parts = [r for r in results if r.num_rows]
        columns: list[list] = [[] for _ in self._row_names]
        for part in parts:
            for column, name in zip(columns, self._row_names):
                column.extend(part.columns[name])
        positions = self._emission_order(parts, len(results), epoch, unit)
        if positions is not None:
            at = positions.tolist()
            columns = [map(column.__getitem__, at) for column in columns]
        return map(self._row_type._make, zip(*columns))

    def _emission_order(self, parts: list, num_results: int, epoch: int, unit: int) -> np.ndarray | None:
        """Where each row a unit emits sits in the concatenation of ``parts`` (its results that have rows): each
        part's own order (``shuffle_rows``), then the unit's window order; None when that is the concatenation
        order."""
        sizes = [part.num_rows for part in parts]
        total = sum(sizes)
        window = num_results > 1 or bool(self.plan.shuffle_buffer_size and total > 1)
        if not window and all(part.order is None for part in parts):
            return None
        offsets = np.cumsum([0] + sizes[:-1])
        positions = np.concatenate([offset + (part.order if part.order is not None else np.arange(size))
                                    for part, offset, size in zip(parts, offsets, sizes)]) if parts \
            else np.empty(0, np.int64)
        return positions[self._window_order(epoch, unit, total)] if window else positions

    def _part_columns(self, result: ItemResult) -> dict:
        """A row reader's work item output as columns, in the order the item produced them."""
        if result.rows is not None:
            return {name: _stack([row[i] for row in result.rows]) for i, name in enumerate(self._row_names)}
        return {name: result.columns[name] for name in self._row_names}

    def _unit_columns(self, results: list, epoch: int, unit: int) -> tuple[dict, int]:
        """The rows of :meth:`_unit_rows` as columns, and their count."""
        parts = [r for r in results if r.num_rows]
        if not parts:
            return {}, 0
        columns = [self._part_columns(part) for part in parts]
        merged = {name: concat_columns([c[name] for c in columns]) for name in columns[0]}
        positions = self._emission_order(parts, len(results), epoch, unit)
        if positions is not None:
            merged = {name: values[positions] for name, values in merged.items()}
        return merged, sum(part.num_rows for part in parts)

    def _unit_batches(self, results: list, epoch: int, unit: int) -> list:
        parts = [r for r in results if r.num_rows]
        if not parts:
            return []
        if not self.plan.shuffle_buffer_size:
            return [self._row_type(**r.columns) for r in parts]
        total = sum(r.num_rows for r in parts)
        order = self._window_order(epoch, unit, total)
        merged = {}
        for name in self._row_names:
            merged[name] = concat_columns([r.columns[name] for r in parts])[order]
        size = max(1, -(-total // len(parts)))
        return [self._row_type(**{name: values[i:i + size] for name, values in merged.items()})
                for i in range(0, total, size)]

    @staticmethod
    def _skip_batches(batches: list, skip: int) -> Iterator[tuple[Any, int]]:
        for batch in batches:
            rows = len(batch[0]) if len(batch) else 0
            if skip >= rows:
                skip -= rows
                continue
            if skip:
                batch = type(batch)(*[values[skip:] for values in batch])
                rows -= skip
                skip = 0
            yield batch, rows


def _stack(values: list) -> np.ndarray:
    """Row values (a transform function's output) as one column: stacked when they stack, else objects."""
    if any(v is None for v in values):
        return object_array(values)
    try:
        return np.stack([np.asarray(v) for v in values])
    except ValueError:
        return object_array(values)
