"""The row-group caches: null pass-through, the bounded local-disk cache (LRU, atomic writes, ownership of its
directory, concurrency from threads and processes) and cache keys."""
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from petastorm.cache import (MARKER_FILE, CacheLocationError, LocalDiskCache, NullCache, cache_key, make_cache)
from petastorm.transform import TransformSpec, edit_field


def _table(seed: int, rows: int = 1000) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"id": np.arange(rows) + seed * rows, "x": rng.random(rows, dtype=np.float32),
                     "s": [f"row-{seed}-{i}" for i in range(rows)]})


def _files(root) -> list:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


class _Counter:
    def __init__(self, value):
        self.value = value
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.value


# -- make_cache and the null cache ---------------------------------------------------------------------------

def test_null_cache_always_fills():
    for cache in (make_cache("null"), make_cache(None), NullCache()):
        fill = _Counter(42)
        assert cache.get("k", fill) == 42 and cache.get("k", fill) == 42
        assert fill.calls == 2
        cache.cleanup()


@pytest.mark.parametrize("kwargs, message", [
    (dict(cache_type="memory"), "Unknown cache_type"),
    (dict(cache_type="local-disk", size_limit=10), "needs cache_location"),
    (dict(cache_type="local-disk", location="LOC"), "needs cache_size_limit"),
    (dict(cache_type="local-disk", location="LOC", size_limit=0), "positive number of bytes"),
    (dict(cache_type="local-disk", location="LOC", size_limit=10.5), "positive number of bytes"),
    (dict(cache_type="local-disk", location="LOC", size_limit=10, row_size_estimate=-1), "cache_row_size_estimate"),
    (dict(cache_type="local-disk", location="LOC", size_limit=10, extra_settings={"bogus": 1}), "bogus"),
    (dict(cache_type="local-disk", location="LOC", size_limit=10, extra_settings=[1]), "must be a dict"),
    (dict(cache_type="local-disk", location="s3://bucket/cache", size_limit=10), "local directory"),
])
def test_make_cache_validates(tmp_path, kwargs, message):
    if kwargs.get("location") == "LOC":
        kwargs["location"] = str(tmp_path / "c")
    with pytest.raises(ValueError, match=message):
        make_cache(**kwargs)


def test_make_cache_local_disk_options(tmp_path):
    cache = make_cache("local-disk", f"file://{tmp_path}/c", 10 ** 6, 100,
                       {"cleanup": True, "shards": 6})  # 'shards' is the original's diskcache setting: ignored
    assert isinstance(cache, LocalDiskCache)
    assert cache.path == str(tmp_path / "c") and cache.cleanup_on_stop
    assert os.path.isfile(tmp_path / "c" / MARKER_FILE)
    with pytest.warns(UserWarning, match="fewer than 100 rows"):
        make_cache("local-disk", tmp_path / "d", 1000, 100)


# -- values and hits ------------------------------------------------------------------------------------------

def test_round_trips_tables_batches_and_numpy_dicts(tmp_path):
    cache = make_cache("local-disk", tmp_path / "c", 10 ** 7)
    table = _table(1).replace_schema_metadata({b"k": b"v"})
    batch = _table(2).to_batches()[0]
    arrays = {"tensor": np.arange(60, dtype=np.float32).reshape(5, 3, 4), "label": np.array(["a", "bcd"]),
              "scalar": np.array(3.5)}
    for key, value in (("t", table), ("b", batch), ("d", arrays)):
        assert cache.get(key, lambda: value) is value  # a miss returns fill()'s own value
        fill = _Counter(None)
        cached = cache.get(key, fill)
        assert fill.calls == 0
        if isinstance(value, dict):
            assert list(cached) == list(value)
            for name in value:
                assert cached[name].dtype == value[name].dtype
                np.testing.assert_array_equal(cached[name], value[name])
        else:
            assert type(cached) is type(value) and cached.equals(value)
            assert cached.schema.metadata == value.schema.metadata
    assert (cache.hits, cache.misses) == (3, 3)
    assert len(cache) == 3
    assert {os.path.splitext(f)[1] for f in _files(tmp_path / "c")} == {".arrow", ".npz", ""}


