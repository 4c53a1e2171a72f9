"""Reader engine: pools, fields, predicates, transforms, filters, epochs, URLs, shuffling, sharding, resume, cache."""
import itertools
import json
import os
import shutil

import numpy as np
import pytest
from _engine_helpers import ROW_GROUPS, ROWS, ROWS_PER_GROUP, EngineSchema, assert_no_leaks, image_of, \
    write_engine_dataset

from petastorm import TransformSpec, make_batch_reader, make_reader
from petastorm.errors import NoDataAvailableError
from petastorm.predicates import in_intersection, in_lambda, in_negate, in_pseudorandom_split, in_reduce, in_set
from petastorm.transform import edit_field
from petastorm.weighted_sampling_reader import WeightedSamplingReader

POOLS = ["thread", "process", "dummy"]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    return write_engine_dataset(tmp_path_factory.mktemp("engine") / "ds")


def _ids(reader):
    return [int(row.id) for row in reader]


def _batch_ids(reader):
    return [int(i) for batch in reader for i in batch.id]


@pytest.mark.parametrize("pool", POOLS)
def test_make_reader_every_pool_decodes_every_row(url, pool):
    with make_reader(url, reader_pool_type=pool, workers_count=2) as reader:
        rows = list(reader)
        assert reader.diagnostics["pool_type"] == pool
    assert sorted(int(r.id) for r in rows) == list(range(ROWS))
    row = next(r for r in rows if r.id == 47)
    assert row.p == "1" and row.name == "n47" and isinstance(row.id, np.int64)
    np.testing.assert_array_equal(row.vec, np.full(3, 47, np.float32))
    np.testing.assert_array_equal(row.img, image_of(47))
    assert row._fields == tuple(EngineSchema.fields)
    assert_no_leaks()


@pytest.mark.parametrize("pool", POOLS)
def test_make_batch_reader_every_pool(url, pool):
    with make_batch_reader(url, reader_pool_type=pool, workers_count=2, shuffle_row_groups=False) as reader:
        batches = list(reader)
    assert len(batches) == ROW_GROUPS and _batch_ids(batches) == list(range(ROWS))
    first = batches[0]
    assert first.vec.shape == (ROWS_PER_GROUP, 3) and first.vec.dtype == np.float32
    assert first.img.shape == (ROWS_PER_GROUP, 4, 4, 3) and first.img.dtype == np.uint8
    np.testing.assert_array_equal(first.img[3], image_of(3))
    assert first.name.tolist() == [f"n{i}" for i in range(5)] and first.p.dtype.kind == "U"
    assert_no_leaks()


def test_plan_order_is_deterministic_with_threads(url):
    orders = []
    for _ in range(2):
        with make_reader(url, workers_count=4, seed=3, shuffle_rows=True) as reader:
            orders.append(_ids(reader))
    assert orders[0] == orders[1]


def test_schema_fields_regexes(url):
    with make_reader(url, schema_fields=["i.", "n.*", EngineSchema.vec]) as reader:
        assert next(reader)._fields == ("id", "name", "vec")
    with make_batch_reader(url, schema_fields=["(id|img)"]) as reader:
        assert next(reader)._fields == ("id", "img")
    with pytest.raises(ValueError, match="No fields match"):
        make_reader(url, schema_fields=["nothing"])


PREDICATES = [
    (in_set({3, 44}, "id"), {3, 44}),
    (in_lambda(["id"], lambda i: i % 7 == 0), set(range(0, ROWS, 7))),
    (in_negate(in_lambda(["id"], lambda i: i >= 5)), set(range(5))),
    (in_reduce([in_set(set(range(10)), "id"), in_lambda(["id"], lambda i: i % 2 == 1)], all), {1, 3, 5, 7, 9}),
    (in_reduce([in_set({1}, "id"), in_set({2}, "id")], any), {1, 2}),
    (in_intersection([4.0, 9.0], "vec"), {4, 9}),
    (in_lambda(["name", "id"], lambda name, i: name == f"n{i}" and i < 3), {0, 1, 2}),
]


