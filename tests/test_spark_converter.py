"""make_spark_converter: precision rule, vectors/tensors/arrays as (N, *shape), TF and torch readers, cache reuse
(same plan, other session, other process), delete() and exit clean-up of our files only, dbfs: URLs."""
import os
import warnings

import numpy as np
import pytest

from petastorm import make_batch_reader
from petastorm.spark import SparkDatasetConverter, make_spark_converter
from petastorm.spark import _converter_cache as converter_cache
from petastorm.spark.spark_dataset_converter import normalize_dbfs_url

CONF = SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF


@pytest.fixture
def cache_dir(spark, tmp_path):
    parent = tmp_path / "cache"
    parent.mkdir()
    previous = spark.conf.get(CONF, None)
    spark.conf.set(CONF, parent.as_uri())
    yield parent
    if previous is None:
        spark.conf.unset(CONF)
    else:
        spark.conf.set(CONF, previous)


@pytest.fixture(scope="module")
def mixed_df(spark):
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import (ArrayType, DoubleType, FloatType, IntegerType, StringType, StructField,
                                   StructType)

    from petastorm.spark import TensorUDT, as_tensor

    schema = StructType([
        StructField("id", IntegerType(), False),
        StructField("d", DoubleType(), False),
        StructField("f", FloatType(), False),
        StructField("arr", ArrayType(DoubleType(), False), False),
        StructField("vec", VectorUDT(), False),
        StructField("tensor", TensorUDT(), False),
        StructField("nested", ArrayType(ArrayType(DoubleType(), False), False), False),
        StructField("name", StringType(), False),
    ])
    rows = [(i, i + 0.5, float(i), [i * 1.0, i + 1.0, i + 2.0], Vectors.dense([i, 2.0 * i]),
             as_tensor(np.full((2, 3), i, np.float64)), [[float(i), 0.0], [1.0, float(i)]], f"n{i}")
            for i in range(12)]
    return spark.createDataFrame(rows, schema).repartition(2)


def _read_all(url):
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        batches = [b._asdict() for b in reader]
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


@pytest.mark.slow
def test_float32_rule_and_tensor_shapes(mixed_df, cache_dir):
    converter = make_spark_converter(mixed_df)
    assert len(converter) == 12 and converter.file_urls and all(u.endswith(".parquet") for u in converter.file_urls)
    assert converter.cache_dir_url.startswith(cache_dir.as_uri())
    data = _read_all(converter.cache_dir_url)
    order = np.argsort(data["id"])
    assert data["d"].dtype == np.float32 and data["f"].dtype == np.float32
    assert data["arr"].shape == (12, 3) and data["arr"].dtype == np.float32
    assert data["vec"].shape == (12, 2) and data["vec"].dtype == np.float32
    assert data["tensor"].shape == (12, 2, 3) and data["tensor"].dtype == np.float32
    assert data["nested"].shape == (12, 2, 2) and data["nested"].dtype == np.float32
    np.testing.assert_array_equal(data["tensor"][order][5], np.full((2, 3), 5, np.float32))
    np.testing.assert_array_equal(data["vec"][order][3], [3, 6])
    np.testing.assert_array_equal(data["nested"][order][4], [[4, 0], [1, 4]])
    np.testing.assert_allclose(data["d"][order], np.arange(12) + 0.5)
    converter.delete()


@pytest.mark.parametrize("dtype, expected", [(None, {"d": np.float64, "f": np.float32, "tensor": np.float64}),
                                             ("float64", {"d": np.float64, "f": np.float64, "tensor": np.float64})])
def test_precision_none_and_float64(mixed_df, cache_dir, dtype, expected):
    converter = make_spark_converter(mixed_df, dtype=dtype)
    data = _read_all(converter.cache_dir_url)
    assert {k: data[k].dtype.type for k in expected} == expected
    assert data["tensor"].shape == (12, 2, 3) and data["vec"].dtype == np.float64
    converter.delete()
    with pytest.raises(ValueError, match="dtype"):
        make_spark_converter(mixed_df, dtype="float16")


def test_cache_reuse_and_delete(spark, mixed_df, cache_dir, tmp_path):
    first = make_spark_converter(mixed_df)
    again = make_spark_converter(mixed_df)
    assert again.cache_dir_url == first.cache_dir_url
    other_options = make_spark_converter(mixed_df, compression_codec="snappy")
    other_df = make_spark_converter(mixed_df.filter("id < 5"))
    assert len(other_df) == 5
    urls = {first.cache_dir_url, other_options.cache_dir_url, other_df.cache_dir_url}
    assert len(urls) == 3
    unrelated = cache_dir / "user-data"
    unrelated.mkdir()
    (unrelated / "keep.txt").write_text("mine")
    first.delete()
    assert not os.path.exists(first.cache_dir_url[len("file://"):])
    assert all(os.path.exists(u[len("file://"):]) for u in urls - {first.cache_dir_url})
    assert (unrelated / "keep.txt").read_text() == "mine"
    recreated = make_spark_converter(mixed_df)
    assert recreated.cache_dir_url == first.cache_dir_url and len(recreated) == 12


