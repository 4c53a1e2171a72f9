"""Deciding which row groups a reader reads, in which order, for how many epochs.

Independent of how row groups are read: the output is, for every epoch, a sequence of *units* (lists of
:class:`WorkItem`), each naming a piece index and a row range. Every order is a pure function of ``(seed, epoch)``
(drawn by :mod:`~petastorm.reader_impl.shuffling`), which is what makes iteration reproducible and resumable.

Two kinds of plan: when the metadata lists the row groups (Petastorm datasets), or when an option needs all of
them up front (``filters``, a row-group selector, sharding, a shuffle buffer), a piece index is a position in the
dataset's row-group listing and an epoch's order is a permutation of all its row groups. Otherwise (plain Parquet)
the plan is over files (:class:`~petastorm.parquet_store.FilePieces` indexes): an epoch permutes the files, then
each file's row groups, and a file's footer is read when the reader reaches it, so the first row does not wait
for every footer.
"""
from __future__ import annotations

import math
import secrets
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from petastorm.errors import NoDataAvailableError, PetastormMetadataError
from petastorm.etl.dataset_metadata import count_row_groups
from petastorm.etl.rowgroup_index_metadata import get_row_group_indexes
from petastorm.parquet_store import MAX_ROW_GROUPS_PER_FILE, FilePieces, ParquetStore, RowGroupPiece, partition_keys_of
from petastorm.predicates import PredicateBase
from petastorm.reader_impl.shuffling import (FILE_ROW_GROUPS, FILES, ROW_GROUPS, legacy_shard_permutation,
                                             permutation)
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


class FileRowGroups:
    """The row-group counts of a store's data files, read from their footers the first time they are asked for
    (and kept: later epochs read no footer)."""

    def __init__(self, store: ParquetStore, files: FilePieces):
        self._store, self._paths = store, files.files
        self._counts: dict[int, int] = {}
        self._lock = threading.Lock()

    def counts(self, file_indexes: Sequence[int]) -> list[int]:
        """The row-group count of each file of ``file_indexes`` (positions in the sorted file list)."""
        with self._lock:
            missing = [index for index in file_indexes if index not in self._counts]
            if missing:
                for index, count in zip(missing, count_row_groups(self._store, [self._paths[i] for i in missing])):
                    if count >= MAX_ROW_GROUPS_PER_FILE:
                        raise PetastormMetadataError(
                            f"{self._store.full_path(self._paths[index])} has {count} row groups; a data file may "
                            f"have at most {MAX_ROW_GROUPS_PER_FILE - 1}")
                    self._counts[index] = count
            return [self._counts[index] for index in file_indexes]

    def total(self, file_indexes: Sequence[int]) -> int | None:
        """The row groups of ``file_indexes`` together, or None while a footer of them is still unread."""
        with self._lock:
            if any(index not in self._counts for index in file_indexes):
                return None
            return sum(self._counts[index] for index in file_indexes)