@pytest.mark.parametrize("predicate, expected", PREDICATES)
def test_predicates_in_both_readers(url, predicate, expected):
    with make_reader(url, predicate=predicate, schema_fields=["id", "img"]) as reader:
        rows = list(reader)
        assert set(_ids(rows)) == expected and len(rows) == len(expected)
        assert rows[0]._fields == ("id", "img")
        assert reader.diagnostics["rows_dropped_by_predicate"] == ROWS - len(expected)
    with make_batch_reader(url, predicate=predicate, reader_pool_type="dummy") as reader:
        assert sorted(_batch_ids(reader)) == sorted(expected)


def test_pseudorandom_split_partitions_rows_in_both_readers(url):
    seen, seen_batch = [], []
    for i in range(3):
        predicate = in_pseudorandom_split([0.3, 0.3, 0.4], i, "name")
        with make_reader(url, predicate=predicate) as reader:
            seen.append(sorted(_ids(reader)))
        with make_batch_reader(url, predicate=predicate) as reader:
            seen_batch.append(sorted(_batch_ids(reader)))
    assert seen == seen_batch
    assert sorted(itertools.chain(*seen)) == list(range(ROWS)) and all(seen)


def test_partition_predicate_prunes_row_groups(url):
    with make_reader(url, predicate=in_set({"1"}, "p")) as reader:
        assert sorted(_ids(reader)) == list(range(30, 60))
        assert reader.diagnostics["row_groups_pruned_by_predicate"] == ROW_GROUPS // 2


def test_transform_in_both_readers(url):
    spec = TransformSpec(lambda row: {**row, "double": row["id"] * 2},
                         edit_fields=[edit_field("double", np.int64, ())], removed_fields=["img", "name"])
    with make_reader(url, transform_spec=spec, shuffle_row_groups=False, workers_count=2) as reader:
        assert list(reader.schema.fields) == ["p", "id", "vec", "double"]
        rows = list(reader)
    assert [r.double for r in rows] == [2 * i for i in range(ROWS)]
    assert rows[0]._fields == ("p", "id", "vec", "double")
    batch_spec = TransformSpec(lambda df: df.assign(id=df.id + 100, sum=df.vec.map(lambda v: float(v.sum()))),
                               edit_fields=[edit_field("sum", np.float64, ())], removed_fields=["img"])
    with make_batch_reader(url, transform_spec=batch_spec, shuffle_row_groups=False) as reader:
        batches = list(reader)
    assert _batch_ids(batches) == list(range(100, 100 + ROWS))
    assert batches[1].sum.tolist() == [3.0 * i for i in range(5, 10)] and batches[0].vec.shape == (5, 3)
    with make_reader(url, transform_spec=TransformSpec(selected_fields=["name", "id"])) as reader:
        assert next(reader)._fields == ("name", "id")


def test_transform_process_pool(url):
    spec = TransformSpec(_negate_id, edit_fields=[edit_field("id", np.int64, ())])
    with make_reader(url, transform_spec=spec, reader_pool_type="process", workers_count=2) as reader:
        assert sorted(_ids(reader)) == sorted(-i for i in range(ROWS))


def _negate_id(row):
    return {**row, "id": -row["id"]}


def test_filters_skip_row_groups_and_rows(url):
    with make_reader(url, filters=[("id", "<", 12)]) as reader:
        assert sorted(_ids(reader)) == list(range(12))
        d = reader.diagnostics
    assert d["row_groups_pruned_by_filters"] == ROW_GROUPS - 3 and d["rows_read"] == 15
    assert d["rows_filtered_out"] == 3 and d["items_read"] == 3
    with make_batch_reader(url, filters=[("p", "=", 1), ("id", ">=", 50)]) as reader:
        assert sorted(_batch_ids(reader)) == list(range(50, 60))
        assert reader.diagnostics["row_groups_pruned_by_filters"] == ROW_GROUPS - 2
    with make_reader(url, filters=[[("id", "<", 2)], [("id", ">", 57)]], schema_fields=["name"]) as reader:
        assert sorted(row.name for row in reader) == ["n0", "n1", "n58", "n59"]
        assert reader.diagnostics["items_read"] == 2


