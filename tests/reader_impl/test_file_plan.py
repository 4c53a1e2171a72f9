"""Plans over files (plain Parquet without a row-group listing): footers read on demand, the order (files, then each
file's row groups) as a function of seed and epoch, and readers on such plans (rows, epochs, resume, diagnostics)."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from petastorm import make_batch_reader, make_reader
from petastorm.errors import PetastormMetadataError
from petastorm.parquet_store import MAX_ROW_GROUPS_PER_FILE, FilePieces, ParquetStore
from petastorm.predicates import in_set
from petastorm.reader_impl import file_planning
from petastorm.reader_impl.file_planning import FileReadPlan, FileUnits, plan_file_reads
from petastorm.unischema import Unischema, UnischemaField

# Row groups of each file: files f0..f5 under p=0 and p=1, 1 to 3 row groups of 4 rows.
ROW_GROUPS = [2, 1, 3, 1, 2, 3]
ROWS_PER_GROUP = 4


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A plain Parquet store (no _common_metadata): ids 0.. in sorted file order."""
    root = tmp_path_factory.mktemp("plain")
    first = 0
    for f, groups in enumerate(ROW_GROUPS):
        folder = root / f"p={f % 2}"
        folder.mkdir(exist_ok=True)
        rows = groups * ROWS_PER_GROUP
        table = pa.table({"id": np.arange(first, first + rows, dtype=np.int64)})
        pq.write_table(table, folder / f"f{f}.parquet", row_group_size=ROWS_PER_GROUP)
        first += rows
    return root


SCHEMA = Unischema("S", [UnischemaField("id", np.int64, (), None, False),
                         UnischemaField("p", np.int64, (), None, False)])


def _plan(plain, **kwargs):
    store = ParquetStore.open(plain.as_uri())
    return store, plan_file_reads(store, FilePieces(store.data_files), SCHEMA, **kwargs)


def _groups(store):
    """The row-group count of each data file, in the store's (sorted) order."""
    return [ROW_GROUPS[int(path.split("/")[-1][1:-len(".parquet")])] for path in store.data_files]


def _pieces(units, store):
    pieces = FilePieces(store.data_files)
    return [(pieces[unit[0].piece_index].path, pieces[unit[0].piece_index].row_group) for unit in units]


def test_no_footer_is_read_while_planning_and_one_for_the_first_unit(plain):
    store, plan = _plan(plain, seed=3)
    assert store._footers == {} and plan.files == tuple(range(len(ROW_GROUPS)))
    units = plan.epoch_units(0)
    assert isinstance(units, FileUnits)
    units[0]
    assert len(store._footers) == 1
    assert plan.diagnostics()["row_groups_selected"] is None
    assert len(units) == sum(ROW_GROUPS) and len(store._footers) == len(ROW_GROUPS)
    assert plan.diagnostics()["row_groups_selected"] == plan.diagnostics()["row_groups_total"] == sum(ROW_GROUPS)
    with pytest.raises(IndexError):
        units[sum(ROW_GROUPS)]


def test_unshuffled_order_is_the_sorted_files_then_their_row_groups(plain):
    store, plan = _plan(plain, shuffle_row_groups=False)
    expected = [(path, group) for path, groups in zip(store.data_files, _groups(store)) for group in range(groups)]
    assert _pieces(plan.epoch_units(0), store) == expected


def test_shuffled_order_keeps_a_file_together_and_is_a_function_of_seed_and_epoch(plain):
    store, plan = _plan(plain, seed=11)
    orders = [_pieces(plan.epoch_units(epoch), store) for epoch in range(4)]
    for order in orders:
        assert sorted(order) == sorted(_pieces(_plan(plain, shuffle_row_groups=False)[1].epoch_units(0), store))
        runs = [path for i, (path, _) in enumerate(order) if i == 0 or order[i - 1][0] != path]
        assert len(runs) == len(set(runs)) == len(ROW_GROUPS)  # each file's row groups come together
    assert len({tuple(order) for order in orders}) == 4
    assert _pieces(_plan(plain, seed=11)[1].epoch_units(2), store) == orders[2]
    assert _pieces(_plan(plain, seed=12)[1].epoch_units(2), store) != orders[2]


def test_drop_partitions_are_items_of_their_file(plain):
    store, plan = _plan(plain, seed=1, shuffle_row_drop_partitions=2)
    items = [unit[0] for unit in plan.epoch_units(0)]
    assert len(items) == 2 * sum(ROW_GROUPS)
    assert sorted((i.piece_index, i.drop_partition) for i in items) == sorted(
        (FilePieces.index(f, g), d) for f, groups in enumerate(_groups(store)) for g in range(groups) for d in (0, 1))


def test_a_partition_predicate_prunes_files_by_path(plain):
    store, plan = _plan(plain, predicate=in_set([1], "p"))
    assert plan.worker_predicate is None and store._footers == {}
    assert [store.data_files[f] for f in plan.files] == [p for p in store.data_files if p.startswith("p=1/")]
    assert plan.diagnostics()["files_selected"] == 3 and plan.diagnostics()["row_groups_total"] is None


