"""The reader engine on datasets written by Spark: a Petastorm dataset (materialize_dataset, Hive-partitioned,
image and tensor columns, a row-group index) and a plain Spark Parquet store."""
import numpy as np
import pytest
from _engine_helpers import assert_no_leaks
from pyspark.sql.types import IntegerType, StringType

from petastorm import make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import materialize_dataset
from petastorm.etl.rowgroup_indexers import SingleFieldIndexer
from petastorm.etl.rowgroup_indexing import build_rowgroup_index
from petastorm.predicates import in_lambda
from petastorm.selectors import SingleIndexSelector
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

SparkSchema = Unischema("SparkSchema", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("label", np.str_, (), ScalarCodec(StringType()), False),
    UnischemaField("image", np.uint8, (8, 8, 3), CompressedImageCodec("png"), False),
    UnischemaField("tensor", np.float32, (2, 3), NdarrayCodec(), False),
])
N = 48
LABELS = ["cat", "dog", "eel"]


def _row(i):
    return {"id": i, "label": LABELS[i % 3], "image": np.full((8, 8, 3), i, np.uint8),
            "tensor": np.full((2, 3), i, np.float32)}


@pytest.fixture(scope="module")
def spark_url(spark, tmp_path_factory):
    url = f"file://{tmp_path_factory.mktemp('spark-engine')}/ds"
    with materialize_dataset(spark, url, SparkSchema, row_group_size_mb=1):
        rows = [dict_to_spark_row(SparkSchema, _row(i)) for i in range(N)]
        df = spark.createDataFrame(rows, SparkSchema.as_spark_schema())
        df.repartition(4, "id").write.partitionBy("label").mode("overwrite").parquet(url)
    build_rowgroup_index(url, spark.sparkContext, [SingleFieldIndexer("label_index", "label")])
    return url


@pytest.mark.parametrize("pool", ["thread", "process", "dummy"])
def test_every_pool_reads_the_spark_dataset(spark_url, pool):
    with make_reader(spark_url, reader_pool_type=pool, workers_count=2) as reader:
        rows = list(reader)
    assert sorted(int(r.id) for r in rows) == list(range(N))
    for row in rows[:5]:
        assert row.label == LABELS[row.id % 3]
        np.testing.assert_array_equal(row.image, np.full((8, 8, 3), row.id, np.uint8))
        np.testing.assert_array_equal(row.tensor, np.full((2, 3), row.id, np.float32))
    with make_batch_reader(spark_url, reader_pool_type=pool, workers_count=2) as reader:
        batches = list(reader)
    ids = np.concatenate([b.id for b in batches])
    assert sorted(ids.tolist()) == list(range(N))
    images = np.concatenate([b.image for b in batches])
    assert images.shape == (N, 8, 8, 3) and (images[:, 0, 0, 0] == ids).all()
    assert_no_leaks()


def test_filters_prune_partitions_of_spark_dataset(spark_url):
    with make_reader(spark_url, filters=[("label", "=", "dog")]) as reader:
        ids = sorted(int(r.id) for r in reader)
        d = reader.diagnostics
    assert ids == [i for i in range(N) if i % 3 == 1]
    assert d["row_groups_pruned_by_filters"] >= 2 * d["row_groups_total"] // 3 - 1 and d["rows_filtered_out"] == 0
    with make_batch_reader(spark_url, filters=[("id", ">", 40)], schema_fields=["id"]) as reader:
        assert sorted(int(i) for b in reader for i in b.id) == list(range(41, N))


def test_selector_and_predicate_on_spark_dataset(spark_url):
    with make_reader(spark_url, rowgroup_selector=SingleIndexSelector("label_index", ["eel"])) as reader:
        labels = {r.label for r in reader}
        assert reader.diagnostics["row_groups_pruned_by_selector"] > 0
    assert labels == {"eel"}
    with make_batch_reader(spark_url, predicate=in_lambda(["tensor"], lambda t: t[0, 0] < 4)) as reader:
        assert sorted(int(i) for b in reader for i in b.id) == [0, 1, 2, 3]


def test_plain_spark_parquet(spark, tmp_path):
    url = f"file://{tmp_path}/plain"
    spark.range(30).selectExpr("id", "cast(id % 2 as string) as part", "array(id, id) as pair") \
        .repartition(3).write.partitionBy("part").parquet(url)
    with make_batch_reader(url, filters=[("part", "=", "1")]) as reader:
        batches = list(reader)
    assert sorted(int(i) for b in batches for i in b.id) == list(range(1, 30, 2))
    assert batches[0].pair.shape[1] == 2
    with pytest.warns(UserWarning, match="not a Petastorm dataset"):
        reader = make_reader(url + "/", schema_fields=["id", "part"])
    with reader:
        assert sorted(int(r.id) for r in reader) == list(range(30))
