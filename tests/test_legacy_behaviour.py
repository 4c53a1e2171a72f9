"""Where the original's arguments, values and exceptions differ in kind from a plain reading of ours, ours follow
the original: positional order of ``make_reader``'s arguments, its deprecated/no-op arguments, the exception
classes codecs raise, numpy scalars for nullable fields, integer Hive partition values, ``UnischemaField`` in
``TransformSpec(edit_fields=...)``, pool objects as ``reader_pool_type`` and the original ``Reader``
constructor."""
import decimal
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import IntegerType

import petastorm
from petastorm import TransformSpec, make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import write_dataset_metadata
from petastorm.unischema import Unischema, UnischemaField

SCHEMA = Unischema("Legacy", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("maybe", np.int32, (), None, True),
    UnischemaField("cost", decimal.Decimal, (), None, True),
])


@pytest.fixture(scope="module")
def nullable_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("legacy_values") / "ds"
    root.mkdir()
    table = pa.table({"id": pa.array(range(6), pa.int32()),
                      "maybe": pa.array([1, None, 3, None, 5, None], pa.int32()),
                      "cost": pa.array([decimal.Decimal("1.5"), None] * 3, pa.decimal128(5, 2))})
    pq.write_table(table, root / "part-0.parquet", row_group_size=3)
    url = f"file://{root}"
    write_dataset_metadata(url, SCHEMA)
    return url


@pytest.fixture(scope="module")
def hive_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("legacy_hive")
    for i in range(3):
        folder = root / f"id={i}" / f"name=x{i}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"v": pa.array([float(i), 2.0])}), folder / "part-0.parquet")
    return f"file://{root}"


def test_make_reader_takes_the_original_arguments_positionally(nullable_url):
    with pytest.warns(DeprecationWarning, match="pyarrow_serialize") as caught:
        reader = make_reader(nullable_url, None, "dummy", 2, True, 7, None, False, False)
    assert caught[0].filename == __file__  # attributed to the caller, so Python's default filters show it
    with reader:
        assert [row.id for row in reader] == list(range(6))


def test_convert_early_to_numpy_gives_the_same_output(nullable_url):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with make_reader(nullable_url, convert_early_to_numpy=True, shuffle_row_groups=False) as reader:
            assert [row.id for row in reader] == list(range(6))
    outputs = []
    for early in (False, True):
        with make_batch_reader(nullable_url, convert_early_to_numpy=early, shuffle_row_groups=False) as reader:
            outputs.append([batch.id.tolist() for batch in reader])
    assert outputs[0] == outputs[1] == [[0, 1, 2], [3, 4, 5]]


def test_nullable_fields_come_back_as_the_schemas_numpy_type(nullable_url):
    with make_reader(nullable_url, shuffle_row_groups=False) as reader:
        rows = list(reader)
    assert [row.maybe for row in rows] == [1, None, 3, None, 5, None]
    assert all(type(row.maybe) is np.int32 for row in rows if row.maybe is not None)
    assert all(type(row.id) is np.int32 for row in rows)
    assert rows[0].cost == decimal.Decimal("1.50") and isinstance(rows[0].cost, decimal.Decimal)


def test_integer_hive_partition_values_are_integers(hive_url):
    with make_reader(hive_url, shuffle_row_groups=False) as reader:
        rows = list(reader)
    assert sorted((int(r.id), str(r.name)) for r in rows) == [(0, "x0"), (0, "x0"), (1, "x1"), (1, "x1"),
                                                                (2, "x2"), (2, "x2")]
    assert all(type(r.id) is np.int64 and isinstance(r.name, str) for r in rows)
    with make_batch_reader(hive_url, shuffle_row_groups=False) as reader:
        batches = list(reader)
    assert all(b.id.dtype == np.int64 and b.name.dtype.kind == "U" for b in batches)
    assert sorted(v for b in batches for v in b.id.tolist()) == [0, 0, 1, 1, 2, 2]


def test_partition_values_that_do_not_read_back_as_integers_stay_strings(tmp_path):
    for value in ("007", "1_000", "12"):
        folder = tmp_path / f"p={value}"
        folder.mkdir()
        pq.write_table(pa.table({"v": pa.array([1.0])}), folder / "part-0.parquet")
    url = f"file://{tmp_path}"
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        assert sorted(v for b in reader for v in b.p.tolist()) == ["007", "12", "1_000"]
    with make_batch_reader(url, filters=[("p", "=", "007")]) as reader:
        assert [v for b in reader for v in b.p.tolist()] == ["007"]


