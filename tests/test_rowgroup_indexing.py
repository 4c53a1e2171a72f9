"""Row-group indexes: built with Spark, stored as JSON and legacy pickle, read back, used by selectors."""
import json
import pickle
import shutil
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import IntegerType, StringType

from petastorm import make_reader
from petastorm.codecs import ScalarCodec
from petastorm.errors import PetastormMetadataError
from petastorm.etl.dataset_metadata import write_dataset_metadata
from petastorm.etl.rowgroup_indexers import FieldNotNullIndexer, SingleFieldIndexer
from petastorm.etl.rowgroup_indexing import (ROWGROUPS_INDEX_JSON_KEY, ROWGROUPS_INDEX_KEY, build_rowgroup_index,
                                             get_row_group_indexes)
from petastorm.selectors import IntersectIndexSelector, SingleIndexSelector, UnionIndexSelector
from petastorm.unischema import Unischema, UnischemaField

IndexSchema = Unischema("IndexSchema", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("color", np.str_, (), ScalarCodec(StringType()), False),
    UnischemaField("note", np.str_, (), ScalarCodec(StringType()), True),
])
# Row group i (one per file) holds ids 10*i .. 10*i+9; colors and notes chosen per row group.
COLORS = ["red", "red", "green", "blue"]
NOTES = [None, "x", None, "y"]


@pytest.fixture(scope="module")
def indexed(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("index") / "ds"
    root.mkdir()
    for i in range(4):
        ids = list(range(10 * i, 10 * i + 10))
        pq.write_table(pa.table({"id": pa.array(ids, pa.int32()), "color": [COLORS[i]] * 10,
                                 "note": pa.array([NOTES[i]] * 10, pa.string())}), root / f"part-{i}.parquet")
    url = f"file://{root}"
    write_dataset_metadata(url, IndexSchema)
    build_rowgroup_index(url, spark.sparkContext, [SingleFieldIndexer("color_index", "color"),
                                                   SingleFieldIndexer("id_index", "id"),
                                                   FieldNotNullIndexer("note_index", "note")])
    return root


def test_indexes_read_back(indexed):
    indexes = get_row_group_indexes(str(indexed))
    assert set(indexes) == {"color_index", "id_index", "note_index"}
    assert indexes["color_index"].get_row_group_indexes("red") == {0, 1}
    assert indexes["id_index"].get_row_group_indexes(np.int32(25)) == {2}
    assert indexes["note_index"].get_row_group_indexes() == {1, 3}


def test_both_forms_are_stored_and_agree(indexed):
    metadata = pq.read_metadata(indexed / "_common_metadata").metadata
    as_json = json.loads(metadata[ROWGROUPS_INDEX_JSON_KEY])
    assert {entry["index_name"] for entry in as_json["indexes"]} == {"color_index", "id_index", "note_index"}
    legacy = pickle.loads(metadata[ROWGROUPS_INDEX_KEY])
    # The original's state layout: _index_name, _column_name, _index_data (defaultdict(set) / set).
    color = legacy["color_index"]
    assert vars(color).keys() == {"_index_name", "_column_name", "_index_data"}
    assert isinstance(color._index_data, defaultdict) and color._index_data["blue"] == {3}
    assert legacy["note_index"]._index_data == {1, 3}


def test_legacy_pickle_is_read_without_json(indexed, tmp_path):
    target = tmp_path / "legacy_only"
    shutil.copytree(indexed, target)
    md = pq.read_metadata(target / "_common_metadata")
    schema = md.schema.to_arrow_schema()
    kept = {k: v for k, v in schema.metadata.items() if k != ROWGROUPS_INDEX_JSON_KEY}
    pq.write_metadata(schema.with_metadata(kept), str(target / "_common_metadata"))
    indexes = get_row_group_indexes(str(target))
    assert indexes["color_index"].get_row_group_indexes("green") == {2}


def test_selectors(indexed):
    url = f"file://{indexed}"
    with make_reader(url, rowgroup_selector=SingleIndexSelector("color_index", ["red", "blue"])) as reader:
        assert sorted(row.id for row in reader) == list(range(20)) + list(range(30, 40))
    both = IntersectIndexSelector([SingleIndexSelector("color_index", ["red"]), SingleIndexSelector("note_index", [None])])
    assert both.select_row_groups(get_row_group_indexes(str(indexed))) == {1}
    either = UnionIndexSelector([SingleIndexSelector("color_index", ["green"]),
                                 SingleIndexSelector("id_index", [1, 39])])
    with make_reader(url, rowgroup_selector=either, shuffle_row_groups=False) as reader:
        assert [row.id for row in reader] == list(range(10)) + list(range(20, 40))
    with pytest.raises(ValueError, match="missing_index"):
        make_reader(url, rowgroup_selector=SingleIndexSelector("missing_index", [1]))


def test_no_index_is_a_clear_error(tmp_path):
    pq.write_table(pa.table({"id": pa.array([1], pa.int32()), "color": ["a"], "note": pa.array([None], pa.string())}),
                   tmp_path / "part-0.parquet")
    write_dataset_metadata(str(tmp_path), IndexSchema)
    with pytest.raises(PetastormMetadataError, match="build_rowgroup_index"):
        get_row_group_indexes(str(tmp_path))


def test_single_field_indexer_rejects_unindexable_values():
    indexer = SingleFieldIndexer("i", "v")
    with pytest.raises(ValueError, match="Cannot index column 'v'"):
        indexer.build_index([{"v": 1.5}], 0)
    indexer.build_index([{"v": np.array(["a", "b"])}, {"v": None}], 3)
    assert indexer.get_row_group_indexes("b") == {3}
