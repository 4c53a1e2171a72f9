"""materialize_dataset, the metadata keys it writes, schema loading preferences and the row-group listing."""
import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import IntegerType

from petastorm.codecs import NdarrayCodec, ScalarCodec
from petastorm.errors import PetastormMetadataError
from petastorm.etl.dataset_metadata import (ROW_GROUPS_PER_FILE_KEY, UNISCHEMA_JSON_KEY, UNISCHEMA_KEY,
                                            add_to_dataset_metadata, get_schema, get_schema_from_dataset_url,
                                            infer_or_load_unischema, load_row_groups, materialize_dataset)
from petastorm.parquet_store import ParquetStore
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

SPARK_ROW_METADATA = b"org.apache.spark.sql.parquet.row.metadata"

BigRowSchema = Unischema("BigRowSchema", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("vec", np.float32, (16384,), NdarrayCodec(), False),
    UnischemaField("flag", np.bool_, (), None, False),
])


def _write(spark, url, use_summary_metadata=False, rows=60):
    with materialize_dataset(spark, url, BigRowSchema, row_group_size_mb=1,
                             use_summary_metadata=use_summary_metadata):
        data = [dict_to_spark_row(BigRowSchema, {"id": i, "vec": np.full(16384, i, np.float32), "flag": i % 3 == 0})
                for i in range(rows)]
        spark.createDataFrame(data, BigRowSchema.as_spark_schema()).repartition(2).write.mode("overwrite") \
            .parquet(url)


@pytest.fixture(scope="module")
def dataset(spark, tmp_path_factory):
    path = tmp_path_factory.mktemp("metadata") / "ds"
    _write(spark, f"file://{path}")
    return path


def _footer_counts(path):
    return {str(p.relative_to(path)): pq.read_metadata(p).num_row_groups for p in sorted(path.glob("part-*"))}


def test_keys_written_and_spark_footer_metadata_kept(dataset):
    metadata = pq.read_metadata(dataset / "_common_metadata").metadata
    assert {UNISCHEMA_JSON_KEY, UNISCHEMA_KEY, ROW_GROUPS_PER_FILE_KEY, SPARK_ROW_METADATA} <= set(metadata)
    counts = json.loads(metadata[ROW_GROUPS_PER_FILE_KEY])
    assert counts == _footer_counts(dataset)
    assert max(counts.values()) > 1, "row_group_size_mb=1 should split 2 MB files into several row groups"
    assert not (dataset / "_metadata").exists()
    assert get_schema_from_dataset_url(f"file://{dataset}") == BigRowSchema


def test_row_group_listing_is_sorted_by_path(dataset):
    pieces = load_row_groups(str(dataset))
    expected = [(path, i) for path, count in sorted(_footer_counts(dataset).items()) for i in range(count)]
    assert [(p.path, p.row_group) for p in pieces] == expected
    assert sum(pq.read_metadata(dataset / p.path).row_group(p.row_group).num_rows for p in pieces) == 60


def test_summary_metadata_listing_matches(spark, tmp_path, dataset):
    path = tmp_path / "with_summary"
    _write(spark, f"file://{path}", use_summary_metadata=True)
    assert pq.read_metadata(path / "_metadata").num_row_groups > 2
    pieces = load_row_groups(str(path))
    assert [(p.path, p.row_group) for p in pieces] == \
        [(path_, i) for path_, count in sorted(_footer_counts(path).items()) for i in range(count)]


def test_hadoop_settings_set_inside_and_restored_after(spark, tmp_path):
    # Session confs: Spark copies them into the Hadoop configuration of the session's jobs (classic and Connect).
    conf = spark.conf
    conf.set("parquet.block.size", "12345")
    conf.unset("parquet.summary.metadata.level")
    with materialize_dataset(spark, f"file://{tmp_path}/x", BigRowSchema, row_group_size_mb=3):
        assert conf.get("parquet.block.size") == str(3 * 1024 * 1024)
        assert conf.get("parquet.summary.metadata.level") == "NONE"
        spark.createDataFrame([dict_to_spark_row(BigRowSchema, {"id": 1, "vec": np.zeros(16384, np.float32),
                                                                "flag": True})],
                              BigRowSchema.as_spark_schema()).write.parquet(f"file://{tmp_path}/x")
    assert conf.get("parquet.block.size") == "12345"
    assert conf.get("parquet.summary.metadata.level", None) is None
    conf.unset("parquet.block.size")
    assert spark.sparkContext._jsc.hadoopConfiguration().get("parquet.summary.metadata.level") is None