def test_a_partition_declared_as_string_stays_a_string(tmp_path):
    schema = Unischema("Declared", [UnischemaField("p", np.str_, (), None, False),
                                    UnischemaField("v", np.float64, (), None, False)])
    for value in ("1", "2"):
        folder = tmp_path / f"p={value}"
        folder.mkdir()
        pq.write_table(pa.table({"v": pa.array([float(value)])}), folder / "part-0.parquet")
    write_dataset_metadata(f"file://{tmp_path}", schema)
    with make_reader(f"file://{tmp_path}", shuffle_row_groups=False) as reader:
        assert sorted((r.p, r.v) for r in reader) == [("1", 1.0), ("2", 2.0)]
    with make_batch_reader(f"file://{tmp_path}", filters=[("p", "=", "2")]) as reader:
        assert [b.p.tolist() for b in reader] == [["2"]]


def test_transform_spec_takes_unischema_fields(nullable_url):
    doubled = UnischemaField("doubled", np.int64, (), None, False)
    spec = TransformSpec(lambda row: {**row, "doubled": np.int64(row["id"]) * 2}, edit_fields=[doubled],
                         selected_fields=["id", "doubled"])
    assert spec.edit_fields == [("doubled", np.int64, (), False)]
    with make_reader(nullable_url, transform_spec=spec, shuffle_row_groups=False) as reader:
        assert [(r.id, r.doubled) for r in reader] == [(i, 2 * i) for i in range(6)]
    with pytest.raises(ValueError, match="edit_fields"):
        TransformSpec(edit_fields=[("only", "three", ())])


@pytest.mark.parametrize("codec,field,value", [
    (ScalarCodec(IntegerType()), UnischemaField("s", np.int32, (), None, False), [1, 2]),
    (NdarrayCodec(), UnischemaField("a", np.float32, (2,), None, False), np.zeros(2, np.float64)),
    (CompressedImageCodec("png"), UnischemaField("img", np.uint8, (4, 4), None, False), np.zeros((4, 5), np.uint8)),
    (CompressedImageCodec("png"), UnischemaField("img", np.uint8, (4, 4), None, False), np.zeros((4, 4), np.int8)),
])
def test_codec_value_errors_are_both_type_and_value_errors(codec, field, value):
    for expected in (TypeError, ValueError):
        with pytest.raises(expected, match=f"Field '{field.name}'"):
            codec.encode(field, value)


def test_module_level_names():
    from petastorm import codecs, errors
    from petastorm.predicates import in_intersection

    assert petastorm.NoDataAvailableError is errors.NoDataAvailableError
    assert isinstance(codecs.OPENCV_AVAILABLE, bool)
    for predicate in (in_intersection(["a"], _predicate_field="tags"), in_intersection(["a"], "tags"),
                      in_intersection(["a"], predicate_field="tags")):
        assert predicate.get_fields() == {"tags"} and predicate.do_include({"tags": ["b", "a"]})
    with pytest.raises(ValueError, match="field name"):
        in_intersection(["a"])


def test_pool_objects_work_as_reader_pool_type(nullable_url):
    from petastorm.workers_pool.dummy_pool import DummyPool
    from petastorm.workers_pool.process_pool import ProcessPool
    from petastorm.workers_pool.thread_pool import ThreadPool

    for pool, kind in ((ThreadPool(2), "thread"), (DummyPool(), "dummy"), (ProcessPool(1), "process")):
        with make_reader(nullable_url, reader_pool_type=pool, shuffle_row_groups=False) as reader:
            assert [row.id for row in reader] == list(range(6))
            assert reader.diagnostics["pool_type"] == kind


def test_the_original_reader_constructor(nullable_url):
    import pyarrow.fs as pafs

    from petastorm.reader import Reader
    from petastorm.workers_pool.thread_pool import ThreadPool

    path = nullable_url[len("file://"):]
    with Reader(pafs.LocalFileSystem(), path, schema_fields=[SCHEMA.id], reader_pool=ThreadPool(2),
                shuffle_row_groups=False) as reader:
        assert [tuple(row) for row in reader] == [(i,) for i in range(6)]
    with Reader(None, nullable_url, is_batched_reader=True, shuffle_row_groups=False) as reader:
        assert [batch.id.tolist() for batch in reader] == [[0, 1, 2], [3, 4, 5]]
