"""Plans over files: plain Parquet whose metadata does not list its row groups.

Piece indexes are :class:`~petastorm.parquet_store.FilePieces` indexes (file position and row group), so nothing
has to be read to plan: an epoch permutes the selected files, then each file's row groups, and a file's footer is
read when the reader reaches the file, so the first row does not wait for every footer. Options that need every
row group up front (``filters``, a row-group selector, sharding, a shuffle buffer) take the listing plan of
:mod:`~petastorm.reader_impl.planning` instead.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

from petastorm.errors import PetastormMetadataError
from petastorm.etl.dataset_metadata import count_row_groups
from petastorm.parquet_store import MAX_ROW_GROUPS_PER_FILE, FilePieces, ParquetStore, RowGroupPiece, partition_keys_of
from petastorm.predicates import PredicateBase
from petastorm.reader_impl.planning import (ReadPlan, WorkItem, apply_predicate_on_partitions, check_plan_args,
                                            new_base_seed)
from petastorm.reader_impl.shuffling import FILE_ROW_GROUPS, FILES, permutation
from petastorm.unischema import Unischema


@dataclass(frozen=True)
class FileReadPlan(ReadPlan):
    """A plan over ``files``, the selected positions in ``pieces.files``; the row groups of a file are counted from
    its footer (read through ``store``, which keeps it) when a unit of the file is first asked for."""

    files: tuple[int, ...] = field(kw_only=True)
    pieces: FilePieces = field(compare=False, repr=False, kw_only=True)
    store: ParquetStore = field(compare=False, repr=False, kw_only=True)

    @property
    def is_empty(self) -> bool:
        """True when no file is left to read."""
        return not self.files

    def row_group_counts(self, file_indexes: Sequence[int]) -> list[int]:
        """The row-group count of each file of ``file_indexes`` (footers read now if not yet)."""
        paths = [self.pieces.files[index] for index in file_indexes]
        counts = count_row_groups(self.store, paths)
        for path, count in zip(paths, counts):
            if count >= MAX_ROW_GROUPS_PER_FILE:
                raise PetastormMetadataError(f"{self.store.full_path(path)} has {count} row groups; a data file may "
                                             f"have at most {MAX_ROW_GROUPS_PER_FILE - 1}")
        return counts

    def diagnostics(self) -> dict:
        """The selection counters; ``row_groups_selected`` (and ``row_groups_total`` when no file was pruned) are
        None until every selected file's footer was read."""
        stats = dict(self.stats)
        footers = [self.store.cached_footer(self.pieces.files[index]) for index in self.files]
        selected = None if any(f is None for f in footers) else sum(f.num_row_groups for f in footers)
        stats["row_groups_selected"] = selected
        stats["row_groups_total"] = selected if stats["files_selected"] == stats["files_total"] else None
        return stats

    def epoch_items(self, epoch: int) -> list[WorkItem]:
        """Every work item of ``epoch`` in its order (every selected file's footer is read)."""
        return [item for unit in self.epoch_units(epoch) for item in unit]

    def epoch_units(self, epoch: int) -> FileUnits:
        """The units of ``epoch``, one work item each; see :class:`FileUnits`."""
        return FileUnits(self, epoch)

    def fingerprint(self) -> list:
        """What a saved iteration state must match to be resumed by this plan."""
        return ["files", len(self.files), hash(self.files) & 0xFFFFFFFF, self.num_drop_partitions,
                bool(self.shuffle_row_groups)]


class FileUnits:
    """The units (one work item each) of one epoch of a plan over files: the files in an order drawn from
    ``(seed, epoch)``, each file's row groups (times drop partitions) in an order drawn from ``(seed, epoch,
    file)``. Indexed like a list; the footers are read when a unit of their file is first asked for, a batch of
    files at a time (one for the first unit, then twice as many each time, up to 64)."""

    _MAX_BATCH = 64

    def __init__(self, plan: FileReadPlan, epoch: int):
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
        for file_index, count in zip(batch, plan.row_group_counts(batch)):
            items = [WorkItem(FilePieces.index(file_index, row_group), part, parts)
                     for row_group in range(count) for part in range(parts)]
            if plan.shuffle_row_groups and len(items) > 1:
                order = permutation(len(items), plan.seed, self._epoch, FILE_ROW_GROUPS, file_index)
                items = [items[i] for i in order]
            self._units.extend([item] for item in items)


def plans_by_file(rowgroup_selector: Any, cur_shard: Any, shard_count: Any, shuffle_buffer_size: Any,
                  filters: Any) -> bool:
    """Whether a store without a row-group listing can be planned over files: not when ``filters``, a row-group
    selector, sharding or a shuffle buffer need every row group up front."""
    return (rowgroup_selector is None and cur_shard is None and shard_count is None and not shuffle_buffer_size
            and not filters)


def plan_file_reads(store: ParquetStore, files: FilePieces, schema: Unischema, predicate: PredicateBase | None = None,
                    shuffle_row_groups: bool = True, shuffle_row_drop_partitions: int = 1,
                    num_epochs: int | None = 1, seed: int | None = None) -> FileReadPlan:
    """A plan over the data files ``files`` (a predicate on the Hive partition column prunes files by their
    paths); no footer is read here."""
    check_plan_args(num_epochs, shuffle_row_drop_partitions, "row-group", None, seed)
    if predicate is None:
        selected, worker_predicate = list(range(len(files.files))), None
    else:
        by_path = [RowGroupPiece(path, 0, partition_keys_of(path)) for path in files.files]
        selected, worker_predicate = apply_predicate_on_partitions(by_path, schema, predicate, store.partition_names)
    stats = {"files_total": len(files.files), "files_selected": len(selected)}
    if not selected:
        warnings.warn("No data files are left to read after the predicate")
    return FileReadPlan((), worker_predicate, shuffle_row_drop_partitions, shuffle_row_groups, num_epochs,
                        int(seed) if seed is not None else new_base_seed(), stats=stats, files=tuple(selected),
                        pieces=files, store=store)
