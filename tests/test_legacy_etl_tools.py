"""The original's ETL helper modules: petastorm.etl.legacy, petastorm.utils, petastorm.etl.metadata_util,
petastorm.tools.spark_session_cli and the legacy entry points of petastorm-copy-dataset and
petastorm-generate-metadata, on real Parquet datasets written by Petastorm 0.13.1."""
import argparse
import functools
import inspect
import io
import logging
import multiprocessing
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, LongType

from petastorm import fs_utils, make_reader, utils
from petastorm.codecs import NdarrayCodec, ScalarCodec
from petastorm.errors import DecodeFieldError, PetastormMetadataError
from petastorm.etl import dataset_metadata, legacy, metadata_util, petastorm_generate_metadata, rowgroup_indexing
from petastorm.etl.dataset_metadata import (ROW_GROUPS_PER_FILE_KEY, UNISCHEMA_KEY, get_schema,
                                            get_schema_from_dataset_url)
from petastorm.etl.legacy import (RestrictedUnpickler, depickle_legacy_package_name_compatible, restricted_loads,
                                  safe_modules)
from petastorm.etl.rowgroup_indexers import SingleFieldIndexer
from petastorm.etl.rowgroup_indexing import ROWGROUPS_INDEX_KEY, get_row_group_indexes
from petastorm.parquet_store import ParquetStore
from petastorm.tools import copy_dataset, spark_session_cli
from petastorm.unischema import Unischema, UnischemaField

FIXTURES = Path(__file__).parent / "data" / "petastorm-0.13.1"

# Located by petastorm-generate-metadata --unischema_class test_legacy_etl_tools.IdLabelSchema
IdLabelSchema = Unischema("IdLabelSchema", [
    UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("label", np.int32, (), ScalarCodec(IntegerType()), False),
])


def _copy_fixture(name, tmp_path):
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def _stored(path, key):
    return pq.read_metadata(path / "_common_metadata").metadata[key]


# ------------------------------------------------------------------ petastorm.etl.legacy

def _os_system_pickle(command):
    """A protocol-0 pickle that calls os.system(command) when loaded by pickle.loads."""
    return b"cos\nsystem\n(V" + command.encode() + b"\ntR."


def test_restricted_loads_refuses_os_system_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    data = _os_system_pickle(f"touch {marker}")
    with pytest.raises(pickle.UnpicklingError, match=r"global 'os.system' is forbidden"):
        restricted_loads(data)
    with pytest.raises(pickle.UnpicklingError):
        depickle_legacy_package_name_compatible(data)
    assert not marker.exists()
    pickle.loads(data)  # control: the same bytes do run the command without the allow-list
    assert marker.exists()


def test_restricted_loads_refuses_what_the_original_let_through():
    # The original checked only the top-level package, so builtins.eval loaded (and ran); ours names exact classes.
    eval_pickle = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04eval\x93\x8c\x031+1\x85R."
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        restricted_loads(eval_pickle)
    dotted = b"\x80\x04\x8c\x10petastorm.codecs\x8c\x09os.system\x93\x8c\x04true\x85R."
    with pytest.raises(pickle.UnpicklingError, match="petastorm.codecs.os.system"):
        restricted_loads(dotted)
    # a refusal after class lookup (setting the state of a class) is an UnpicklingError too
    patch_class = b"cpetastorm.codecs\nNdarrayCodec\n(N}Vdecode\ncbuiltins\nset\nstb."
    with pytest.raises(pickle.UnpicklingError, match="Refused to set the state"):
        restricted_loads(patch_class)


def test_restricted_loads_reads_the_original_metadata():
    schema = restricted_loads(_stored(FIXTURES / "hello_world", UNISCHEMA_KEY))
    assert isinstance(schema, Unischema)
    assert list(schema.fields) == ["id", "image1", "array_4d"]
    assert schema == get_schema(str(FIXTURES / "hello_world"))
    indexes = depickle_legacy_package_name_compatible(_stored(FIXTURES / "codecs", ROWGROUPS_INDEX_KEY))
    assert isinstance(indexes["label_index"], SingleFieldIndexer)
    assert indexes["label_index"].indexed_values == get_row_group_indexes(str(FIXTURES / "codecs"))[
        "label_index"].indexed_values