def test_epochs_forever_and_reset(url):
    with make_reader(url, num_epochs=3, seed=1) as reader:
        ids = _ids(reader)
    assert sorted(ids) == sorted(list(range(ROWS)) * 3)
    epochs = [ids[i * ROWS:(i + 1) * ROWS] for i in range(3)]
    assert all(sorted(e) == list(range(ROWS)) for e in epochs) and epochs[0] != epochs[1] != epochs[2]
    with make_batch_reader(url, num_epochs=None) as reader:
        assert len(list(itertools.islice(reader, 5 * ROW_GROUPS + 1))) == 5 * ROW_GROUPS + 1
    reader = make_reader(url, shuffle_row_groups=False, reader_pool_type="dummy")
    try:
        next(reader)
        with pytest.raises(NotImplementedError):
            reader.reset()
        assert len(list(reader)) == ROWS - 1 and reader.last_row_consumed
        reader.reset()
        assert _ids(reader) == list(range(ROWS))
    finally:
        reader.stop()
        reader.join()
    with pytest.raises(RuntimeError, match="stopped"):
        next(reader)


def test_seeds(url):
    def order(seed, **kw):
        with make_reader(url, seed=seed, shuffle_rows=True, **kw) as reader:
            return _ids(reader)
    assert order(0) == order(0) and order(0) != order(1) and order(None) != order(None)
    assert order(5) != list(range(ROWS))
    with make_reader(url, seed=5, shuffle_row_groups=False, shuffle_rows=True) as reader:
        ids = _ids(reader)
    groups = [ids[i:i + ROWS_PER_GROUP] for i in range(0, ROWS, ROWS_PER_GROUP)]
    assert [sorted(g) for g in groups] == [list(range(i, i + 5)) for i in range(0, ROWS, 5)]
    assert groups != [sorted(g) for g in groups]