def test_the_fingerprint_names_the_files(plain):
    _, plan = _plan(plain, seed=1)
    _, pruned = _plan(plain, seed=1, predicate=in_set([1], "p"))
    assert plan.fingerprint()[0] == "files" and plan.fingerprint() != pruned.fingerprint()


def test_a_file_with_more_row_groups_than_the_numbering_holds_is_an_error(plain, monkeypatch):
    monkeypatch.setattr(file_planning, "MAX_ROW_GROUPS_PER_FILE", 3)
    store, plan = _plan(plain, shuffle_row_groups=False)
    units = plan.epoch_units(0)
    with pytest.raises(PetastormMetadataError, match=r"f2\.parquet has 3 row groups; a data file may have at most 2"):
        len(units)


# -- readers planned over files ---------------------------------------------------------------------------------

TOTAL = sum(ROW_GROUPS) * ROWS_PER_GROUP


@pytest.mark.parametrize("factory", [make_reader, make_batch_reader])
def test_readers_read_every_row_once_per_epoch_reading_footers_as_they_go(plain, factory):
    with factory(plain.as_uri(), num_epochs=2, seed=5, workers_count=1, results_queue_size=1) as reader:
        first = next(reader)
        assert reader.diagnostics["row_groups_selected"] is None  # not every footer read for the first row
        ids = list(np.atleast_1d(first.id)) + [i for item in reader for i in np.atleast_1d(item.id)]
        assert reader.diagnostics["row_groups_selected"] == sum(ROW_GROUPS)
    assert sorted(ids[:TOTAL]) == sorted(ids[TOTAL:]) == list(range(TOTAL))
    assert ids[:TOTAL] != ids[TOTAL:]
    with factory(plain.as_uri(), num_epochs=2, seed=5) as again:
        assert [i for item in again for i in np.atleast_1d(item.id)] == ids


@pytest.mark.parametrize("pool", ["process", "dummy"])
def test_other_pools_read_a_plan_over_files(plain, pool):
    with make_batch_reader(plain.as_uri(), reader_pool_type=pool, workers_count=2, seed=2) as reader:
        assert isinstance(reader.plan, FileReadPlan)
        ids = [i for batch in reader for i in batch.id]
    with make_batch_reader(plain.as_uri(), seed=2) as threads:
        assert ids == [i for batch in threads for i in batch.id]
    assert sorted(ids) == list(range(TOTAL))


def test_a_reader_planned_over_files_resumes_where_it_stopped(plain):
    with make_reader(plain.as_uri(), num_epochs=2, seed=7) as reader:
        ids = [int(row.id) for row in reader]
    with make_reader(plain.as_uri(), num_epochs=2, seed=7) as reader:
        head = [int(next(reader).id) for _ in range(TOTAL + 5)]
        state = reader.state_dict()
    with make_reader(plain.as_uri(), num_epochs=2, resume_from=state) as resumed:
        assert head + [int(row.id) for row in resumed] == ids
    with make_reader(plain.as_uri(), num_epochs=2, predicate=in_set([1], "p")) as pruned:
        with pytest.raises(ValueError, match="different row groups"):
            pruned.load_state_dict(state)


def test_options_that_need_every_row_group_plan_over_the_listing(plain):
    for kwargs in ({"cur_shard": 0, "shard_count": 2}, {"shuffle_buffer_size": 8}, {"filters": [("id", "<", 5)]}):
        with make_batch_reader(plain.as_uri(), **kwargs) as reader:
            assert not isinstance(reader.plan, FileReadPlan)
            assert reader.diagnostics["row_groups_total"] == sum(ROW_GROUPS)


def test_the_numbering_leaves_room_for_every_row_group():
    assert FilePieces.index(1, 0) == MAX_ROW_GROUPS_PER_FILE
    assert FilePieces(["a", "b"])[FilePieces.index(1, 5)].path == "b"


def test_the_cache_serves_a_plan_over_files_and_the_listing_numbering_alike(plain, tmp_path):
    options = dict(cache_type="local-disk", cache_location=str(tmp_path), cache_size_limit=10 ** 8, seed=4)
    passes = []
    for _ in range(2):
        with make_batch_reader(plain.as_uri(), **options) as reader:
            passes.append(([i for batch in reader for i in batch.id], reader.diagnostics))
    (first, d1), (second, d2) = passes
    assert first == second and sorted(first) == list(range(TOTAL))
    assert d1["cache_hits"] == 0 and d2["cache_hits"] == d2["cache_requests"] == sum(ROW_GROUPS)
    # Entries are keyed by file and row group: a reader that numbers pieces by the listing (sharding needs it)
    # takes the entries the plan over files left.
    with make_batch_reader(plain.as_uri(), cur_shard=0, shard_count=1, **options) as listed:
        assert sorted(i for batch in listed for i in batch.id) == list(range(TOTAL))
        assert listed.diagnostics["cache_hits"] == sum(ROW_GROUPS)
