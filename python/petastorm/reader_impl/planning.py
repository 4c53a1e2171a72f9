"""Deciding which row groups a reader reads, in which order, for how many epochs.

Independent of how row groups are read: the output is, for every epoch, a sequence of *units* (lists of
:class:`WorkItem`), each naming a piece index and a row range. Every order is a pure function of ``(seed, epoch)``
(drawn by :mod:`~petastorm.reader_impl.shuffling`), which is what makes iteration reproducible and resumable.

This module plans over the dataset's row-group listing: a piece index is a position in it and an epoch's order is a
permutation of all the selected row groups. That is the plan when the metadata lists the row groups (Petastorm
datasets), or when an option needs all of them up front (``filters``, a row-group selector, sharding, a shuffle
buffer). Plain Parquet is otherwise planned over files: :mod:`~petastorm.reader_impl.file_planning`.
"""
from __future__ import annotations

import math
import secrets
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from petastorm.errors import NoDataAvailableError
from petastorm.etl.rowgroup_index_metadata import get_row_group_indexes
from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.predicates import PredicateBase
from petastorm.reader_impl.shuffling import ROW_GROUPS, legacy_shard_permutation, permutation
from petastorm.selectors import RowGroupSelectorBase
from petastorm.unischema import Unischema

SHARD_MODES = ("row-group", "equal")
SHARD_REMAINDERS = ("drop", "pad")


@dataclass(frozen=True)
class WorkItem:
    """Rows ``[start, stop)`` (``stop=None``: to the end) of row group ``piece_index``, then drop-partition
    ``drop_partition`` of ``num_drop_partitions`` of those rows."""

    piece_index: int
    drop_partition: int = 0
    num_drop_partitions: int = 1
    start: int = 0
    stop: int | None = None


def new_base_seed() -> int:
    """A random seed for a reader created with ``seed=None`` (kept in its state so a resume repeats it)."""
    return secrets.randbits(62)


@dataclass(frozen=True)
class ReadPlan:
    """The selected piece indexes, the predicate left for the row-group reader, and the epoch/shuffle settings.

    ``segments`` are the ``(piece_index, start, stop)`` row ranges this reader (shard) reads each epoch. A plan over
    files is a :class:`~petastorm.reader_impl.file_planning.FileReadPlan`.
    """

    piece_indexes: tuple[int, ...]
    worker_predicate: PredicateBase | None
    num_drop_partitions: int = 1
    shuffle_row_groups: bool = True
    num_epochs: int | None = 1
    seed: int = 0
    segments: tuple[tuple[int, int, int | None], ...] = ()
    segment_rows: tuple[int | None, ...] = ()
    shuffle_buffer_size: int | None = None
    stats: dict = field(default_factory=dict, compare=False)

    @property
    def is_empty(self) -> bool:
        """True when no row group is left to read."""
        return not self.segments

    def diagnostics(self) -> dict:
        """The selection counters."""
        return dict(self.stats)

    def epoch_items(self, epoch: int) -> list[WorkItem]:
        """Every work item of ``epoch``; the order is drawn from ``(seed, epoch)`` when shuffling."""
        items = [WorkItem(index, part, self.num_drop_partitions, start, stop)
                 for index, start, stop in self.segments for part in range(self.num_drop_partitions)]
        if self.shuffle_row_groups and len(items) > 1:
            order = permutation(len(items), self.seed, epoch, ROW_GROUPS)
            items = [items[i] for i in order]
        return items

    def _item_rows(self, item: WorkItem, rows_of: dict) -> int:
        rows = rows_of.get((item.piece_index, item.start, item.stop))
        if rows is None:
            return 1
        return max(1, math.ceil(rows / item.num_drop_partitions))

    def epoch_units(self, epoch: int) -> Sequence[list[WorkItem]]:
        """The items of ``epoch`` grouped into units: one item each, or, with a shuffle buffer, consecutive items
        whose rows (by the row-group metadata) fit in ``shuffle_buffer_size`` (at least one item per unit)."""
        items = self.epoch_items(epoch)
        if not self.shuffle_buffer_size:
            return [[item] for item in items]
        rows_of = {seg: rows for seg, rows in zip(self.segments, self.segment_rows)}
        units: list[list[WorkItem]] = []
        current: list[WorkItem] = []
        current_rows = 0
        for item in items:
            rows = self._item_rows(item, rows_of)
            if current and current_rows + rows > self.shuffle_buffer_size:
                units.append(current)
                current, current_rows = [], 0
            current.append(item)
            current_rows += rows
        if current:
            units.append(current)
        return units

    def fingerprint(self) -> list:
        """What a saved iteration state must match to be resumed by this plan."""
        return [len(self.segments), hash(self.segments) & 0xFFFFFFFF, self.num_drop_partitions,
                bool(self.shuffle_row_groups), self.shuffle_buffer_size or 0]


