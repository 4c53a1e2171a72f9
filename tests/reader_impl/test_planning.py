"""petastorm.reader_impl.planning: the work items and units of every epoch, sharding, and plan_reads on a tiny
store."""
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from petastorm.errors import NoDataAvailableError
from petastorm.etl.dataset_metadata import load_row_groups
from petastorm.parquet_store import ParquetStore
from petastorm.predicates import in_lambda, in_set
from petastorm.reader_impl.planning import ReadPlan, WorkItem, _apply_sharding, equal_shard_segments, plan_reads
from petastorm.unischema import Unischema, UnischemaField


def _plan(num_segments=6, rows=None, **kwargs):
    segments = tuple((index, 0, None) for index in range(num_segments))
    rows = tuple(rows) if rows is not None else (None,) * num_segments
    return ReadPlan(tuple(range(num_segments)), None, segments=segments, segment_rows=rows, **kwargs)


def _keys(items):
    return [(item.piece_index, item.drop_partition) for item in items]


# -- epoch_items / epoch_units -----------------------------------------------------------------------------------

def test_unshuffled_items_follow_the_segments_then_the_drop_partitions():
    plan = ReadPlan((4, 9), None, num_drop_partitions=2, shuffle_row_groups=False,
                    segments=((4, 0, None), (9, 3, 8)), segment_rows=(None, 5))
    assert plan.epoch_items(0) == [WorkItem(4, 0, 2, 0, None), WorkItem(4, 1, 2, 0, None),
                                   WorkItem(9, 0, 2, 3, 8), WorkItem(9, 1, 2, 3, 8)]
    assert plan.epoch_items(5) == plan.epoch_items(0)


def test_shuffled_items_are_a_function_of_seed_and_epoch():
    plan = _plan(20, seed=42)
    unshuffled = _plan(20, seed=42, shuffle_row_groups=False).epoch_items(0)
    orders = [_keys(plan.epoch_items(epoch)) for epoch in range(5)]
    for order in orders:
        assert sorted(order) == _keys(unshuffled)  # every item once
    assert len({tuple(order) for order in orders}) == 5  # every epoch differs
    assert _keys(_plan(20, seed=42).epoch_items(3)) == orders[3]  # a new plan with the same seed repeats it
    assert _keys(_plan(20, seed=43).epoch_items(3)) != orders[3]
    # settings that do not order items leave the order alone
    assert _keys(_plan(20, seed=42, num_epochs=None, shuffle_buffer_size=7).epoch_items(3)) == orders[3]


def test_a_single_item_is_not_shuffled():
    assert _plan(1, seed=3).epoch_items(0) == [WorkItem(0)]
    assert _plan(0, seed=3).epoch_items(0) == []


def test_drop_partitions_are_shuffled_as_items():
    items = _plan(3, seed=1, num_drop_partitions=4).epoch_items(0)
    assert sorted(_keys(items)) == [(i, p) for i in range(3) for p in range(4)]
    assert _keys(items) != sorted(_keys(items))
    assert {item.num_drop_partitions for item in items} == {4}


def test_units_without_a_shuffle_buffer_are_single_items_in_epoch_order():
    plan = _plan(8, seed=5)
    assert plan.epoch_units(2) == [[item] for item in plan.epoch_items(2)]


def test_units_fill_the_shuffle_buffer_by_row_count():
    plan = _plan(6, rows=[4, 4, 4, 4, 15, 1], shuffle_row_groups=False, shuffle_buffer_size=10)
    # 4+4 fits, +4 would not; a 15-row item exceeds the buffer alone; the lone 1 follows it in a new unit
    assert [[item.piece_index for item in unit] for unit in plan.epoch_units(0)] == [[0, 1], [2, 3], [4], [5]]


def test_units_count_drop_partitions_and_unknown_row_counts():
    # 9 rows in 2 drop partitions count 5 each; an unknown count counts 1
    plan = ReadPlan((0, 1), None, num_drop_partitions=2, shuffle_row_groups=False, shuffle_buffer_size=11,
                    segments=((0, 0, None), (1, 0, None)), segment_rows=(9, None))
    assert [_keys(unit) for unit in plan.epoch_units(0)] == [[(0, 0), (0, 1), (1, 0)], [(1, 1)]]


def test_shuffled_units_keep_the_epoch_order():
    plan = _plan(12, rows=[3] * 12, seed=8, shuffle_buffer_size=7)
    for epoch in range(3):
        units = plan.epoch_units(epoch)
        assert [len(unit) for unit in units] == [2] * 6
        assert [item for unit in units for item in unit] == plan.epoch_items(epoch)