def test_round_trips_object_columns_without_pickle(tmp_path):
    cache = make_cache("local-disk", tmp_path / "c", 10 ** 7)

    def objects(*values):
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
        return array

    value = {
        "name": objects("a", None, "ünïcode", "", np.str_("numpy")),
        "raw": objects(b"x\x00", None, b"", b"\xff", np.bytes_(b"np\x00")),
        "ragged": objects(np.arange(3, dtype=np.float32), None, np.zeros(0, np.float32), np.ones(1, np.float32),
                          np.float32([5, 6])),
        "images": objects(np.ones((2, 3), np.uint8), np.zeros((1, 4), np.uint8), None, np.full((3, 1), 7, np.uint8),
                          np.ones((1, 1), np.uint8)),
        "nulls": objects(None, None, None, None, None),
        "plain": np.arange(5),
    }
    cache.get("k", lambda: value)
    cached = cache.get("k", _Counter(None))
    assert list(cached) == list(value)
    for name, original in value.items():
        assert cached[name].dtype == original.dtype and len(cached[name]) == len(original), name
        for got, want in zip(cached[name], original):
            if isinstance(want, np.ndarray):
                assert got.dtype == want.dtype and got.shape == want.shape and (got == want).all(), name
            else:
                assert got == want and type(got) is type(want), name
    with np.load(next((tmp_path / "c").rglob("*.npz")), allow_pickle=False) as npz:  # no pickled object inside
        assert all(not npz[name].dtype.hasobject for name in npz.files)


def test_entries_persist_across_cache_objects(tmp_path):
    make_cache("local-disk", tmp_path / "c", 10 ** 7).get("k", lambda: _table(3))
    fill = _Counter(None)
    assert make_cache("local-disk", tmp_path / "c", 10 ** 7).get("k", fill).equals(_table(3))
    assert fill.calls == 0


def test_uncacheable_values_are_returned_uncached(tmp_path):
    cache = make_cache("local-disk", tmp_path / "c", 10 ** 7)
    mixed = np.empty(2, dtype=object)
    mixed[:] = ["text", np.arange(2)]
    for value in ([{"a": 1}], {"o": np.array([object(), 1], dtype=object)}, {"m": mixed},
                  {"r": np.array([np.arange(2), np.arange(2.0)], dtype=object)}, "text"):
        fill = _Counter(value)
        with pytest.warns(UserWarning, match="returned uncached"):
            assert cache.get(f"k{id(value)}", fill) is value
        cache.get(f"k{id(value)}", fill)
        assert fill.calls == 2
    assert len(cache) == 0


def test_fill_error_propagates_and_stores_nothing(tmp_path):
    cache = make_cache("local-disk", tmp_path / "c", 10 ** 7)

    def fail():
        raise IOError("disk on fire")

    with pytest.raises(IOError, match="disk on fire"):
        cache.get("k", fail)
    assert _files(tmp_path / "c") == [MARKER_FILE]


def test_corrupt_entry_is_refilled(tmp_path):
    cache = make_cache("local-disk", tmp_path / "c", 10 ** 7)
    cache.get("k", lambda: _table(1))
    [entry] = [f for f in _files(tmp_path / "c") if f.endswith(".arrow")]
    with open(tmp_path / "c" / entry, "r+b") as f:
        f.truncate(100)
    fill = _Counter(_table(1))
    assert cache.get("k", fill).equals(_table(1)) and fill.calls == 1
    assert cache.get("k", fill).equals(_table(1)) and fill.calls == 1


# -- size limit and LRU ------------------------------------------------------------------------------------

def test_size_limit_evicts_least_recently_used(tmp_path):
    probe = make_cache("local-disk", tmp_path / "probe", 10 ** 8)
    probe.get("p", lambda: _table(0))
    entry_size = probe.size_bytes()
    cache = make_cache("local-disk", tmp_path / "c", int(entry_size * 3.5))
    for i in range(3):
        cache.get(f"k{i}", lambda i=i: _table(i))
        time.sleep(0.02)  # distinct modification times
    cache.get("k0", _Counter(None))  # a hit makes k0 the most recently used
    time.sleep(0.02)
    cache.get("k3", lambda: _table(3))  # over the limit: k1 (least recently used) goes
    assert cache.size_bytes() <= cache.size_limit_bytes and len(cache) == 3
    for key, present in (("k0", True), ("k2", True), ("k3", True), ("k1", False)):  # the miss last
        fill = _Counter(_table(int(key[1])))
        cache.get(key, fill)
        assert fill.calls == (0 if present else 1), key