@dataclass(frozen=True)
class ReadPlan:
    """The selected piece indexes, the predicate left for the row-group reader, and the epoch/shuffle settings.

    ``segments`` are the ``(piece_index, start, stop)`` row ranges this reader (shard) reads each epoch. A plan over
    files has none: ``files`` are the selected positions in the sorted file list, whose row groups ``row_groups``
    counts on demand (see the module's docstring).
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
    files: tuple[int, ...] = ()
    row_groups: FileRowGroups | None = field(default=None, compare=False)

    @property
    def is_empty(self) -> bool:
        """True when no row group is left to read."""
        return not self.segments and not self.files

    def diagnostics(self) -> dict:
        """The selection counters (``stats``); for a plan over files, ``row_groups_selected`` (and
        ``row_groups_total`` when no file was pruned) are None until every selected file's footer was read."""
        stats = dict(self.stats)
        if self.row_groups is not None:
            selected = self.row_groups.total(self.files)
            stats["row_groups_selected"] = selected
            stats["row_groups_total"] = selected if stats["files_selected"] == stats["files_total"] else None
        return stats

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
        whose rows (by the row-group metadata) fit in ``shuffle_buffer_size`` (at least one item per unit). A plan
        over files gives a :class:`FileUnits`."""
        if self.row_groups is not None:
            return FileUnits(self, epoch)
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
        if self.row_groups is not None:
            return ["files", len(self.files), hash(self.files) & 0xFFFFFFFF, self.num_drop_partitions,
                    bool(self.shuffle_row_groups)]
        return [len(self.segments), hash(self.segments) & 0xFFFFFFFF, self.num_drop_partitions,
                bool(self.shuffle_row_groups), self.shuffle_buffer_size or 0]


class FileUnits:
    """The units (one work item each) of one epoch of a plan over files: the files in an order drawn from
    ``(seed, epoch)``, each file's row groups (times drop partitions) in an order drawn from ``(seed, epoch,
    file)``. Indexed like a list; the footers are read when a unit of their file is first asked for, a batch of
    files at a time (one for the first unit, then twice as many each time, up to 64)."""

    _MAX_BATCH = 64

    def __init__(self, plan: ReadPlan, epoch: int):
        self._plan, self._epoch = plan, epoch
        files = list(plan.files)
        if plan.shuffle_row_groups and len(files) > 1:
            files = [files[i] for i in permutation(len(files), plan.seed, epoch, FILES)]
        self._files, self._expanded, self._batch = files, 0, 1
        self._units: list[list[WorkItem]] = []

    def __getitem__(self, index: int) -> list[WorkItem]:
        while index >= len(self._units) and self._expanded < len(self._files):
            self._expand()
        return self._units[index]

    def __len__(self) -> int:
        while self._expanded < len(self._files):
            self._expand()
        return len(self._units)

    def _expand(self) -> None:
        plan = self._plan
        batch = self._files[self._expanded:self._expanded + self._batch]
        self._expanded += len(batch)
        self._batch = min(2 * self._batch, self._MAX_BATCH)
        parts = plan.num_drop_partitions
        for file_index, count in zip(batch, plan.row_groups.counts(batch)):
            items = [WorkItem(FilePieces.index(file_index, row_group), part, parts)
                     for row_group in range(count) for part in range(parts)]
            if plan.shuffle_row_groups and len(items) > 1:
                order = permutation(len(items), plan.seed, self._epoch, FILE_ROW_GROUPS, file_index)
                items = [items[i] for i in order]
            self._units.extend([item] for item in items)


def _apply_predicate_on_partitions(pieces: Sequence[RowGroupPiece], schema: Unischema,
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


def _check_plan_args(num_epochs: Any, shuffle_row_drop_partitions: Any, shard_mode: Any,
                     shuffle_buffer_size: Any, seed: Any) -> None:
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
    _check_plan_args(num_epochs, shuffle_row_drop_partitions, shard_mode, shuffle_buffer_size, seed)
    stats = {"row_groups_total": len(pieces)}
    indexes, worker_predicate = _apply_predicate_on_partitions(pieces, schema, predicate, store.partition_names)
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


def plans_by_file(rowgroup_selector: Any, cur_shard: Any, shard_count: Any, shuffle_buffer_size: Any,
                  filters: Any) -> bool:
    """Whether a store without a row-group listing can be planned over files (see the module's docstring): not
    when ``filters``, a row-group selector, sharding or a shuffle buffer need every row group up front."""
    return (rowgroup_selector is None and cur_shard is None and shard_count is None and not shuffle_buffer_size
            and not filters)


def plan_file_reads(store: ParquetStore, files: FilePieces, schema: Unischema, predicate: PredicateBase | None = None,
                    shuffle_row_groups: bool = True, shuffle_row_drop_partitions: int = 1,
                    num_epochs: int | None = 1, seed: int | None = None) -> ReadPlan:
    """A plan over the data files ``files`` (a predicate on the Hive partition column prunes files by their
    paths); no footer is read here."""
    _check_plan_args(num_epochs, shuffle_row_drop_partitions, "row-group", None, seed)
    if predicate is None:
        selected, worker_predicate = list(range(len(files.files))), None
    else:
        by_path = [RowGroupPiece(path, 0, partition_keys_of(path)) for path in files.files]
        selected, worker_predicate = _apply_predicate_on_partitions(by_path, schema, predicate,
                                                                    store.partition_names)
    stats = {"files_total": len(files.files), "files_selected": len(selected)}
    if not selected:
        warnings.warn("No data files are left to read after the predicate")
    return ReadPlan((), worker_predicate, shuffle_row_drop_partitions, shuffle_row_groups, num_epochs,
                    int(seed) if seed is not None else new_base_seed(), stats=stats, files=tuple(selected),
                    row_groups=FileRowGroups(store, files))