# -- sharding ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows,shard_count", [([5, 3], 3), ([5, 3, 7, 2], 4), ([1, 1, 1], 3), ([10], 4),
                                              ([2, 9, 4, 4, 1], 1)])
def test_equal_shards_drop_partition_rows_exactly(rows, shard_count):
    indexes = [10 + i for i in range(len(rows))]
    offsets = dict(zip(indexes, np.concatenate([[0], np.cumsum(rows)]).tolist()))
    total, per = sum(rows), sum(rows) // shard_count
    taken = []
    for shard in range(shard_count):
        segments = equal_shard_segments(indexes, rows, shard, shard_count, "drop")
        shard_rows = [offsets[index] + row for index, start, stop in segments for row in range(start, stop)]
        assert len(shard_rows) == per
        assert shard_rows == list(range(shard * per, (shard + 1) * per))  # consecutive rows, in order
        taken += shard_rows
    assert len(set(taken)) == len(taken) == total - total % shard_count


@pytest.mark.parametrize("rows,shard_count", [([5, 3], 3), ([5, 3, 7, 2], 4), ([1, 1], 3), ([6, 6], 4)])
def test_equal_shards_pad_cover_every_row_with_equal_counts(rows, shard_count):
    indexes = list(range(len(rows)))
    total = sum(rows)
    per = -(-total // shard_count)
    counts = np.zeros(total, int)
    offsets = np.concatenate([[0], np.cumsum(rows)])
    for shard in range(shard_count):
        segments = equal_shard_segments(indexes, rows, shard, shard_count, "pad")
        assert sum(stop - start for _, start, stop in segments) == per
        for index, start, stop in segments:
            counts[offsets[index] + start:offsets[index] + stop] += 1
    assert counts.min() == 1 and counts.sum() == per * shard_count  # no row lost; only the padding repeats rows
    assert (counts[:per * shard_count - total] == 2).all()


def test_equal_shard_segments_concrete():
    assert [equal_shard_segments([0, 1], [5, 3], s, 3, "drop") for s in range(3)] == [
        [(0, 0, 2)], [(0, 2, 4)], [(0, 4, 5), (1, 0, 1)]]
    assert [equal_shard_segments([0, 1], [5, 3], s, 3, "pad") for s in range(3)] == [
        [(0, 0, 3)], [(0, 3, 5), (1, 0, 1)], [(1, 1, 3), (0, 0, 1)]]
    assert equal_shard_segments([7, 8], [0, 0], 0, 2, "drop") == []


def test_equal_shard_segments_errors():
    with pytest.raises(ValueError, match=r"shard_remainder must be one of \('drop', 'pad'\), got 'keep'"):
        equal_shard_segments([0], [4], 0, 2, "keep")
    with pytest.raises(ValueError, match="cur_shard=2, shard_count=2"):
        equal_shard_segments([0], [4], 2, 2, "drop")


def test_row_group_sharding_deals_positions_modulo_shard_count():
    assert [_apply_sharding(7, list(range(7)), s, 3) for s in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert _apply_sharding(7, [1, 2, 3, 4], 0, 3) == [3]  # only the indexes still selected
    assert _apply_sharding(7, [6, 0, 3], 0, 3) == [6, 0, 3]  # in the order given


def test_row_group_sharding_with_shard_seed_matches_the_original():
    shards = [_apply_sharding(8, list(range(8)), s, 3, shard_seed=3) for s in range(3)]
    assert shards == [[0, 5, 6], [2, 3, 7], [1, 4]]  # RandomState(3).permutation(8) dealt to 3 shards
    assert _apply_sharding(8, list(range(8)), 0, 3, shard_seed=4) != shards[0]


@pytest.mark.parametrize("cur_shard,shard_count", [(3, 3), (-1, 3), (0, 0), (None, 2), (0, None), (0.0, 2),
                                                   (1, 2.0), ("0", 2)])
def test_bad_shard_arguments(cur_shard, shard_count):
    message = f"0 <= cur_shard < shard_count, got cur_shard={cur_shard!r}, shard_count={shard_count!r}"
    with pytest.raises(ValueError, match=re.escape(message)):
        _apply_sharding(8, list(range(8)), cur_shard, shard_count)


def test_fewer_row_groups_than_shards():
    with pytest.raises(NoDataAvailableError, match="2 row groups, fewer than shard_count=3.*shard_mode='equal'"):
        _apply_sharding(2, [0, 1], 0, 3)


# -- plan_reads on a tiny store ----------------------------------------------------------------------------------

Schema = Unischema("Schema", [UnischemaField("p", np.int32, (), None, False),
                              UnischemaField("id", np.int64, (), None, False)])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Partitions p=0 and p=1, one file each with row groups of 3 and 2 rows: ids 0-4 and 5-9."""
    root = tmp_path_factory.mktemp("store")
    for p in range(2):
        (root / f"p={p}").mkdir()
        pq.write_table(pa.table({"id": pa.array(range(5 * p, 5 * p + 5), pa.int64())}),
                       root / f"p={p}" / "part.parquet", row_group_size=3)
    return ParquetStore.open(f"file://{root}")


def _rows_of(store, pieces):
    return lambda index: pq.ParquetFile(store.full_path(pieces[index].path)).metadata.row_group(
        pieces[index].row_group).num_rows


def test_plan_reads_selects_partitions_and_keeps_other_predicates(store):
    pieces = load_row_groups(store)
    assert [(piece.partition_keys, piece.row_group) for piece in pieces] == [
        ((("p", "0"),), 0), ((("p", "0"),), 1), ((("p", "1"),), 0), ((("p", "1"),), 1)]
    plan = plan_reads(store, pieces, Schema, predicate=in_set({1}, "p"), seed=4)
    assert plan.piece_indexes == (2, 3) and plan.worker_predicate is None and plan.seed == 4
    assert plan.stats["row_groups_pruned_by_predicate"] == 2 and plan.stats["row_groups_selected"] == 2
    on_ids = in_lambda(["id"], lambda i: i > 2)
    plan = plan_reads(store, pieces, Schema, predicate=on_ids, seed=4)
    assert plan.piece_indexes == (0, 1, 2, 3) and plan.worker_predicate is on_ids


def test_plan_reads_equal_shards_use_the_row_counts(store):
    pieces = load_row_groups(store)
    plans = [plan_reads(store, pieces, Schema, cur_shard=s, shard_count=3, shard_mode="equal", seed=0,
                        row_counts=_rows_of(store, pieces)) for s in range(3)]
    # 3 + 2 + 3 + 2 = 10 rows, 3 per shard, the last row dropped
    assert [plan.segments for plan in plans] == [((0, 0, 3),), ((1, 0, 2), (2, 0, 1)), ((2, 1, 3), (3, 0, 1))]
    assert [plan.segment_rows for plan in plans] == [(3,), (2, 1), (2, 1)]
    assert plans[1].piece_indexes == (1, 2)


def test_plan_reads_shuffle_buffer_units(store):
    pieces = load_row_groups(store)
    plan = plan_reads(store, pieces, Schema, shuffle_row_groups=False, shuffle_buffer_size=5, seed=0,
                      row_counts=_rows_of(store, pieces))
    assert plan.segment_rows == (3, 2, 3, 2)
    assert [[item.piece_index for item in unit] for unit in plan.epoch_units(0)] == [[0, 1], [2, 3]]


def test_plan_reads_without_a_seed_draws_one(store):
    pieces = load_row_groups(store)
    seeds = {plan_reads(store, pieces, Schema).seed for _ in range(3)}
    assert len(seeds) == 3 and all(0 <= seed < 2 ** 62 for seed in seeds)


@pytest.mark.parametrize("kwargs,message", [
    ({"num_epochs": 0}, "num_epochs must be a positive int or None, got 0"),
    ({"num_epochs": True}, "num_epochs must be a positive int or None, got True"),
    ({"shuffle_row_drop_partitions": 0}, "shuffle_row_drop_partitions must be a positive int, got 0"),
    ({"shard_mode": "rows"}, r"shard_mode must be one of \('row-group', 'equal'\), got 'rows'"),
    ({"shuffle_buffer_size": -1}, "shuffle_buffer_size must be a non-negative int or None, got -1"),
    ({"seed": -1}, "seed must be a non-negative int or None, got -1"),
    ({"seed": 1.5}, "seed must be a non-negative int or None, got 1.5"),
])
def test_plan_reads_argument_errors(store, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_reads(store, load_row_groups(store), Schema, **kwargs)


def test_plan_reads_warns_when_nothing_is_left(store):
    with pytest.warns(UserWarning, match="No row groups are left"):
        plan = plan_reads(store, load_row_groups(store), Schema, predicate=in_set({7}, "p"), seed=0)
    assert plan.segments == () and plan.epoch_units(0) == []