def test_cache_reuse_across_sessions_and_processes(spark, cache_dir, tmp_path, monkeypatch):
    source = tmp_path / "source"
    spark.range(20).selectExpr("id", "cast(id as double) * 2 as x").write.parquet(str(source))
    first = make_spark_converter(spark.read.parquet(str(source)).filter("id % 2 = 0"))
    other_session = spark.newSession()
    other_session.conf.set(CONF, cache_dir.as_uri())
    assert make_spark_converter(other_session.read.parquet(str(source)).filter("id % 2 = 0")).cache_dir_url \
        == first.cache_dir_url
    # Another process: nothing registered in memory; the marker in the directory identifies the same plan.
    monkeypatch.setattr(converter_cache, "_registry", {})
    monkeypatch.setattr(converter_cache, "_created_dirs", set())
    reused = make_spark_converter(spark.read.parquet(str(source)).filter("id % 2 = 0"))
    assert reused.cache_dir_url == first.cache_dir_url and len(reused) == 10
    assert converter_cache._created_dirs == set()  # reused, not created: not deleted at our exit
    with pytest.warns(UserWarning, match="not written by this process"):
        reused.delete()  # another process's cache: kept
    assert os.path.isdir(reused.cache_dir_url[len("file://"):])
    # Changed input files change the key.
    spark.range(30).selectExpr("id", "cast(id as double) as x").write.mode("overwrite").parquet(str(source))
    changed = make_spark_converter(spark.read.parquet(str(source)).filter("id % 2 = 0"))
    assert changed.cache_dir_url != first.cache_dir_url and len(changed) == 15


def test_exit_cleanup_deletes_only_created(spark, cache_dir, monkeypatch):
    monkeypatch.setattr(converter_cache, "_registry", {})
    monkeypatch.setattr(converter_cache, "_created_dirs", set())
    created = make_spark_converter(spark.range(7).selectExpr("id", "id * 1.5 as v"))
    created_path = created.cache_dir_url[len("file://"):]
    assert converter_cache._created_dirs == {created.cache_dir_url}
    converter_cache._delete_created_at_exit()
    assert not os.path.exists(created_path)
    assert sorted(os.listdir(cache_dir)) == []


def test_user_path_is_never_deleted(spark, cache_dir, tmp_path):
    path = tmp_path / "user_dataset"
    spark.range(9).write.parquet(str(path))
    converter = make_spark_converter(path.as_uri())
    assert len(converter) == 9 and converter.cache_dir_url == path.as_uri()
    with pytest.warns(UserWarning, match="does not delete"):
        converter.delete()
    assert path.exists() and list(path.glob("*.parquet"))


def test_make_tf_dataset(spark, mixed_df, cache_dir):
    tf = pytest.importorskip("tensorflow", reason="not in the Spark-line virtualenvs (make test-lines)")

    converter = make_spark_converter(mixed_df)
    with pytest.warns(UserWarning, match="infinite"):
        context = converter.make_tf_dataset(batch_size=5)
    with context as dataset:
        batch = next(iter(dataset))
        assert batch.tensor.shape == (5, 2, 3) and batch.tensor.dtype == tf.float32
        assert batch.vec.shape == (5, 2) and batch.name.dtype == tf.string
        assert len(list(dataset.take(6))) == 6  # repeats forever
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with converter.make_tf_dataset(batch_size=5, num_epochs=2, shuffling_queue_capacity=8, seed=1) as dataset:
            ids = np.concatenate([b.id.numpy() for b in dataset])
    assert sorted(ids.tolist()) == sorted(list(range(12)) * 2)
    with converter.make_tf_dataset(batch_size=4, num_epochs=1, cur_shard=0, shard_count=2) as shard0, \
            converter.make_tf_dataset(batch_size=4, num_epochs=1, cur_shard=1, shard_count=2) as shard1:
        both = [np.concatenate([b.id.numpy() for b in d]).tolist() for d in (shard0, shard1)]
    assert sorted(both[0] + both[1]) == list(range(12)) and both[0] and both[1]


def test_make_torch_dataloader(mixed_df, cache_dir):
    torch = pytest.importorskip("torch", reason="not in the Spark-line virtualenvs (make test-lines)")

    from petastorm.pytorch import BatchedDataLoader

    converter = make_spark_converter(mixed_df.drop("name"))
    with converter.make_torch_dataloader(batch_size=4, num_epochs=1) as loader:
        batches = list(loader)
    assert sorted(torch.cat([b["id"] for b in batches]).tolist()) == list(range(12))
    assert batches[0]["tensor"].shape == (4, 2, 3) and batches[0]["d"].dtype == torch.float32
    with converter.make_torch_dataloader(batch_size=5, num_epochs=2, data_loader_fn=BatchedDataLoader,
                                         shuffling_queue_capacity=6) as loader:
        batches = list(loader)
    assert len(torch.cat([b["id"] for b in batches])) == 24 and batches[0]["nested"].shape == (5, 2, 2)


def test_missing_conf_and_bad_codec(spark, mixed_df):
    previous = spark.conf.get(CONF, None)
    spark.conf.unset(CONF)
    try:
        with pytest.raises(ValueError, match="parentCacheDirUrl"):
            make_spark_converter(mixed_df)
    finally:
        if previous is not None:
            spark.conf.set(CONF, previous)
    with pytest.raises(ValueError, match="compression_codec"):
        make_spark_converter(mixed_df, compression_codec="brotli9")


def test_normalize_dbfs_url(monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert normalize_dbfs_url("dbfs:/tmp/x") == ("dbfs:/tmp/x", "file:/dbfs/tmp/x")
    assert normalize_dbfs_url("dbfs:///tmp/x/") == ("dbfs:/tmp/x", "file:/dbfs/tmp/x")
    assert normalize_dbfs_url("file:/dbfs/tmp/x") == ("file:/dbfs/tmp/x", "file:/dbfs/tmp/x")
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    assert normalize_dbfs_url("file:///dbfs/tmp/x") == ("dbfs:/tmp/x", "file:/dbfs/tmp/x")
    assert normalize_dbfs_url("s3://bucket/p") == ("s3://bucket/p", "s3://bucket/p")
    with pytest.raises(ValueError, match="host"):
        normalize_dbfs_url("dbfs://host/x")