@pytest.mark.parametrize("old_package", ["av.experimental.deepdrive.dataset_toolkit", "av.ml.dataset_toolkit"])
def test_depickle_old_package_names(old_package, caplog):
    schema = Unischema("OldSchema", [UnischemaField("id", np.int64, (), None, False),
                                     UnischemaField("vec", np.float32, (3,), NdarrayCodec(), True)])
    data = pickle.dumps(schema, protocol=0)
    for module in (b"unischema", b"codecs"):
        data = data.replace(b"cpetastorm." + module + b"\n", b"c" + old_package.encode() + b"." + module + b"\n")
    assert old_package.encode() in data and b"petastorm" not in data
    with caplog.at_level(logging.WARNING, logger="petastorm.etl.legacy"):
        loaded = depickle_legacy_package_name_compatible(data)
    assert loaded == schema and loaded.vec.codec == NdarrayCodec()
    assert old_package in caplog.text and "Regenerate" in caplog.text


def test_legacy_names_have_the_original_shape():
    assert {"petastorm", "numpy", "pyspark", "collections", "decimal", "builtins"} <= safe_modules
    assert RestrictedUnpickler(io.BytesIO(pickle.dumps([1, "a"]))).load() == [1, "a"]
    assert legacy.logger.name == "petastorm.etl.legacy"
    assert dataset_metadata.depickle_legacy_package_name_compatible is depickle_legacy_package_name_compatible
    assert rowgroup_indexing.depickle_legacy_package_name_compatible is depickle_legacy_package_name_compatible
    assert dataset_metadata.get_dataset_path is fs_utils.get_dataset_path
    assert dataset_metadata.get_filesystem_and_path_or_paths is fs_utils.get_filesystem_and_path_or_paths
    for module in (dataset_metadata, rowgroup_indexing, metadata_util, petastorm_generate_metadata, copy_dataset):
        assert module.FilesystemResolver is fs_utils.FilesystemResolver, module.__name__
    assert rowgroup_indexing.PARALLEL_SLICE_NUM == 2000
    assert rowgroup_indexing.PieceInfo(3, "a.parquet", 1, ())._fields == ("piece_index", "path", "row_group",
                                                                         "partition_keys")


# ------------------------------------------------------------------ petastorm.utils

def test_add_to_dataset_metadata_then_read_back(tmp_path):
    target = _copy_fixture("codecs", tmp_path)
    utils.add_to_dataset_metadata(str(target), "my.key", "my value")
    utils.add_to_dataset_metadata(ParquetStore.open(f"file://{target}"), b"my.bytes", b"\x00\x01")
    metadata = pq.read_metadata(target / "_common_metadata").metadata
    assert metadata[b"my.key"] == b"my value" and metadata[b"my.bytes"] == b"\x00\x01"
    assert {UNISCHEMA_KEY, ROW_GROUPS_PER_FILE_KEY, ROWGROUPS_INDEX_KEY} <= set(metadata)
    assert get_schema_from_dataset_url(f"file://{target}")._name == "CodecSchema"
    utils.add_to_dataset_metadata(str(target), "my.key", "replaced")
    assert _stored(target, b"my.key") == b"replaced"


def test_add_to_dataset_metadata_creates_common_metadata(tmp_path):
    target = _copy_fixture("plain_scalar", tmp_path)
    utils.add_to_dataset_metadata(str(target), b"k", b"v")
    assert _stored(target, b"k") == b"v"
    first_file = sorted(target.glob("part-*.parquet"))[0]
    assert pq.read_metadata(target / "_common_metadata").schema.names == pq.read_metadata(first_file).schema.names
    with pytest.raises(ValueError, match="not a list of files"):
        utils.add_to_dataset_metadata(ParquetStore.open([str(first_file)]), b"k", b"v")
    with pytest.raises(TypeError):
        utils.add_to_dataset_metadata(42, b"k", b"v")


