"""The original ``petastorm.spark_utils.dataset_as_rdd`` and the legacy names of
``petastorm.spark.spark_dataset_converter`` (context managers with the original constructor arguments, helpers)."""
import importlib.util
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from pyspark.sql.types import IntegerType, StringType

from petastorm import make_reader
from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import materialize_dataset
from petastorm.spark import SparkDatasetConverter, make_spark_converter
from petastorm.spark import spark_dataset_converter as converter_module
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "hello_world"

RddSchema = Unischema("RddSchema", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("name", np.str_, (), ScalarCodec(StringType()), False),
    UnischemaField("vec", np.float32, (3,), NdarrayCodec(), False),
    UnischemaField("img", np.uint8, (4, 4, 3), CompressedImageCodec("png"), False),
    UnischemaField("maybe", np.int32, (), ScalarCodec(IntegerType()), True),
])


@pytest.fixture(scope="module")
def rdd_dataset(spark, tmp_path_factory):
    url = f"file://{tmp_path_factory.mktemp('rdd') / 'ds'}"
    rows = [dict_to_spark_row(RddSchema, {"id": i, "name": f"n{i}", "vec": np.arange(3, dtype=np.float32) + i,
                                          "img": np.full((4, 4, 3), i, np.uint8),
                                          "maybe": None if i % 3 else i})
            for i in range(20)]
    with materialize_dataset(spark, url, RddSchema, row_group_size_mb=1):
        spark.createDataFrame(rows, RddSchema.as_spark_schema()).repartition(3).write.mode("overwrite").parquet(url)
    return url


def _reader_rows(url, fields=None):
    with make_reader(url, schema_fields=fields, shuffle_row_groups=False, reader_pool_type="dummy") as reader:
        return sorted(reader, key=lambda row: row.id)


def _assert_rows_equal(actual, expected):
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got._fields == want._fields
        for name in want._fields:
            np.testing.assert_equal(getattr(got, name), getattr(want, name))
            assert type(getattr(got, name)) is type(getattr(want, name))


def test_dataset_as_rdd_decodes_every_row(spark, rdd_dataset):
    from petastorm.spark_utils import dataset_as_rdd

    rdd = dataset_as_rdd(rdd_dataset, spark)
    assert rdd.getNumPartitions() == 3  # one per row group
    _assert_rows_equal(sorted(rdd.collect(), key=lambda row: row.id), _reader_rows(rdd_dataset))


def test_dataset_as_rdd_schema_fields(spark, rdd_dataset):
    from petastorm.spark_utils import dataset_as_rdd

    rows = sorted(dataset_as_rdd(rdd_dataset, spark, [RddSchema.img, RddSchema.id]).collect(), key=lambda r: r.id)
    assert rows[0]._fields == ("id", "img")  # schema order, as the original's schema view
    _assert_rows_equal(rows, _reader_rows(rdd_dataset, [RddSchema.id, RddSchema.img]))
    by_regex = dataset_as_rdd(rdd_dataset, spark, ["na.*"]).collect()
    assert sorted(row.name for row in by_regex) == sorted(f"n{i}" for i in range(20))


def test_spark_utils_reexports():
    from petastorm import fs_utils
    from petastorm.etl import dataset_metadata
    from petastorm import spark_utils

    assert spark_utils.get_schema_from_dataset_url is dataset_metadata.get_schema_from_dataset_url
    assert spark_utils.FilesystemResolver is fs_utils.FilesystemResolver