def apply_predicate_on_partitions(pieces: Sequence[RowGroupPiece], schema: Unischema,
                                  predicate: PredicateBase | None,
                                  partition_names: Sequence[str]) -> tuple[list[int], PredicateBase | None]:
    """Resolves a predicate on the (single) Hive partition column from the paths; otherwise leaves it to the
    row-group reader."""
    all_indexes = list(range(len(pieces)))
    if predicate is None:
        return all_indexes, None
    if not isinstance(predicate, PredicateBase):
        raise ValueError(f"predicate must derive from PredicateBase, got {type(predicate).__name__}")
    fields = set(predicate.get_fields())
    if len(partition_names) != 1 or fields != set(partition_names):
        return all_indexes, predicate
    name = partition_names[0]
    field = schema.fields.get(name)
    selected = []
    for index, piece in enumerate(pieces):
        value = dict(piece.partition_keys)[name]
        if field is not None and field.numpy_dtype is not None:
            value = field.numpy_dtype(value)
        if predicate.do_include({name: value}):
            selected.append(index)
    return selected, None


def _apply_selector(store: ParquetStore, selector: RowGroupSelectorBase, indexes: list[int]) -> list[int]:
    if not isinstance(selector, RowGroupSelectorBase):
        raise ValueError(f"rowgroup_selector must derive from RowGroupSelectorBase, got {type(selector).__name__}")
    available = get_row_group_indexes(store)
    missing = set(selector.get_index_names()) - set(available)
    if missing:
        raise ValueError(f"Row-group indexes {sorted(missing)} are not in the dataset (it has {sorted(available)})")
    selected = selector.select_row_groups(available)
    return [index for index in indexes if index in selected]


def _check_shard_args(cur_shard: Any, shard_count: Any) -> None:
    if not isinstance(cur_shard, int) or not isinstance(shard_count, int) or shard_count < 1 \
            or not 0 <= cur_shard < shard_count:
        raise ValueError(f"cur_shard and shard_count must both be ints with 0 <= cur_shard < shard_count, got "
                         f"cur_shard={cur_shard!r}, shard_count={shard_count!r}")


def _apply_sharding(num_pieces: int, indexes: list[int], cur_shard: Any, shard_count: Any,
                    shard_seed: int | None = None) -> list[int]:
    """The original's sharding: the row groups at positions ``p % shard_count == cur_shard`` of the piece list
    (shuffled with ``shard_seed`` first when it is given)."""
    _check_shard_args(cur_shard, shard_count)
    if num_pieces < shard_count:
        raise NoDataAvailableError(f"The dataset has {num_pieces} row groups, fewer than shard_count={shard_count}: "
                                   f"some shards would be empty (use shard_mode='equal' to split row groups)")
    if shard_seed is None:
        mine = {index for index in range(num_pieces) if index % shard_count == cur_shard}
    else:
        order = legacy_shard_permutation(num_pieces, shard_seed)
        mine = {int(order[p]) for p in range(cur_shard, num_pieces, shard_count)}
    return [index for index in indexes if index in mine]


def equal_shard_segments(indexes: Sequence[int], rows: Sequence[int], cur_shard: int, shard_count: int,
                         remainder: str) -> list[tuple[int, int, int]]:
    """Row ranges of shard ``cur_shard``: the rows of ``indexes`` (in this order) laid end to end and cut into
    ``shard_count`` equal runs; the ``N % shard_count`` last rows are dropped (``'drop'``) or the last runs are
    completed with rows from the start (``'pad'``)."""
    _check_shard_args(cur_shard, shard_count)
    if remainder not in SHARD_REMAINDERS:
        raise ValueError(f"shard_remainder must be one of {SHARD_REMAINDERS}, got {remainder!r}")
    total = int(sum(rows))
    if total == 0:
        return []
    per = total // shard_count if remainder == "drop" else -(-total // shard_count)
    begin, end = cur_shard * per, (cur_shard + 1) * per
    ranges = [(begin, min(end, total))] if begin < total else []
    if end > total:  # pad: wrap around to the start
        wrap_begin = max(begin, total) - total
        ranges.append((wrap_begin, end - total))
    offsets = np.concatenate([[0], np.cumsum(rows)]).astype(int)
    segments = []
    for lo, hi in ranges:
        for i, index in enumerate(indexes):
            a, b = max(lo, offsets[i]), min(hi, offsets[i + 1])
            if a < b:
                segments.append((int(index), int(a - offsets[i]), int(b - offsets[i])))
    return segments