def test_decode_row_matches_the_reader():
    schema = get_schema(str(FIXTURES / "codecs"))
    first_file = sorted((FIXTURES / "codecs").glob("part-*.parquet"))[0]
    stored = pq.read_table(first_file).to_pylist()
    with make_reader(str(FIXTURES / "codecs"), shuffle_row_groups=False) as reader:
        expected = {row.id: row._asdict() for row in reader}
    for row in stored[:5]:
        decoded = utils.decode_row(dict(row, not_a_field=1), schema)
        assert set(decoded) == set(schema.fields)
        for name, value in expected[decoded["id"]].items():
            if value is None:
                assert decoded[name] is None
            else:
                np.testing.assert_array_equal(decoded[name], value)
    assert isinstance(utils.decode_row({"label": 7}, schema)["label"], np.int32)
    with pytest.raises(DecodeFieldError, match="ragged"):
        utils.decode_row({"ragged": b"not an npy cell"}, schema)


def test_run_in_subprocess_and_pool():
    assert utils.run_in_subprocess(os.getpid) != os.getpid()
    assert utils.run_in_subprocess(divmod, 7, 2) == (3, 1)
    assert utils.run_in_subprocess(int, "ff", base=16) == 255
    assert utils.Pool is multiprocessing.Pool
    assert utils.DecodeFieldError is DecodeFieldError
    assert utils.logger.name == "petastorm.utils"


# ------------------------------------------------------------------ petastorm.etl.metadata_util

def test_metadata_util_prints_schema_and_indexes(capsys):
    assert metadata_util.main(["--dataset-url", f"file://{FIXTURES / 'codecs'}/"]) == 0
    out = capsys.readouterr().out
    assert "*** Schema from dataset metadata ***" in out and "CodecSchema" in out and "ragged" in out
    assert "*** Row group indexes from dataset metadata ***" in out and "Index: label_index" in out
    assert "  -- " in out
    assert metadata_util.main(["--dataset-url", str(FIXTURES / "codecs"), "--index", "--print-values"]) == 0
    out = capsys.readouterr().out
    assert "Schema from" not in out and "{" in out
    assert metadata_util.main(["--dataset-url", str(FIXTURES / "codecs"), "--skip-index", "label_index"]) == 0
    assert "  (skipped)" in capsys.readouterr().out
    assert metadata_util.print_function is not None


def test_missing_row_group_index_is_a_value_error_as_in_the_original():
    with pytest.raises(ValueError, match="no row-group index") as excinfo:
        get_row_group_indexes(str(FIXTURES / "hello_world"))
    assert isinstance(excinfo.value, PetastormMetadataError)


def test_metadata_util_on_a_dataset_without_metadata(capsys):
    assert metadata_util.main(["--dataset-url", str(FIXTURES / "hello_world")]) == 0
    captured = capsys.readouterr()
    assert "HelloWorldSchema" in captured.out and "No row group indexes" in captured.err
    assert metadata_util.main(["--dataset-url", str(FIXTURES / "plain_scalar"), "--schema"]) == 1
    assert "No schema" in capsys.readouterr().err


# ------------------------------------------------------------------ petastorm.tools.spark_session_cli