@pytest.mark.slow
def test_readme_pyspark_example_runs_unchanged(spark, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("hello_world_generate", EXAMPLES / "generate_petastorm_dataset.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    dataset_url = f"file://{tmp_path / 'hello_world'}"
    generator.generate_petastorm_dataset(dataset_url)
    HelloWorldSchema = generator.HelloWorldSchema

    from petastorm.spark_utils import dataset_as_rdd
    rdd = dataset_as_rdd(dataset_url, spark, [HelloWorldSchema.id, HelloWorldSchema.image1])
    print(rdd.first().id)

    assert int(capsys.readouterr().out) in range(10)
    first = rdd.first()
    assert first._fields == ("id", "image1") and first.image1.shape == (128, 256, 3)
    # The fast route named in the docs: the data source gives tensor columns.
    from petastorm.spark import TensorUDT
    df = spark.read.format("petastorm").load(dataset_url)
    assert isinstance(df.schema["image1"].dataType, TensorUDT) and df.count() == 10


# ---------------------------------------------------------------------------------------------------------------
# petastorm.spark.spark_dataset_converter legacy names

@pytest.fixture
def converter(spark, tmp_path):
    conf = SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF
    previous = spark.conf.get(conf, None)
    spark.conf.set(conf, (tmp_path / "cache").as_uri())
    yield make_spark_converter(spark.range(16).repartition(2))
    if previous is None:
        spark.conf.unset(conf)
    else:
        spark.conf.set(conf, previous)


def test_converter_legacy_names(converter, monkeypatch, tmp_path):
    from typing import List

    from petastorm import fs_utils, make_batch_reader
    from petastorm.spark.spark_dataset_converter import (  # noqa: F401 - every name must import
        DEFAULT_ROW_GROUP_SIZE_BYTES, CachedDataFrameMeta, FilesystemResolver, List as LegacyList,
        TFDatasetContextManager, TorchDatasetContextManager, _cache_df_meta_list, _cache_df_meta_list_lock,
        _check_url, _get_horovod_rank_and_size, _check_rank_and_size_consistent_with_horovod,
        _get_parent_cache_dir_url, _make_sub_dir_url, _normalize_databricks_dbfs_url, _wait_file_available,
        get_filesystem_and_path_or_paths, logger, make_batch_reader as legacy_make_batch_reader,
        normalize_dir_url, register_delete_dir_handler)

    assert LegacyList is List and legacy_make_batch_reader is make_batch_reader
    assert get_filesystem_and_path_or_paths is fs_utils.get_filesystem_and_path_or_paths
    meta = [m for m in _cache_df_meta_list if m.cache_dir_url == converter.cache_dir_url]
    assert len(meta) == 1 and isinstance(meta[0], CachedDataFrameMeta) and meta[0].dtype == "float32"
    assert _get_parent_cache_dir_url() == (tmp_path / "cache").as_uri()
    converter.delete()
    assert converter.cache_dir_url not in [m.cache_dir_url for m in _cache_df_meta_list]

    with pytest.raises(ValueError, match="scheme-less"):
        _check_url("/a/b/c")
    assert _make_sub_dir_url("hdfs://nn1:9000/a/b", "c") == "hdfs://nn1:9000/a/b/c"
    assert _normalize_databricks_dbfs_url("dbfs:/xx/yy", "") == "file:/dbfs/xx/yy"
    assert _normalize_databricks_dbfs_url("file:///dbfs/xx/yy", "") == "file:///dbfs/xx/yy"
    with pytest.raises(ValueError, match="bad"):
        _normalize_databricks_dbfs_url("dbfs://xx/yy", "bad")
    monkeypatch.setenv("HOROVOD_RANK", "1")
    monkeypatch.setenv("HOROVOD_SIZE", "3")
    assert _get_horovod_rank_and_size() == (1, 3)
    assert _check_rank_and_size_consistent_with_horovod({"cur_shard": 1, "shard_count": 3})
    assert not _check_rank_and_size_consistent_with_horovod({"cur_shard": 0, "shard_count": 3})
    monkeypatch.setattr(converter_module, "_FILE_AVAILABILITY_WAIT_TIMEOUT_SECS", 0.2)
    with pytest.raises(RuntimeError, match="Timeout while waiting"):
        _wait_file_available([(tmp_path / "missing").as_uri()])


@pytest.mark.slow  # imports TensorFlow
def test_tf_dataset_context_manager(converter):
    from petastorm.spark.spark_dataset_converter import TFDatasetContextManager

    kwargs = {"num_epochs": 1, "reader_pool_type": "dummy"}
    with TFDatasetContextManager(converter.file_urls, 5, None, kwargs, None) as dataset:
        batches = [batch.id.numpy() for batch in dataset]
    assert len(batches[0]) == 5 and sorted(np.concatenate(batches).tolist()) == list(range(16))
    manager = converter.make_tf_dataset(batch_size=None, prefetch=2, num_epochs=1, shuffling_queue_capacity=4)
    assert isinstance(manager, TFDatasetContextManager)
    with manager as dataset:
        batches = [batch.id.numpy() for batch in dataset]
    assert len(batches[0]) == 16 and sorted(np.concatenate(batches).tolist()) == list(range(16))


@pytest.mark.slow  # imports torch
def test_torch_dataset_context_manager(converter):
    from petastorm.pytorch import BatchedDataLoader
    from petastorm.spark.spark_dataset_converter import TorchDatasetContextManager

    manager = TorchDatasetContextManager(parquet_file_url_list=converter.file_urls, batch_size=4,
                                         petastorm_reader_kwargs={"num_epochs": 1}, shuffling_queue_capacity=0,
                                         data_loader_fn=BatchedDataLoader)
    with manager as loader:
        assert isinstance(loader, BatchedDataLoader)
        ids = sorted(int(i) for batch in loader for i in batch["id"])
    assert ids == list(range(16))
    # As in the original, the reader comes from this module's make_batch_reader (tests patch it there).
    with mock.patch.object(converter_module, "make_batch_reader", wraps=converter_module.make_batch_reader) as made:
        with converter.make_torch_dataloader(batch_size=4, num_epochs=1, reader_pool_type="dummy") as loader:
            assert sorted(int(i) for batch in loader for i in batch["id"]) == list(range(16))
    assert made.call_args[1]["workers_count"] == 4 and made.call_args[1]["reader_pool_type"] == "dummy"
