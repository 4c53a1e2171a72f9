"""The original's helper modules under their 0.13.1 paths: test_util (ReaderMock, shuffling analysis), generator,
namedtuple_gt_255_fields, pyarrow_helpers, the shuffling buffers, local_disk_cache and tf_utils' helpers."""
import datetime
import decimal
import pickle
import warnings

import numpy as np
import pyarrow as pa
import pytest

from petastorm import cache, make_reader
from petastorm.codecs import NdarrayCodec, ScalarCodec
from petastorm.generator import LIST_SIZE, generate_datapoint, rand
from petastorm.local_disk_cache import CacheBase, LocalDiskCache
from petastorm.namedtuple_gt_255_fields import namedtuple_gt_255_fields
from petastorm.ngram import NGram
from petastorm.pyarrow_helpers.batching_table_queue import BatchingTableQueue
from petastorm.reader_impl.shuffling_buffer import NoopShufflingBuffer, RandomShufflingBuffer, ShufflingBufferBase
from petastorm.test_util.reader_mock import ReaderMock, schema_data_generator_example
from petastorm.test_util.shuffling_analysis import compute_correlation_distribution, generate_shuffle_analysis_dataset
from petastorm.tf_utils import (_numpy_to_tf_dtypes, _sanitize_field_tf_types, date_to_nsec_from_epoch,
                                make_namedtuple_tf_ngram, make_petastorm_dataset, tf_tensors)
from petastorm.unischema import Unischema, UnischemaField, _new_gt_255_compatible_namedtuple

MockSchema = Unischema("MockSchema", [
    UnischemaField("id", np.int32, (), None, False),
    UnischemaField("u16", np.uint16, (), None, False),
    UnischemaField("matrix", np.float32, (None, 3), NdarrayCodec(), False),
    UnischemaField("dec", decimal.Decimal, (), None, False),
    UnischemaField("name", np.str_, (), None, False),
])
TorchSchema = Unischema("TorchSchema", [
    UnischemaField("id", np.int64, (), None, False),
    UnischemaField("vec", np.float32, (4,), NdarrayCodec(), False),
    UnischemaField("flag", np.bool_, (), None, False),
])


def _counting_generator():
    counter = iter(range(10 ** 9))

    def generate(schema):
        i = next(counter)
        return {"id": np.int64(i), "vec": np.full(4, i, np.float32), "flag": np.bool_(i % 2)}

    return generate


# -- ReaderMock ----------------------------------------------------------------------------------------------------
def test_reader_mock_rows_follow_the_schema():
    with ReaderMock(MockSchema, schema_data_generator_example) as reader:
        assert reader.batched_output is False and reader.ngram is None and reader.schema is MockSchema
        rows = [next(reader), reader.next(), reader.fetch()] + [r for _, r in zip(range(3), reader)]
        reader.stop()
        reader.join()
    assert len(rows) == 6
    for row in rows:
        assert row._fields == ("id", "u16", "matrix", "dec", "name")
        assert row.dec == decimal.Decimal("0.0") and isinstance(row.dec, decimal.Decimal)
        assert row.matrix.shape == (10, 3) and row.matrix.dtype == np.float32 and not row.matrix.any()
        assert row.id.dtype == np.int32 and row.id.shape == () and row.u16.dtype == np.uint16
        assert row.name.dtype.type is np.str_


def test_reader_mock_rejects_ngram():
    ngram = NGram({0: [TorchSchema.id], 1: [TorchSchema.id]}, delta_threshold=1, timestamp_field=TorchSchema.id)
    with pytest.raises(ValueError, match="not supported"):
        ReaderMock(TorchSchema, _counting_generator(), ngram=ngram)


def test_reader_mock_through_make_petastorm_dataset():
    tf = pytest.importorskip("tensorflow")
    reader = ReaderMock(MockSchema, schema_data_generator_example)
    rows = list(make_petastorm_dataset(reader).take(3))
    assert len(rows) == 3
    first = rows[0]
    assert first.id.dtype == tf.int32 and first.u16.dtype == tf.int32  # uint16 promoted as in the original
    assert first.matrix.shape == (10, 3) and first.matrix.dtype == tf.float32
    assert first.dec.numpy() == b"0" and first.name.numpy() == b""

    counting = ReaderMock(TorchSchema, _counting_generator())
    ids = [int(r.id) for r in make_petastorm_dataset(counting).take(5)]
    assert ids == [0, 1, 2, 3, 4]


