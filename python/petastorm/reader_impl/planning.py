"""Deciding which row groups a reader reads, in which order, for how many epochs.

Independent of how row groups are read: the output is a sequence of :class:`WorkItem` objects naming piece
indexes (positions in the dataset's row-group listing).
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from petastorm.errors import NoDataAvailableError
from petastorm.etl.rowgroup_indexing import get_row_group_indexes
from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.predicates import PredicateBase
from petastorm.selectors import RowGroupSelectorBase
from petastorm.unischema import Unischema


@dataclass(frozen=True)
class WorkItem:
    """Read drop-partition ``drop_partition`` (of ``num_drop_partitions``) of row group ``piece_index``."""

    piece_index: int
    drop_partition: int = 0
    num_drop_partitions: int = 1


@dataclass(frozen=True)
class ReadPlan:
    """The selected piece indexes, the predicate left for the row-group reader, and the epoch/shuffle settings."""

    piece_indexes: tuple[int, ...]
    worker_predicate: PredicateBase | None
    num_drop_partitions: int = 1
    shuffle_row_groups: bool = True
    num_epochs: int | None = 1
    seed: int | None = None

    def work_items(self) -> Iterator[WorkItem]:
        """Every work item of every epoch (forever when ``num_epochs`` is None); a shuffled order is drawn anew
        for each epoch from one generator seeded with ``seed``."""
        items = [WorkItem(index, part, self.num_drop_partitions)
                 for index in self.piece_indexes for part in range(self.num_drop_partitions)]
        rng = random.Random(self.seed)
        epoch = 0
        while self.num_epochs is None or epoch < self.num_epochs:
            if self.shuffle_row_groups:
                rng.shuffle(items)
            yield from items
            epoch += 1


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


def _apply_sharding(num_pieces: int, indexes: list[int], cur_shard: Any, shard_count: Any) -> list[int]:
    if not isinstance(cur_shard, int) or not isinstance(shard_count, int) or shard_count < 1 \
            or not 0 <= cur_shard < shard_count:
        raise ValueError(f"cur_shard and shard_count must both be ints with 0 <= cur_shard < shard_count, got "
                         f"cur_shard={cur_shard!r}, shard_count={shard_count!r}")
    if num_pieces < shard_count:
        raise NoDataAvailableError(f"The dataset has {num_pieces} row groups, fewer than shard_count={shard_count}: "
                                   f"some shards would be empty")
    return [index for index in indexes if index % shard_count == cur_shard]


def plan_reads(store: ParquetStore, pieces: Sequence[RowGroupPiece], schema: Unischema,
               predicate: PredicateBase | None = None, rowgroup_selector: RowGroupSelectorBase | None = None,
               cur_shard: int | None = None, shard_count: int | None = None, shuffle_row_groups: bool = True,
               shuffle_row_drop_partitions: int = 1, num_epochs: int | None = 1,
               seed: int | None = None) -> ReadPlan:
    """Filters the row groups (partition predicate, row-group selector, then the shard
    ``piece_index % shard_count == cur_shard``) and returns the plan."""
    if num_epochs is not None and (not isinstance(num_epochs, int) or num_epochs < 1):
        raise ValueError(f"num_epochs must be a positive int or None, got {num_epochs!r}")
    if not isinstance(shuffle_row_drop_partitions, int) or shuffle_row_drop_partitions < 1:
        raise ValueError(f"shuffle_row_drop_partitions must be a positive int, got {shuffle_row_drop_partitions!r}")
    indexes, worker_predicate = _apply_predicate_on_partitions(pieces, schema, predicate, store.partition_names)
    if rowgroup_selector is not None:
        indexes = _apply_selector(store, rowgroup_selector, indexes)
    if cur_shard is not None or shard_count is not None:
        indexes = _apply_sharding(len(pieces), indexes, cur_shard, shard_count)
    if not indexes:
        warnings.warn("No row groups are left to read after the predicate, the row-group selector and sharding")
    return ReadPlan(tuple(indexes), worker_predicate, shuffle_row_drop_partitions, shuffle_row_groups,
                    num_epochs, seed)
