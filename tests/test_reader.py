"""make_reader / make_batch_reader options on a small Hive-partitioned Petastorm dataset written without Spark."""
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import LongType, StringType

from petastorm import TransformSpec, make_batch_reader, make_reader
from petastorm.codecs import NdarrayCodec, ScalarCodec
from petastorm.errors import NoDataAvailableError
from petastorm.etl.dataset_metadata import load_row_groups, write_dataset_metadata
from petastorm.predicates import (in_intersection, in_lambda, in_negate, in_pseudorandom_split, in_reduce,
                                  in_set)
from petastorm.transform import edit_field
from petastorm.unischema import Unischema, UnischemaField

ReaderSchema = Unischema("ReaderSchema", [
    UnischemaField("p", np.str_, (), None, False),
    UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("name", np.str_, (), ScalarCodec(StringType()), False),
    UnischemaField("vec", np.float32, (3,), NdarrayCodec(), False),
])
ROWS = 40
ROW_GROUPS = 8


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    """4 files (2 partitions x 2), 2 row groups of 5 rows each: 8 row groups, ids 0..39."""
    root = tmp_path_factory.mktemp("reader") / "ds"
    fields = ReaderSchema.fields
    for file_index in range(4):
        ids = list(range(file_index * 10, file_index * 10 + 10))
        table = pa.table({
            "id": ids,
            "name": [f"n{i}" for i in ids],
            "vec": [bytes(fields["vec"].codec.encode(fields["vec"], np.full(3, i, np.float32))) for i in ids],
        })
        directory = root / f"p={file_index // 2}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, directory / f"part-{file_index}.parquet", row_group_size=5)
    write_dataset_metadata(f"file://{root}", ReaderSchema)
    return f"file://{root}"


def _ids(reader):
    return [int(row.id) for row in reader]


def test_reads_every_row_decoded(url):
    with make_reader(url) as reader:
        rows = list(reader)
    assert sorted(int(r.id) for r in rows) == list(range(ROWS))
    row = next(r for r in rows if r.id == 13)
    assert row.p == "0" and row.name == "n13" and isinstance(row.id, np.int64)
    np.testing.assert_array_equal(row.vec, np.full(3, 13, np.float32))
    assert reader.schema.fields.keys() == ReaderSchema.fields.keys() and not reader.batched_output


def test_piece_order_without_shuffle(url):
    pieces = load_row_groups(url)
    assert len(pieces) == ROW_GROUPS
    with make_reader(url, shuffle_row_groups=False) as reader:
        assert _ids(reader) == list(range(ROWS))


def test_num_epochs_and_forever(url):
    with make_reader(url, num_epochs=2) as reader:
        assert sorted(_ids(reader)) == sorted(list(range(ROWS)) * 2)
    with make_reader(url, num_epochs=None) as reader:
        assert len(list(itertools.islice(reader, 3 * ROWS + 7))) == 3 * ROWS + 7


def test_seed_gives_reproducible_order(url):
    orders = []
    for _ in range(2):
        with make_reader(url, seed=42, shuffle_rows=True, num_epochs=2) as reader:
            orders.append(_ids(reader))
    assert orders[0] == orders[1] and orders[0] != sorted(orders[0])
    assert orders[0][:ROWS] != orders[0][ROWS:], "each epoch draws a new order"


def test_schema_fields_by_regex_and_field(url):
    with make_reader(url, schema_fields=["i.", ReaderSchema.vec]) as reader:
        row = next(reader)
    assert row._fields == ("id", "vec")
    with pytest.raises(ValueError, match="No fields match"):
        make_reader(url, schema_fields=["nope"])


def test_sharding_partitions_row_groups(url):
    seen = []
    for shard in range(3):
        with make_reader(url, cur_shard=shard, shard_count=3, shuffle_row_groups=False) as reader:
            assert all(index % 3 == shard for index in reader.plan.piece_indexes)
            seen += _ids(reader)
    assert sorted(seen) == list(range(ROWS))
    with pytest.raises(NoDataAvailableError):
        make_reader(url, cur_shard=0, shard_count=ROW_GROUPS + 1)
    with pytest.raises(ValueError, match="cur_shard"):
        make_reader(url, cur_shard=3, shard_count=3)