def test_spark_session_cli_configures_a_builder():
    parser = argparse.ArgumentParser()
    spark_session_cli.add_configure_spark_arguments(parser)
    args = parser.parse_args(["--master", "local[3]", "--spark-session-config", "spark.executor.memory=2g",
                              "spark.driver.extraJavaOptions=-Dx=y"])
    builder = SparkSession.Builder()
    assert spark_session_cli.configure_spark(builder, args) is builder
    assert builder._options["spark.master"] == "local[3]"
    assert builder._options["spark.executor.memory"] == "2g"
    assert builder._options["spark.driver.extraJavaOptions"] == "-Dx=y"
    with pytest.raises(RuntimeError, match="add_configure_spark_arguments"):
        spark_session_cli.configure_spark(SparkSession.Builder(), argparse.Namespace(master=None))
    with pytest.raises(ValueError, match="key=value"):
        spark_session_cli.configure_spark(SparkSession.Builder(), parser.parse_args(["--spark-session-config", "x"]))
    assert copy_dataset.configure_spark is spark_session_cli.configure_spark
    assert copy_dataset.add_configure_spark_arguments is spark_session_cli.add_configure_spark_arguments


# ------------------------------------------------------------------ copy_dataset / petastorm_generate_metadata

def test_copy_dataset_parser_takes_the_original_arguments():
    args = copy_dataset.args_parser().parse_args([
        "file:///src", "file:///dst", "--overwrite-output", "--field-regex", "id", "la.*", "--not-null-fields",
        "label", "--partition-count", "3", "--row-group-size-mb", "64", "--hdfs-driver", "libhdfs",
        "--master", "local[2]", "--spark-session-config", "a=b"])
    assert (args.source_url, args.target_url, args.overwrite_output, args.field_regex, args.not_null_fields,
            args.partition_count, args.row_group_size_mb, args.hdfs_driver, args.master,
            args.spark_session_config) == ("file:///src", "file:///dst", True, ["id", "la.*"], ["label"], 3, 64,
                                           "libhdfs", "local[2]", ["a=b"])
    assert copy_dataset.reduce is functools.reduce
    assert list(inspect.signature(copy_dataset.copy_dataset).parameters)[:9] == [
        "spark", "source_url", "target_url", "field_regex", "not_null_fields", "overwrite_output",
        "partitions_count", "row_group_size_mb", "hdfs_driver"]


def test_generate_metadata_legacy_names_and_main(tmp_path):
    assert petastorm_generate_metadata.add_to_dataset_metadata is utils.add_to_dataset_metadata
    assert list(inspect.signature(petastorm_generate_metadata.add_to_dataset_metadata).parameters) == [
        "dataset", "key", "value"]
    assert petastorm_generate_metadata.ROWGROUPS_INDEX_KEY == ROWGROUPS_INDEX_KEY
    assert petastorm_generate_metadata.ROW_GROUPS_PER_FILE_KEY == ROW_GROUPS_PER_FILE_KEY
    assert petastorm_generate_metadata.materialize_dataset is dataset_metadata.materialize_dataset
    assert "--dataset_url" in petastorm_generate_metadata.example_text

    target = _copy_fixture("codecs", tmp_path)
    (target / "_common_metadata").unlink()
    url = f"file://{target}"
    assert petastorm_generate_metadata._main(
        ["--dataset_url", url, "--unischema_class", "test_legacy_etl_tools.IdLabelSchema"]) is None
    assert get_schema_from_dataset_url(url) == IdLabelSchema
    petastorm_generate_metadata._main(["--dataset-url", url])  # the dashed spelling, reusing the stored schema
    assert get_schema_from_dataset_url(url) == IdLabelSchema
    with make_reader(url) as reader:
        assert sorted(row.id for row in reader) == list(range(60))


@pytest.mark.slow
def test_copy_dataset_main_with_an_argument_list(spark, tmp_path):
    source = f"file://{_copy_fixture('codecs', tmp_path)}"
    target = f"file://{tmp_path / 'copy'}"
    assert copy_dataset._main([source, target, "--field-regex", "id", "label", "--partition-count", "1",
                               "--spark-session-config", "spark.sql.shuffle.partitions=2"]) is None
    assert list(get_schema_from_dataset_url(target).fields) == ["id", "label"]
    with make_reader(target) as reader:
        assert sorted(row.id for row in reader) == list(range(60))
    assert len(list((tmp_path / "copy").glob("part-*.parquet"))) == 1
    assert not spark.sparkContext._jsc.sc().isStopped()  # the active session is reused and left running