def test_reader_mock_through_tf_tensors():
    tf = pytest.importorskip("tensorflow")
    with tf.Graph().as_default():
        reader = ReaderMock(TorchSchema, _counting_generator())
        tensors = tf_tensors(reader)
        for name, field in TorchSchema.fields.items():
            assert getattr(tensors, name).dtype == _numpy_to_tf_dtypes(field.numpy_dtype)
            assert len(getattr(tensors, name).shape) == len(field.shape)
        with tf.compat.v1.Session() as session:
            rows = [session.run(tensors) for _ in range(4)]
    assert [int(r.id) for r in rows] == [0, 1, 2, 3]
    np.testing.assert_array_equal(rows[2].vec, np.full(4, 2, np.float32))


def test_reader_mock_through_pytorch_dataloader():
    torch = pytest.importorskip("torch")
    from petastorm.pytorch import DataLoader  # needs torch

    with DataLoader(ReaderMock(TorchSchema, _counting_generator()), batch_size=4) as loader:
        batches = [b for _, b in zip(range(3), loader)]
    assert [b["id"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert batches[1]["vec"].shape == (4, 4) and batches[1]["vec"].dtype == torch.float32
    assert batches[0]["flag"].dtype == torch.uint8  # bool promoted as in the original

    with DataLoader(ReaderMock(TorchSchema, _counting_generator()), batch_size=5, shuffling_queue_capacity=20,
                    seed=3) as loader:
        ids = [i for _, b in zip(range(6), loader) for i in b["id"].tolist()]
    assert len(set(ids)) == 30 and ids != sorted(ids)
    assert min(ids[:5]) >= 0 and max(ids) < 50  # a row comes out once the buffer holds 20 rows


def test_reader_mock_with_decimals_through_dataloader():
    pytest.importorskip("torch")
    from petastorm.pytorch import DataLoader  # needs torch

    schema = MockSchema.create_schema_view([MockSchema.id, MockSchema.matrix, MockSchema.dec])
    with DataLoader(ReaderMock(schema, schema_data_generator_example), batch_size=2) as loader:
        batch = next(iter(loader))
    assert batch["dec"] == [decimal.Decimal("0.0")] * 2 and batch["matrix"].shape == (2, 10, 3)


# -- generator -----------------------------------------------------------------------------------------------------
def test_generate_datapoint_types_and_shapes():
    assert LIST_SIZE == 13 and rand is np.random.rand
    schema = Unischema("G", [
        UnischemaField("i64", np.int64, (), None, False),
        UnischemaField("u8", np.uint8, (2, None), None, False),
        UnischemaField("f32", np.float32, (None, 3), None, False),
        UnischemaField("flag", np.bool_, (50,), None, False),
        UnischemaField("text", np.str_, (), None, False),
        UnischemaField("dec", decimal.Decimal, (), None, False),
    ])
    np.random.seed(5)
    point = generate_datapoint(schema)
    np.random.seed(5)
    assert generate_datapoint(schema)["i64"] == point["i64"]  # numpy's global generator: reproducible
    assert set(point) == set(schema.fields)
    assert point["i64"].dtype == np.int64 and point["i64"].shape == ()
    assert point["u8"].dtype == np.uint8 and point["u8"].shape == (2, LIST_SIZE)
    assert point["f32"].dtype == np.float32 and point["f32"].shape == (LIST_SIZE, 3)
    assert ((point["f32"] >= 0) & (point["f32"] < 1)).all()
    assert point["flag"].dtype == np.bool_ and point["flag"].any() and not point["flag"].all()
    assert point["text"].dtype.kind == "U" and 0 <= float(point["text"]) < 1
    assert isinstance(point["dec"], decimal.Decimal) and 0 <= point["dec"] < 1
    wide = [int(generate_datapoint(schema)["i64"]) for _ in range(20)]
    assert max(abs(v) for v in wide) > 2 ** 40  # integers span the type's range


# -- namedtuple_gt_255_fields --------------------------------------------------------------------------------------
Wide = None


def test_namedtuple_gt_255_fields():
    global Wide

    names = [f"f{i}" for i in range(300)]
    Wide = namedtuple_gt_255_fields("Wide", names)
    assert Wide.__module__ == __name__ and Wide._fields == tuple(names)
    row = Wide(*range(300))
    assert row.f299 == 299 and row._asdict()["f7"] == 7 and row._replace(f0=-1)[0] == -1
    assert pickle.loads(pickle.dumps(row)) == row
    renamed = namedtuple_gt_255_fields("R", "a, a, class", rename=True, module="somewhere")
    assert renamed._fields == ("a", "_1", "_2") and renamed.__module__ == "somewhere"
    with pytest.raises(ValueError):
        namedtuple_gt_255_fields("Bad", ["ok", "not ok"])
    assert len(_new_gt_255_compatible_namedtuple("V", names)._fields) == 300


# -- pyarrow_helpers -----------------------------------------------------------------------------------------------
def test_batching_table_queue_exact_batches_across_tables():
    queue = BatchingTableQueue(4)
    assert queue.empty()
    with pytest.raises(AssertionError):
        queue.get()
    start, out = 0, []
    chunked = pa.concat_tables([pa.table({"a": np.arange(2), "b": np.arange(2) * 10.0})] * 2)
    for size in [3, 0, 7, 1, 10]:
        queue.put(pa.table({"a": np.arange(start, start + size), "b": np.arange(start, start + size) * 10.0}))
        start += size
        while not queue.empty():
            out.append(queue.get())
    assert [t.num_rows for t in out] == [4] * 5 and queue.empty()  # 21 rows: one left over
    assert np.concatenate([t.column("a").to_numpy() for t in out]).tolist() == list(range(20))
    assert out[2].column("b").to_pylist() == [80.0, 90.0, 100.0, 110.0] and out[0].schema.names == ["a", "b"]
    queue.put(pa.table({"a": np.array([20]), "b": np.array([200.0])}).slice(0, 0))
    queue.put(pa.table({"a": np.array([21, 22]), "b": np.array([210.0, 220.0])}))
    queue.put(chunked.slice(0, 1))  # a table of several chunks
    assert queue.get().column("a").to_pylist() == [20, 21, 22, 0] and queue.empty()


# -- shuffling buffers ---------------------------------------------------------------------------------------------
def test_noop_shuffling_buffer():
    buffer = NoopShufflingBuffer()
    assert isinstance(buffer, ShufflingBufferBase) and buffer.can_add() and not buffer.can_retrieve()
    buffer.add_many([1, 2, 3])
    buffer.add_many([4])
    assert buffer.size == 4
    out = []
    while buffer.can_retrieve():
        out.append(buffer.retrieve())
    buffer.finish()
    assert out == [1, 2, 3, 4] and buffer.size == 0


def test_random_shuffling_buffer_semantics():
    buffer = RandomShufflingBuffer(10, min_after_retrieve=5, extra_capacity=20)
    buffer.add_many(list(range(4)))
    assert buffer.can_add() and not buffer.can_retrieve() and buffer.size == 4
    with pytest.raises(RuntimeError):
        buffer.retrieve()
    buffer.add_many(list(range(4, 12)))  # may exceed the capacity by up to extra_capacity
    assert not buffer.can_add() and buffer.can_retrieve()
    with pytest.raises(RuntimeError, match="full"):
        buffer.add_many([99])
    out = []
    while buffer.can_retrieve():
        out.append(buffer.retrieve())
    assert len(out) == 12 - 4 and buffer.size == 4  # retrieval stops at min_after_retrieve - 1 items
    buffer.add_many(list(range(12, 38)))  # 4 + 26 = 30 = capacity + extra_capacity
    with pytest.raises(RuntimeError, match="exceed"):
        RandomShufflingBuffer(10, 5, extra_capacity=20).add_many(list(range(31)))
    buffer.finish()
    assert not buffer.can_add()
    with pytest.raises(RuntimeError, match="finish"):
        buffer.add_many([1])
    while buffer.can_retrieve():
        out.append(buffer.retrieve())
    assert sorted(out) == list(range(38)) and out != sorted(out) and buffer.size == 0
    with pytest.raises(RuntimeError):
        buffer.retrieve()


def test_random_shuffling_buffer_reproducible():
    def drain(**kwargs):
        buffer = RandomShufflingBuffer(100, 1, **kwargs)
        buffer.add_many(list(range(50)))
        buffer.finish()
        return [buffer.retrieve() for _ in range(50)]

    assert drain(seed=1) == drain(seed=1) != drain(seed=2)
    np.random.seed(7)
    first = drain()
    np.random.seed(7)
    assert drain() == first  # no seed: numpy's global generator, as in the original


def test_batched_noop_shuffling_buffer():
    torch = pytest.importorskip("torch")
    from petastorm.reader_impl.pytorch_shuffling_buffer import BatchedNoopShufflingBuffer

    buffer = BatchedNoopShufflingBuffer(batch_size=4)
    out = []
    for start, size in [(0, 3), (3, 6), (9, 2)]:
        buffer.add_many([np.arange(start, start + size), [[i, -i] for i in range(start, start + size)]])
        while buffer.can_retrieve():
            out.append(buffer.retrieve())
    assert buffer.size == 3 and buffer.can_add()
    buffer.finish()
    while buffer.can_retrieve():
        out.append(buffer.retrieve())
    assert [len(b[0]) for b in out] == [4, 4, 3]
    assert torch.cat([b[0] for b in out]).tolist() == list(range(11))
    assert isinstance(out[1][1], torch.Tensor) and out[1][1][:, 1].tolist() == [-4, -5, -6, -7]


def test_batched_random_shuffling_buffer():
    torch = pytest.importorskip("torch")
    from petastorm.reader_impl.pytorch_shuffling_buffer import (BatchedRandomShufflingBuffer,
                                                                BatchedShufflingBufferBase)

    buffer = BatchedRandomShufflingBuffer(12, min_after_retrieve=5, extra_capacity=30, batch_size=3, seed=0)
    assert isinstance(buffer, BatchedShufflingBufferBase)
    buffer.add_many([np.arange(6), torch.arange(6) * 10])
    assert not buffer.can_retrieve()  # needs min_after_retrieve + batch_size - 1 = 7 rows
    buffer.add_many([[6], [60]])
    assert buffer.can_retrieve() and buffer.can_add()
    out = [buffer.retrieve()]
    assert buffer.size == 4 and not buffer.can_retrieve()
    buffer.add_many([np.arange(7, 40), torch.arange(7, 40) * 10])  # 37 rows: at most 12 + 30
    assert not buffer.can_add()
    with pytest.raises(RuntimeError, match="full"):
        buffer.add_many([np.arange(1), torch.arange(1)])
    buffer.finish()
    while buffer.can_retrieve():
        out.append(buffer.retrieve())
    ids = torch.cat([b[0] for b in out])
    assert sorted(ids.tolist()) == list(range(40)) and ids.tolist() != list(range(40))
    assert all(len(b[0]) == 3 for b in out[:-1]) and len(out[-1][0]) == 1
    for b in out:
        assert isinstance(b[0], torch.Tensor) and (b[1] == b[0] * 10).all()
    with pytest.raises(RuntimeError, match="exceed"):
        BatchedRandomShufflingBuffer(2, 1, extra_capacity=3).add_many([np.arange(6)])


def test_pytorch_loaders_use_the_reader_impl_buffers():
    pytest.importorskip("torch")
    from petastorm import pytorch
    from petastorm.reader_impl import pytorch_shuffling_buffer, shuffling_buffer

    assert pytorch.RandomShufflingBuffer is shuffling_buffer.RandomShufflingBuffer
    assert pytorch.NoopShufflingBuffer is shuffling_buffer.NoopShufflingBuffer
    assert pytorch.BatchedRandomShufflingBuffer is pytorch_shuffling_buffer.BatchedRandomShufflingBuffer
    assert isinstance(pytorch._BatchedRandomShufflingBuffer(4, 3, 2), pytorch.BatchedRandomShufflingBuffer)


# -- local_disk_cache ----------------------------------------------------------------------------------------------
def test_local_disk_cache_with_the_original_signature(tmp_path):
    assert CacheBase is cache.CacheBase
    path = tmp_path / "cache"
    local = LocalDiskCache(str(path), 10 * 2 ** 20, 1000, 6, True, timeout=5)
    assert isinstance(local, cache.LocalDiskCache) and isinstance(local, CacheBase)
    table = pa.table({"x": np.arange(5)})
    calls = []
    assert local.get("k", lambda: calls.append(1) or table).equals(table)
    assert local.get("k", lambda: calls.append(1) or table).equals(table) and calls == [1]
    again = LocalDiskCache(str(path), 10 * 2 ** 20, 1000)  # another cache object on the same directory
    assert again.get("k", lambda: pytest.fail("should be cached")).equals(table)
    local.cleanup()
    assert not path.exists()

    kept = LocalDiskCache(str(tmp_path / "kept"), 10 * 2 ** 20, 1000, cleanup=False)
    kept.get("k", lambda: table)
    kept.cleanup()
    assert (tmp_path / "kept").exists() and len(kept) == 1


def test_local_disk_cache_capacity_check(tmp_path):
    with pytest.raises(ValueError, match="shards"):
        LocalDiskCache(str(tmp_path / "a"), 6000, 1000)  # 6000 / 6 shards < 5 rows of 1000 bytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the cache warns that 6000 bytes hold few rows)
        LocalDiskCache(str(tmp_path / "b"), 6000, 1000, shards=1)
        LocalDiskCache(str(tmp_path / "c"), 6000, 1000, eviction_policy="none")


# -- tf_utils helpers ----------------------------------------------------------------------------------------------
def test_date_to_nsec_from_epoch():
    pytest.importorskip("tensorflow")
    assert date_to_nsec_from_epoch(datetime.date(1970, 1, 2)) == 86400 * 10 ** 9
    assert date_to_nsec_from_epoch(datetime.date(1969, 12, 31)) == -86400 * 10 ** 9
    assert date_to_nsec_from_epoch(datetime.datetime(2020, 1, 1, 0, 0, 1)) == (1577836800 + 1) * 10 ** 9


def test_sanitize_field_tf_types_and_dtypes():
    tf = pytest.importorskip("tensorflow")
    Row = Unischema("S", [UnischemaField(n, np.int32, (), None, True) for n in "abcd"])._get_namedtuple()
    out = _sanitize_field_tf_types(Row(a=decimal.Decimal("1.50"), b=np.array([1, 2], np.uint16),
                                       c=np.array(["2020-01-01"], "datetime64[D]"), d=np.array([3], np.uint32)))
    assert type(out) is Row and out.a == "1.5"
    assert out.b.dtype == np.int32 and out.d.dtype == np.int64
    assert out.c.tolist() == [1577836800 * 10 ** 9]
    with pytest.raises(RuntimeError, match="'b'"):
        _sanitize_field_tf_types(Row(a=1, b=None, c=1, d=1))
    with pytest.raises(ValueError):
        _sanitize_field_tf_types(Row(a=1, b=None, c=1, d=1))
    assert _numpy_to_tf_dtypes(np.uint16) == tf.int32 and _numpy_to_tf_dtypes(decimal.Decimal) == tf.string
    with pytest.warns(UnicodeWarning):
        assert _numpy_to_tf_dtypes(np.str_) == tf.string
    with pytest.raises(ValueError):
        _numpy_to_tf_dtypes(np.complex64)


def test_make_namedtuple_tf_ngram():
    pytest.importorskip("tensorflow")
    schema = Unischema("N", [UnischemaField("ts", np.int64, (), ScalarCodec(None), False),
                             UnischemaField("x", np.float32, (), None, False),
                             UnischemaField("y", np.float32, (), None, False)])
    ngram = NGram({-1: [schema.ts, schema.x], 0: [schema.ts, schema.y]}, delta_threshold=10,
                  timestamp_field=schema.ts)
    result = make_namedtuple_tf_ngram(schema, ngram, 1, 0.5, 2, 7.0)
    assert sorted(result) == [-1, 0]
    assert result[-1]._asdict() == {"ts": 1, "x": 0.5} and result[0]._asdict() == {"ts": 2, "y": 7.0}
    by_keyword = make_namedtuple_tf_ngram(schema, ngram, **{"-1": {"ts": 3, "x": 1.0}, "0": {"ts": 4, "y": 2.0}})
    assert by_keyword[0].y == 2.0 and by_keyword[-1].ts == 3


# -- shuffling analysis (Spark) ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_shuffling_analysis(spark, tmp_path):
    url = f"file://{tmp_path}/shuffle"
    generate_shuffle_analysis_dataset(spark, url, num_rows=200, row_group_size=20)
    with make_reader(url, shuffle_row_groups=False, reader_pool_type="dummy") as reader:
        ids = [int(r.id) for r in reader]
        assert reader.schema.fields["id"].numpy_dtype is np.int64
    assert ids == list(range(200))  # in order across the files
    assert len(list((tmp_path / "shuffle").glob("*.parquet"))) == 10  # one file (row group) per 20 rows
    mean, std = compute_correlation_distribution(url, "id", shuffle_row_drop_partitions=1, num_corr_samples=4)
    assert 0 <= mean < 0.9 and std >= 0
    mean_by_index, _ = compute_correlation_distribution(url, 0, shuffle_row_drop_partitions=5, num_corr_samples=2)
    assert 0 <= mean_by_index < 0.9