def test_row_predicate_and_partition_predicate(url):
    with make_reader(url, predicate=in_lambda(["id"], lambda i: i % 7 == 0)) as reader:
        assert sorted(_ids(reader)) == [0, 7, 14, 21, 28, 35]
    with make_reader(url, predicate=in_set(["1"], "p")) as reader:
        assert reader.plan.worker_predicate is None and len(reader.plan.piece_indexes) == 4
        assert sorted(_ids(reader)) == list(range(20, 40))
    with make_reader(url, schema_fields=["vec"], predicate=in_set({3, 4}, "id")) as reader:
        assert sorted(float(row.vec[0]) for row in reader) == [3.0, 4.0]


def test_predicate_combinators():
    row = {"id": 5, "tags": np.array(["a", "b"]), "key": "abc"}
    assert in_negate(in_set([1], "id")).do_include(row)
    assert in_reduce([in_set([5], "id"), in_intersection(["b", "z"], "tags")], all).do_include(row)
    assert not in_reduce([in_set([4], "id"), in_intersection(["z"], "tags")], any).do_include(row)
    assert in_reduce([in_set([5], "id"), in_negate(in_set([5], "id"))], any).get_fields() == {"id"}
    splits = [[in_pseudorandom_split([0.3, 0.7], i, "key").do_include({"key": f"k{n}"}) for i in range(2)]
              for n in range(200)]
    assert all(a != b for a, b in splits) and 30 < sum(a for a, _ in splits) < 90


def test_transform_spec(url):
    spec = TransformSpec(lambda row: {**row, "double": row["id"] * 2}, edit_fields=[edit_field("double", np.int64, ())],
                         removed_fields=["vec", "name"])
    with make_reader(url, transform_spec=spec, shuffle_row_groups=False) as reader:
        assert list(reader.schema.fields) == ["p", "id", "double"]
        rows = list(reader)
    assert [r.double for r in rows] == [2 * i for i in range(ROWS)]
    with make_reader(url, transform_spec=TransformSpec(selected_fields=["name", "id"])) as reader:
        assert next(reader)._fields == ("name", "id")


def test_shuffle_row_drop_partitions_reads_everything_once(url):
    with make_reader(url, shuffle_row_drop_partitions=2) as reader:
        assert sorted(_ids(reader)) == list(range(ROWS))
        assert len(reader.plan.piece_indexes) == ROW_GROUPS


def test_filters(url):
    with make_reader(url, filters=[("id", "<", 12)]) as reader:
        assert sorted(_ids(reader)) == list(range(12))


def test_reset_and_stop(url):
    reader = make_reader(url, shuffle_row_groups=False)
    next(reader)
    with pytest.raises(NotImplementedError):
        reader.reset()
    rest = list(reader)
    assert len(rest) == ROWS - 1 and reader.last_row_consumed
    reader.reset()
    assert _ids(reader) == list(range(ROWS))
    reader.stop()
    reader.join()
    with pytest.raises(RuntimeError, match="stopped"):
        next(reader)


def test_batch_reader_decodes_columns_per_row_group(url):
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        assert reader.batched_output
        batches = list(reader)
    assert len(batches) == ROW_GROUPS
    first = batches[0]
    assert first.id.tolist() == [0, 1, 2, 3, 4] and first.vec.shape == (5, 3) and first.vec.dtype == np.float32
    assert first.p.dtype.kind == "U" and first.name.tolist() == ["n0", "n1", "n2", "n3", "n4"]


def test_batch_reader_predicate_and_transform(url):
    spec = TransformSpec(lambda df: df.assign(id=df.id + 100), removed_fields=["vec"])
    with make_batch_reader(url, predicate=in_lambda(["id"], lambda ids: ids % 2 == 0), transform_spec=spec,
                           shuffle_row_groups=False) as reader:
        batches = list(reader)
    assert np.concatenate([b.id for b in batches]).tolist() == list(range(100, 140, 2))
    assert batches[0]._fields == ("p", "id", "name")


def test_bad_options(url):
    with pytest.raises(ValueError, match="reader_pool_type"):
        make_reader(url, reader_pool_type="gpu")
    with pytest.raises(ValueError, match="cache_location"):
        make_reader(url, cache_type="local-disk")
    with pytest.raises(ValueError, match="num_epochs"):
        make_reader(url, num_epochs=0)