def test_shuffle_buffer_mixes_row_groups(url):
    with make_reader(url, seed=2, shuffle_buffer_size=30, num_epochs=2) as reader:
        ids = _ids(reader)
    assert sorted(ids) == sorted(list(range(ROWS)) * 2)
    first = ids[:15]
    assert len({i // ROWS_PER_GROUP for i in first}) > 3, "rows of one window come from several row groups"
    with make_batch_reader(url, seed=2, shuffle_buffer_size=20) as reader:
        batches = list(reader)
    ids = _batch_ids(batches)
    assert sorted(ids) == list(range(ROWS)) and len({i // 5 for i in batches[0].id}) > 1


def test_url_list_trailing_slash_and_moved_dataset(url, tmp_path):
    root = url[len("file://"):]
    files = [f"file://{root}/p={k // 2}/part-{k}.parquet" for k in (0, 3)]
    with make_batch_reader(files, shuffle_row_groups=False) as reader:
        assert _batch_ids(reader) == list(range(15)) + list(range(45, 60))
    with make_reader(files, shuffle_row_groups=False) as reader:
        assert _ids(reader) == list(range(15)) + list(range(45, 60))
    with make_reader(url + "/") as reader:
        assert sorted(_ids(reader)) == list(range(ROWS))
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    with make_reader(str(moved), shuffle_row_groups=False, schema_fields=["id", "p"]) as reader:
        rows = list(reader)
    assert [int(r.id) for r in rows] == list(range(ROWS)) and rows[-1].p == "1"


@pytest.mark.parametrize("shard_count", [1, 2, 3, 4, 5])
def test_row_group_sharding_covers_every_row_once(url, shard_count):
    seen = []
    for shard in range(shard_count):
        with make_reader(url, cur_shard=shard, shard_count=shard_count, num_epochs=2) as reader:
            ids = _ids(reader)
        assert sorted(ids[:len(ids) // 2]) == sorted(ids[len(ids) // 2:])
        seen += ids[:len(ids) // 2]
    assert sorted(seen) == list(range(ROWS))


def test_row_group_sharding_with_shard_seed(url):
    seen = []
    for shard in range(5):
        with make_batch_reader(url, cur_shard=shard, shard_count=5, shard_seed=9) as reader:
            seen += _batch_ids(reader)
    assert sorted(seen) == list(range(ROWS))
    with pytest.raises(NoDataAvailableError):
        make_reader(url, cur_shard=0, shard_count=ROW_GROUPS + 1)


@pytest.mark.parametrize("shard_count", [1, 2, 3, 4, 5, 7, ROW_GROUPS + 1, ROWS + 3])
@pytest.mark.parametrize("remainder", ["drop", "pad"])
def test_equal_sharding(url, shard_count, remainder):
    per_shard = []
    for shard in range(shard_count):
        with make_reader(url, cur_shard=shard, shard_count=shard_count, shard_mode="equal",
                         shard_remainder=remainder, reader_pool_type="dummy", seed=shard) as reader:
            per_shard.append(_ids(reader))
    counts = {len(ids) for ids in per_shard}
    assert len(counts) == 1, f"unequal shards: {[len(ids) for ids in per_shard]}"
    union = [i for ids in per_shard for i in ids]
    if remainder == "drop":
        assert len(union) == ROWS - ROWS % shard_count and len(set(union)) == len(union)
    else:
        assert set(union) == set(range(ROWS)) and len(union) == -(-ROWS // shard_count) * shard_count


def test_equal_sharding_batches(url):
    sizes = []
    for shard in range(7):
        with make_batch_reader(url, cur_shard=shard, shard_count=7, shard_mode="equal") as reader:
            sizes.append(sum(len(b.id) for b in reader))
    assert sizes == [ROWS // 7] * 7


RESUME_CASES = [
    dict(seed=4, shuffle_rows=True, num_epochs=2),
    dict(seed=0, shuffle_buffer_size=25, num_epochs=2, workers_count=3),
    dict(seed=7, cur_shard=1, shard_count=3, shard_mode="equal", shuffle_rows=True, num_epochs=2),
    dict(seed=1, shuffle_row_drop_partitions=2, predicate=in_lambda(["id"], lambda i: i % 3 != 0)),
]


@pytest.mark.parametrize("kwargs", RESUME_CASES)
def test_resume_gives_the_uninterrupted_sequence(url, kwargs):
    with make_reader(url, **kwargs) as reader:
        full = _ids(reader)
    for k in (0, 1, 7, len(full) // 2 + 3, len(full) - 1, len(full)):
        with make_reader(url, **kwargs) as reader:
            head = [int(next(reader).id) for _ in range(k)]
            state = json.loads(json.dumps(reader.state_dict()))
        with make_reader(url, **{**kwargs, "seed": None}, resume_from=state) as resumed:
            assert head + _ids(resumed) == full, f"resume after {k} rows"


def test_resume_batches_and_load_state_dict(url):
    kwargs = dict(seed=3, shuffle_rows=True, num_epochs=2)
    with make_batch_reader(url, **kwargs) as reader:
        full = _batch_ids(reader)
    with make_batch_reader(url, **kwargs) as reader:
        head = [int(i) for _ in range(5) for i in next(reader).id]
        state = reader.state_dict()
    with make_batch_reader(url, **kwargs) as reader:
        next(reader)
        reader.load_state_dict(state)
        assert head + _batch_ids(reader) == full
    with make_reader(url) as reader, pytest.raises(ValueError, match="other kind"):
        reader.load_state_dict(state)
    with make_batch_reader(url, cur_shard=0, shard_count=2) as reader, pytest.raises(ValueError, match="different"):
        reader.load_state_dict(state)


def test_local_disk_cache(url, tmp_path):
    kwargs = dict(cache_type="local-disk", cache_location=str(tmp_path / "cache"), cache_size_limit=10 ** 8,
                  schema_fields=["id", "vec", "img"], shuffle_row_groups=False)
    with make_reader(url, **kwargs) as reader:
        first = list(reader)
        assert reader.diagnostics["cache_hits"] == 0
    with make_reader(url, **kwargs) as reader:
        second = list(reader)
        assert reader.diagnostics["cache_hits"] == ROW_GROUPS and reader.diagnostics["rows_read"] == 0
    assert [int(r.id) for r in first] == [int(r.id) for r in second] == list(range(ROWS))
    np.testing.assert_array_equal(second[9].img, image_of(9))


def test_weighted_sampling_reader(url):
    readers = [make_reader(url, predicate=in_lambda(["id"], lambda i: i < 30), num_epochs=None, seed=1),
               make_reader(url, predicate=in_lambda(["id"], lambda i: i >= 30), num_epochs=None, seed=2)]
    with WeightedSamplingReader(readers, [0.8, 0.2], seed=0) as mixed:
        ids = [int(row.id) for row in itertools.islice(mixed, 400)]
        assert mixed.schema is readers[0].schema and not mixed.batched_output
    low = sum(i < 30 for i in ids)
    assert 270 < low < 370
    assert_no_leaks()
    with make_reader(url, schema_fields=["id"]) as a, make_reader(url, schema_fields=["name"]) as b:
        with pytest.raises(ValueError, match="same fields"):
            WeightedSamplingReader([a, b], [0.5, 0.5])


def test_diagnostics_and_options(url):
    with make_batch_reader(url, workers_count=3, convert_early_to_numpy=True) as reader:
        list(reader)
        d = reader.diagnostics
    assert d["row_groups_total"] == ROW_GROUPS and d["items_read"] == ROW_GROUPS and d["rows_emitted"] == ROWS
    assert d["workers_count"] == min(3, os.cpu_count()) and d["footer_reads"] <= 4  # local: at most one per core
    with pytest.raises(ValueError, match="reader_pool_type"):
        make_reader(url, reader_pool_type="gpu")
    with pytest.raises(ValueError, match="shard_mode"):
        make_reader(url, cur_shard=0, shard_count=2, shard_mode="bogus")
    with pytest.raises(ValueError, match="num_epochs"):
        make_reader(url, num_epochs=0)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_a_lone_row_group_is_decoded_on_every_core_and_errors_reach_the_caller():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    from petastorm.reader_impl.decoding import _run_sliced

    png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8))[1]
    threads = set()

    def decode(i):
        threads.add(threading.get_ident())
        for _ in range(20):
            cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
        return i

    with ThreadPoolExecutor(2) as executor:
        assert _run_sliced(executor, 64, decode) == list(range(64))
        assert threading.get_ident() in threads and len(threads) > 1

        def failing(i):
            if i == 5:
                raise ValueError("slice 5 is corrupt")
            return decode(i)

        with pytest.raises(ValueError, match="slice 5"):
            _run_sliced(executor, 64, failing)


def test_slices_stay_on_the_calling_thread_while_every_core_has_a_busy_reader_thread():
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from petastorm.reader_impl.assembly import shares_decoding as _shares_decoding
    from petastorm.reader_impl.decoding import _run_sliced, busy_thread

    cores = os.cpu_count() or 1
    entered, release = threading.Barrier(cores), threading.Event()

    def other_worker():  # a reader worker reading or decoding its own row group
        with busy_thread():
            entered.wait()
            release.wait()

    others = [threading.Thread(target=other_worker) for _ in range(cores - 1)]
    for t in others:
        t.start()
    threads = set()
    try:
        with busy_thread():  # this thread is a reader worker too: nested counting counts it once
            entered.wait()
            with ThreadPoolExecutor(2) as executor:
                assert _run_sliced(executor, 16, lambda i: threads.add(threading.get_ident()) or i) == list(range(16))
    finally:
        release.set()
        for t in others:
            t.join()
    assert threads == {threading.get_ident()}
    # Worker processes cannot see each other's threads: helpers only while there are no more processes than cores.
    assert _shares_decoding(SimpleNamespace(kind="thread", workers_count=10))
    assert _shares_decoding(SimpleNamespace(kind="process", workers_count=cores))
    assert not _shares_decoding(SimpleNamespace(kind="process", workers_count=cores + 1))