def test_hadoop_settings_restored_when_the_write_fails(spark, tmp_path):
    conf = spark.conf
    conf.set("parquet.block.size", "777")
    with pytest.raises(RuntimeError, match="boom"):
        with materialize_dataset(spark, f"file://{tmp_path}/y", BigRowSchema, row_group_size_mb=5,
                                 use_summary_metadata=True):
            assert conf.get("parquet.summary.metadata.level") == "ALL"
            raise RuntimeError("boom")
    assert conf.get("parquet.block.size") == "777"
    assert conf.get("parquet.summary.metadata.level", None) is None
    assert not (tmp_path / "y").exists()
    conf.unset("parquet.block.size")


def _copy_without(dataset, tmp_path, drop, replace=None):
    """A copy of the dataset whose _common_metadata lacks the keys in ``drop`` (plus ``replace`` entries)."""
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(dataset, target)
    md = pq.read_metadata(target / "_common_metadata")
    schema = md.schema.to_arrow_schema()
    kept = {k: v for k, v in schema.metadata.items() if k not in drop}
    kept.update(replace or {})
    pq.write_metadata(schema.with_metadata(kept), str(target / "_common_metadata"))
    return target


def test_json_schema_is_preferred_over_the_pickle(dataset, tmp_path):
    target = _copy_without(dataset, tmp_path, drop=set(), replace={UNISCHEMA_KEY: b"not a pickle"})
    assert get_schema(str(target)) == BigRowSchema


def test_legacy_pickle_used_without_json(dataset, tmp_path):
    target = _copy_without(dataset, tmp_path, drop={UNISCHEMA_JSON_KEY})
    assert get_schema(str(target)) == BigRowSchema


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('/tmp/petastorm-pwned').touch()",))


def test_unsafe_legacy_pickle_is_refused(dataset, tmp_path):
    target = _copy_without(dataset, tmp_path, drop={UNISCHEMA_JSON_KEY},
                           replace={UNISCHEMA_KEY: pickle.dumps(_Exploit())})
    with pytest.raises(PetastormMetadataError, match="Unischema"):
        get_schema(str(target))


def test_missing_listing_falls_back_to_footers(dataset, tmp_path):
    target = _copy_without(dataset, tmp_path, drop={ROW_GROUPS_PER_FILE_KEY})
    assert [(p.path, p.row_group) for p in load_row_groups(str(target))] == \
        [(p.path, p.row_group) for p in load_row_groups(str(dataset))]


def test_plain_parquet_is_inferred(tmp_path):
    (tmp_path / "k=a").mkdir()
    pq.write_table(pa.table({"x": [1, 2], "s": ["u", "v"]}), tmp_path / "k=a" / "part-0.parquet")
    with pytest.raises(PetastormMetadataError, match="_common_metadata"):
        get_schema(str(tmp_path))
    schema = infer_or_load_unischema(str(tmp_path))
    assert list(schema.fields) == ["k", "x", "s"]
    assert [p.partition_keys for p in load_row_groups(str(tmp_path))] == [(("k", "a"),)]


def test_add_to_dataset_metadata_keeps_other_keys(dataset, tmp_path):
    target = _copy_without(dataset, tmp_path, drop=set())
    add_to_dataset_metadata(ParquetStore.open(str(target)), {b"extra.key": b"value"})
    metadata = pq.read_metadata(target / "_common_metadata").metadata
    assert metadata[b"extra.key"] == b"value" and UNISCHEMA_JSON_KEY in metadata and SPARK_ROW_METADATA in metadata