def check_plan_args(num_epochs: Any, shuffle_row_drop_partitions: Any, shard_mode: Any,
                    shuffle_buffer_size: Any, seed: Any) -> None:
    """Raises a ``ValueError`` naming the first planning argument of a wrong type or value."""
    if num_epochs is not None and (not isinstance(num_epochs, int) or isinstance(num_epochs, bool)
                                   or num_epochs < 1):
        raise ValueError(f"num_epochs must be a positive int or None, got {num_epochs!r}")
    if not isinstance(shuffle_row_drop_partitions, int) or shuffle_row_drop_partitions < 1:
        raise ValueError(f"shuffle_row_drop_partitions must be a positive int, got {shuffle_row_drop_partitions!r}")
    if shard_mode not in SHARD_MODES:
        raise ValueError(f"shard_mode must be one of {SHARD_MODES}, got {shard_mode!r}")
    if shuffle_buffer_size is not None and (not isinstance(shuffle_buffer_size, int) or shuffle_buffer_size < 0):
        raise ValueError(f"shuffle_buffer_size must be a non-negative int or None, got {shuffle_buffer_size!r}")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")


def plan_reads(store: ParquetStore, pieces: Sequence[RowGroupPiece], schema: Unischema,
               predicate: PredicateBase | None = None, rowgroup_selector: RowGroupSelectorBase | None = None,
               cur_shard: int | None = None, shard_count: int | None = None, shuffle_row_groups: bool = True,
               shuffle_row_drop_partitions: int = 1, num_epochs: int | None = 1,
               seed: int | None = None, shard_seed: int | None = None, shard_mode: str = "row-group",
               shard_remainder: str = "drop", shuffle_buffer_size: int | None = None,
               allowed_indexes: Sequence[int] | None = None, row_counts: Any = None) -> ReadPlan:
    """Filters the row groups (partition predicate, row-group selector, ``allowed_indexes`` (left by the
    ``filters`` pruning), then the shard) and returns the plan.

    :param row_counts: callable ``piece_index -> rows`` (footer row counts); needed by ``shard_mode='equal'`` and
        the shuffle buffer.
    """
    check_plan_args(num_epochs, shuffle_row_drop_partitions, shard_mode, shuffle_buffer_size, seed)
    stats = {"row_groups_total": len(pieces)}
    indexes, worker_predicate = apply_predicate_on_partitions(pieces, schema, predicate, store.partition_names)
    stats["row_groups_pruned_by_predicate"] = len(pieces) - len(indexes)
    if rowgroup_selector is not None:
        before = len(indexes)
        indexes = _apply_selector(store, rowgroup_selector, indexes)
        stats["row_groups_pruned_by_selector"] = before - len(indexes)
    if allowed_indexes is not None:
        allowed = set(allowed_indexes)
        before = len(indexes)
        indexes = [index for index in indexes if index in allowed]
        stats["row_groups_pruned_by_filters"] = before - len(indexes)
    sharded = cur_shard is not None or shard_count is not None
    if sharded and shard_mode == "row-group":
        indexes = _apply_sharding(len(pieces), indexes, cur_shard, shard_count, shard_seed)
    need_rows = (sharded and shard_mode == "equal") or bool(shuffle_buffer_size)
    rows = [int(row_counts(index)) for index in indexes] if need_rows else [None] * len(indexes)
    if sharded and shard_mode == "equal":
        segments = equal_shard_segments(indexes, rows, cur_shard, shard_count, shard_remainder)
        indexes = sorted({segment[0] for segment in segments})
        segment_rows = [stop - start for _, start, stop in segments]
    else:
        segments = [(index, 0, None) for index in indexes]
        segment_rows = rows
    stats["row_groups_selected"] = len(indexes)
    if not segments:
        warnings.warn("No row groups are left to read after the predicate, the row-group selector, the filters "
                      "and sharding")
    return ReadPlan(tuple(indexes), worker_predicate, shuffle_row_drop_partitions, shuffle_row_groups,
                    num_epochs, int(seed) if seed is not None else new_base_seed(), tuple(segments),
                    tuple(segment_rows), shuffle_buffer_size or None, stats)