def test_entry_larger_than_limit_is_not_stored(tmp_path):
    cache = make_cache("local-disk", tmp_path / "c", 1000)
    with pytest.warns(UserWarning, match="exceeds cache_size_limit"):
        assert cache.get("big", lambda: _table(0)).num_rows == 1000
    assert _files(tmp_path / "c") == [MARKER_FILE]


# -- ownership of the location ----------------------------------------------------------------------------

def test_refuses_a_non_empty_directory_it_does_not_own(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep me")
    with pytest.raises(CacheLocationError, match="not a Petastorm cache directory"):
        make_cache("local-disk", tmp_path / "data", 10 ** 6)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheLocationError, match="not a directory"):
        make_cache("local-disk", tmp_path / "file", 10 ** 6)
    assert (tmp_path / "data" / "precious.txt").read_text() == "keep me"


def test_cleanup_removes_only_what_it_created(tmp_path):
    # A directory the cache created (with missing parents) is removed; its parents stay.
    cache = make_cache("local-disk", tmp_path / "a" / "b" / "cache", 10 ** 7)
    cache.get("k", lambda: _table(1))
    cache.cleanup()
    assert not (tmp_path / "a" / "b" / "cache").exists() and (tmp_path / "a" / "b").is_dir()
    cache.cleanup()  # twice is fine

    # An empty directory that already existed is emptied, not removed.
    (tmp_path / "mine").mkdir()
    with make_cache("local-disk", tmp_path / "mine", 10 ** 7) as cache:
        cache.get("k", lambda: _table(1))
    assert (tmp_path / "mine").is_dir() and os.listdir(tmp_path / "mine") == []


@pytest.mark.parametrize("where", ["root", "entries", "shard"])
def test_cleanup_and_eviction_refuse_when_other_files_appear(tmp_path, where):
    probe = make_cache("local-disk", tmp_path / "probe", 10 ** 8)
    probe.get("p", lambda: _table(0))
    cache = make_cache("local-disk", tmp_path / "c", int(probe.size_bytes() * 1.5))
    cache.get("k0", lambda: _table(0))
    [entry] = [f for f in _files(tmp_path / "c") if f.endswith(".arrow")]
    directory = {"root": tmp_path / "c", "entries": tmp_path / "c" / "entries",
                 "shard": (tmp_path / "c" / entry).parent}[where]
    (directory / "notes.txt").write_text("someone else's")
    before = _files(tmp_path / "c")
    with pytest.raises(CacheLocationError, match="did not write"):
        cache.cleanup()
    assert _files(tmp_path / "c") == before
    if where != "root":  # eviction only scans its entries directory
        with pytest.raises(CacheLocationError, match="Refusing to evict"):
            cache.get("k1", lambda: _table(1))
    assert (directory / "notes.txt").read_text() == "someone else's"


def test_cleanup_refuses_without_marker_and_never_touches_foreign_files(tmp_path):
    cache = make_cache("local-disk", tmp_path / "c", 10 ** 7)
    cache.get("k", lambda: _table(1))
    os.unlink(tmp_path / "c" / MARKER_FILE)
    before = _files(tmp_path / "c")
    cache.cleanup()  # no marker: nothing is ours any more, nothing is deleted
    assert _files(tmp_path / "c") == before
    with pytest.raises(CacheLocationError, match="not a Petastorm cache directory"):
        make_cache("local-disk", tmp_path / "c", 10 ** 7)


def test_bad_marker_is_refused(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / MARKER_FILE).write_text("{}")
    with pytest.raises(CacheLocationError, match="not a Petastorm cache marker"):
        make_cache("local-disk", tmp_path / "c", 10 ** 7)


# -- concurrency -------------------------------------------------------------------------------------------

def _hammer(location: str, size_limit: int, worker: int, rounds: int) -> list:
    cache = LocalDiskCache(location, size_limit)
    errors = []
    rng = np.random.default_rng(worker)
    for _ in range(rounds):
        i = int(rng.integers(10))
        value = cache.get(f"key-{i}", lambda i=i: _table(i, rows=500))
        if not value.equals(_table(i, rows=500)):
            errors.append(f"worker {worker}: wrong value for key-{i}")
        arrays = cache.get(f"arr-{i}", lambda i=i: {"a": np.full((50, 3), i, dtype=np.int32)})
        if not (arrays["a"] == i).all():
            errors.append(f"worker {worker}: wrong arrays for arr-{i}")
    return errors


