"""The command-line tools, called in-process: petastorm inspect, petastorm-generate-metadata,
petastorm-copy-dataset."""
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import IntegerType

from petastorm import cli, make_reader
from petastorm.codecs import ScalarCodec
from petastorm.etl import petastorm_generate_metadata
from petastorm.etl.dataset_metadata import (ROW_GROUPS_PER_FILE_KEY, UNISCHEMA_JSON_KEY, UNISCHEMA_KEY,
                                            get_schema_from_dataset_url)
from petastorm.etl.rowgroup_indexing import ROWGROUPS_INDEX_KEY, get_row_group_indexes
from petastorm.tools import copy_dataset
from petastorm.unischema import Unischema, UnischemaField

FIXTURES = Path(__file__).parent / "data" / "petastorm-0.13.1"

# Located by petastorm-generate-metadata --unischema_class test_cli_tools.IdOnlySchema
IdOnlySchema = Unischema("IdOnlySchema", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
])


def _copy_fixture(name, tmp_path):
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def test_inspect_petastorm_dataset(capsys):
    assert cli.main(["inspect", str(FIXTURES / "codecs")]) == 0
    out = capsys.readouterr().out
    assert "Schema CodecSchema (stored)" in out
    assert "CompressedImageCodec" in out and "ragged" in out
    assert re.search(r"^total\s+3\s+60\s", out, re.MULTILINE)
    assert "label_index  SingleFieldIndexer  label" in out
    assert "dataset-toolkit.unischema.v1" in out


def test_inspect_plain_parquet_and_missing_dataset(capsys, tmp_path):
    assert cli.main(["inspect", str(FIXTURES / "plain_scalar")]) == 0
    out = capsys.readouterr().out
    assert "inferred from Parquet" in out and "Row-group indexes: none" in out
    assert cli.main(["inspect", str(tmp_path / "nothing")]) == 1
    assert "not found" in capsys.readouterr().err


def test_generate_metadata_with_a_schema_class(tmp_path):
    target = _copy_fixture("hello_world", tmp_path)
    (target / "_common_metadata").unlink()
    url = f"file://{target}"
    petastorm_generate_metadata.main(["--dataset_url", url, "--unischema_class", "test_cli_tools.IdOnlySchema"])
    assert get_schema_from_dataset_url(url) == IdOnlySchema
    with make_reader(url) as reader:
        assert sorted(row.id for row in reader) == list(range(10))
    with pytest.raises(ValueError, match="not a petastorm.unischema.Unischema"):
        petastorm_generate_metadata.main(["--dataset_url", url, "--unischema_class", "numpy.float32"])


def test_regenerate_keeps_stored_schema_and_index(tmp_path):
    target = _copy_fixture("codecs", tmp_path)
    url = f"file://{target}"
    petastorm_generate_metadata.main(["--dataset_url", url])
    metadata = pq.read_metadata(target / "_common_metadata").metadata
    assert {UNISCHEMA_JSON_KEY, UNISCHEMA_KEY, ROW_GROUPS_PER_FILE_KEY, ROWGROUPS_INDEX_KEY} <= set(metadata)
    assert get_schema_from_dataset_url(url)._name == "CodecSchema"
    assert "label_index" in get_row_group_indexes(str(target))


def test_generate_summary_metadata_with_spark(spark, tmp_path):
    target = _copy_fixture("codecs", tmp_path)
    url = f"file://{target}"
    petastorm_generate_metadata.main(["--dataset_url", url, "--use-summary-metadata"])
    assert pq.read_metadata(target / "_metadata").num_row_groups == 3
    assert ROWGROUPS_INDEX_KEY in pq.read_metadata(target / "_common_metadata").metadata
    assert not spark.sparkContext._jsc.sc().isStopped()
    with make_reader(url) as reader:
        assert len(list(reader)) == 60


def test_copy_dataset(spark, tmp_path):
    source = f"file://{_copy_fixture('codecs', tmp_path)}"
    target = f"file://{tmp_path / 'copy'}"
    argv = [source, target, "--field-regex", "id", "rag.*", "--not-null-fields", "ragged", "--partition-count", "2"]
    copy_dataset.main(argv)
    schema = get_schema_from_dataset_url(target)
    assert list(schema.fields) == ["id", "ragged"]
    with make_reader(target) as reader:
        ids = sorted(row.id for row in reader)
    assert ids == [i for i in range(60) if i % 4 != 0]
    assert len(list((tmp_path / "copy").glob("part-*.parquet"))) == 2
    with pytest.raises(Exception, match="already exists"):
        copy_dataset.main(argv)
    copy_dataset.main(argv + ["--overwrite-output"])
    with pytest.raises(ValueError, match="not among the copied fields"):
        copy_dataset.main([source, target, "--field-regex", "id", "--not-null-fields", "ragged"])