def _entry_size(tmp_path) -> int:
    probe = make_cache("local-disk", tmp_path / "probe", 10 ** 8)
    probe.get("p", lambda: _table(0, rows=500))
    return probe.size_bytes()


def test_two_threads_share_a_cache(tmp_path):
    limit = _entry_size(tmp_path) * 5
    location = str(tmp_path / "c")
    results = []
    threads = [threading.Thread(target=lambda w=w: results.append(_hammer(location, limit, w, 60)))
               for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and results == [[], []]
    cache = LocalDiskCache(location, limit)
    assert 0 < cache.size_bytes() <= limit
    assert not [f for f in _files(location) if ".tmp-" in f]


def test_two_processes_share_a_cache(tmp_path):
    limit = _entry_size(tmp_path) * 5
    location = str(tmp_path / "c")
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # both create the new location at once
        results = pool.starmap(_hammer, [(location, limit, w, 60) for w in range(2)])
    assert results == [[], []]
    cache = LocalDiskCache(location, limit)
    assert 0 < cache.size_bytes() <= limit
    assert not [f for f in _files(location) if ".tmp-" in f]
    cache.cleanup()
    assert not os.path.exists(location)


# -- keys --------------------------------------------------------------------------------------------------

def _double(row):
    return row


def test_cache_key_distinguishes_what_it_should():
    base = cache_key("file:///data/ds", 3, ["a", "b"], None)
    assert len(base) == 64 and int(base, 16) >= 0
    assert cache_key("file:///data/ds/", 3, ["a", "b"], None) == base
    assert cache_key(["file:///data/ds"], 3, ["a", "b"], None) == base
    different = [
        cache_key("file:///data/other", 3, ["a", "b"], None),
        cache_key("file:///data/ds", 4, ["a", "b"], None),
        cache_key("file:///data/ds", 3, ["a"], None),
        cache_key("file:///data/ds", 3, ["b", "a"], None),
        cache_key("file:///data/ds", 3, None, None),
        cache_key("file:///data/ds", 3, ["a", "b"], TransformSpec(_double)),
        cache_key("file:///data/ds", 3, ["a", "b"], TransformSpec(removed_fields=["b"])),
        cache_key("file:///data/ds", 3, ["a", "b"], None, extra="batch"),
    ]
    assert len({base, *different}) == len(different) + 1
    with pytest.raises(TypeError):
        cache_key("file:///data/ds", "3", ["a"], None)


def test_cache_key_follows_transform_code_and_captured_values():
    def make(scale):
        return lambda row: row * scale

    spec = lambda f, **kw: TransformSpec(f, **kw)  # noqa: E731
    assert cache_key("d", 0, ["a"], spec(make(2))) == cache_key("d", 0, ["a"], spec(make(2)))
    assert cache_key("d", 0, ["a"], spec(make(2))) != cache_key("d", 0, ["a"], spec(make(3)))
    assert cache_key("d", 0, ["a"], spec(lambda r: r + 1)) != cache_key("d", 0, ["a"], spec(lambda r: r + 2))
    edits = [edit_field("a", np.float32, (2,), False)]
    assert cache_key("d", 0, ["a"], spec(_double, edit_fields=edits)) != \
        cache_key("d", 0, ["a"], spec(_double, edit_fields=[edit_field("a", np.float64, (2,), False)]))


def test_cache_key_is_stable_across_processes():
    code = ("from petastorm.cache import cache_key; from petastorm.transform import TransformSpec\n"
            "import numpy as np\n"
            "offset = 7\n"
            "def f(row, k=2):\n    return row + offset * k\n"
            "print(cache_key('s3://b/ds', 5, ['x'], TransformSpec(np.sqrt)), cache_key('s3://b/ds', 5, ['x'], "
            "TransformSpec(f)))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0].split()) == 2


# -- the readers with cache_type='local-disk' ----------------------------------------------------------------

@pytest.fixture(scope="module")
def small_ds(tmp_path_factory):
    from pyspark.sql.types import LongType

    from petastorm.codecs import NdarrayCodec, ScalarCodec
    from petastorm.etl.dataset_metadata import write_dataset_metadata
    from petastorm.unischema import Unischema, UnischemaField
    import pyarrow.parquet as pq

    schema = Unischema("CacheSchema", [
        UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
        UnischemaField("vec", np.float32, (3,), NdarrayCodec(), False),
    ])
    root = tmp_path_factory.mktemp("cached") / "ds"
    root.mkdir()
    field = schema.fields["vec"]
    ids = np.arange(40)
    pq.write_table(pa.table({"id": ids, "vec": [field.codec.encode(field, np.full(3, i, np.float32)) for i in ids]}),
                   root / "part-0.parquet", row_group_size=10)
    write_dataset_metadata(str(root), schema)
    return f"file://{root}"


def _read_all(factory, url, **kwargs):
    with factory(url, shuffle_row_groups=False, **kwargs) as reader:
        items = list(reader)
        diagnostics = dict(reader.diagnostics)
    return items, diagnostics


@pytest.mark.parametrize("batched, pool", [(False, "thread"), (True, "thread"), (False, "process"),
                                           (True, "dummy")])
def test_readers_fill_then_hit_the_cache(small_ds, tmp_path, batched, pool):
    from petastorm import make_batch_reader, make_reader

    factory = make_batch_reader if batched else make_reader
    location = tmp_path / "cache"
    options = dict(cache_type="local-disk", cache_location=str(location), cache_size_limit=10 ** 8,
                   cache_row_size_estimate=100, reader_pool_type=pool, workers_count=2)
    plain, _ = _read_all(factory, small_ds)
    first, d1 = _read_all(factory, small_ds, **options)
    second, d2 = _read_all(factory, small_ds, **options)
    if batched:
        plain, first, second = ([int(i) for b in items for i in b.id] for items in (plain, first, second))
    else:
        for row in second:
            np.testing.assert_array_equal(row.vec, np.full(3, row.id, np.float32))
        plain, first, second = ([int(r.id) for r in items] for items in (plain, first, second))
    assert plain == first == second == list(range(40))
    assert d1.get("cache_hits", 0) == 0 and d2.get("cache_hits") == d2.get("cache_requests") == 4
    entries = len(LocalDiskCache(str(location), 10 ** 8))
    assert entries == 4
    # Another column selection is another key.
    _read_all(factory, small_ds, schema_fields=["id"], **options)
    assert len(LocalDiskCache(str(location), 10 ** 8)) == 8


def test_reader_cleanup_setting_removes_the_cache(small_ds, tmp_path):
    from petastorm import make_reader

    location = tmp_path / "cache"
    rows, _ = _read_all(make_reader, small_ds, cache_type="local-disk", cache_location=str(location),
                        cache_size_limit=10 ** 8, cache_extra_settings={"cleanup": True})
    assert len(rows) == 40 and not location.exists()


def test_reader_refuses_a_foreign_cache_location(small_ds, tmp_path):
    from petastorm import make_reader

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CacheLocationError):
        make_reader(small_ds, cache_type="local-disk", cache_location=str(tmp_path), cache_size_limit=10 ** 8)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_readers_cache_nullable_strings_and_ragged_tensors(tmp_path):
    from pyspark.sql.types import LongType, StringType

    from petastorm import make_batch_reader, make_reader
    from petastorm.codecs import NdarrayCodec, ScalarCodec
    from petastorm.etl.dataset_metadata import write_dataset_metadata
    from petastorm.unischema import Unischema, UnischemaField
    import pyarrow.parquet as pq

    schema = Unischema("Ragged", [
        UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
        UnischemaField("name", np.str_, (), ScalarCodec(StringType()), True),
        UnischemaField("var", np.float32, (None,), NdarrayCodec(), True),
    ])
    root = tmp_path / "ds"
    root.mkdir()
    field = schema.fields["var"]
    pq.write_table(pa.table({
        "id": np.arange(6), "name": ["a", None, "c", "d", "e", "f"],
        "var": [field.codec.encode(field, np.arange(i, dtype=np.float32)) if i != 2 else None for i in range(6)],
    }), root / "part-0.parquet", row_group_size=3)
    write_dataset_metadata(str(root), schema)
    for factory in (make_reader, make_batch_reader):
        outputs = []
        for run in range(3):
            options = dict(cache_type="local-disk", cache_location=str(tmp_path / factory.__name__),
                           cache_size_limit=10 ** 7) if run else {}
            with factory(str(root), shuffle_row_groups=False, **options) as reader:
                outputs.append(repr(list(reader)))
                hits = reader.diagnostics.get("cache_hits")
        assert outputs[0] == outputs[1] == outputs[2], factory.__name__
        assert hits == 2, factory.__name__
