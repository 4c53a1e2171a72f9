"""Datasets written by Petastorm 0.13.1 read back value for value (tests/data/petastorm-0.13.1/oracle.json).

The oracle gives numeric arrays as sha256 of their bytes. Every field must match exactly, except JPEG pixels:
a JPEG decoder other than the one that made the oracle may differ by a few levels. For the JPEG field we check
shape and dtype, and accept either the oracle's sha256 or a decode within 8 levels of an independent decoder
(Pillow) of the same stored bytes.
"""
from __future__ import annotations

import datetime
import decimal
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from petastorm import make_batch_reader, make_reader
from petastorm.etl.dataset_metadata import get_schema_from_dataset_url, load_row_groups
from petastorm.etl.rowgroup_indexing import get_row_group_indexes
from petastorm.selectors import SingleIndexSelector

DATA = Path(__file__).parent / "data" / "petastorm-0.13.1"
ORACLE = json.loads((DATA / "oracle.json").read_text())
JPEG_TOLERANCE = 8


def as_oracle(value):
    """A decoded value in the oracle's JSON form."""
    if value is None:
        return None
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SU":
            render = repr if value.dtype.kind == "S" else str
            return {"dtype": value.dtype.kind, "shape": list(value.shape),
                    "values": [render(v) for v in value.ravel().tolist()]}
        return {"dtype": value.dtype.str, "shape": list(value.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}
    if isinstance(value, (np.datetime64, pd.Timestamp)):
        return int(pd.Timestamp(value).value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (str, np.str_)):
        return str(value)
    raise TypeError(f"unexpected decoded type {type(value)}")


def read_all_rows(name: str) -> list[dict]:
    with make_reader(f"file://{DATA / name}", shuffle_row_groups=False) as reader:
        assert not reader.batched_output
        rows = [row._asdict() for row in reader]
    return sorted(rows, key=lambda row: row["id"])


@pytest.mark.parametrize("name", ["hello_world", "test_schema"])
def test_make_reader_matches_oracle_exactly(name):
    rows = read_all_rows(name)
    expected = ORACLE[name]
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert {field: as_oracle(value) for field, value in row.items()} == want


def _jpeg_within_tolerance(decoded: np.ndarray, stored: bytes) -> bool:
    reference = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"))
    return int(np.abs(decoded.astype(np.int16) - reference.astype(np.int16)).max()) <= JPEG_TOLERANCE


def test_codecs_dataset_matches_oracle():
    rows = read_all_rows("codecs")
    expected = ORACLE["codecs"]
    assert len(rows) == len(expected) == 60
    stored_jpeg = {}
    for path in sorted((DATA / "codecs").glob("part-*.parquet")):
        table = pq.read_table(path, columns=["id", "jpeg"])
        stored_jpeg.update(zip(table.column("id").to_pylist(), table.column("jpeg").to_pylist()))
    for row, want in zip(rows, expected):
        got = {field: as_oracle(value) for field, value in row.items()}
        jpeg_got, jpeg_want = got.pop("jpeg"), want["jpeg"]
        assert got == {k: v for k, v in want.items() if k != "jpeg"}
        assert (jpeg_got["dtype"], jpeg_got["shape"]) == (jpeg_want["dtype"], jpeg_want["shape"])
        assert jpeg_got["sha256"] == jpeg_want["sha256"] or \
            _jpeg_within_tolerance(row["jpeg"], stored_jpeg[row["id"]])


def test_plain_parquet_batches_match_oracle():
    rows = []
    with make_batch_reader(f"file://{DATA / 'plain_scalar'}", shuffle_row_groups=False) as reader:
        assert reader.batched_output
        for batch in reader:
            columns = batch._asdict()
            rows += [{name: values[i] for name, values in columns.items()} for i in range(len(batch.id))]
    rows.sort(key=lambda row: row["id"])
    assert [{field: as_oracle(value) for field, value in row.items()} for row in rows] == ORACLE["plain_scalar"]


def test_legacy_schema_and_row_groups():
    schema = get_schema_from_dataset_url(f"file://{DATA / 'test_schema'}")
    assert schema._name == "TestSchema" and len(schema.fields) == 17
    pieces = load_row_groups(str(DATA / "test_schema"))
    assert [piece.path for piece in pieces] == sorted(piece.path for piece in pieces)
    assert {piece.partition_keys for piece in pieces} == {(("partition_key", f"p_{i}"),) for i in range(6)}


def test_legacy_pickled_rowgroup_index_selects_row_groups():
    indexes = get_row_group_indexes(str(DATA / "codecs"))
    label_index = indexes["label_index"]
    assert sorted(label_index.indexed_values) == [0, 1, 2, 3, 4]
    assert label_index.get_row_group_indexes(np.int32(3)) == {0, 1, 2}
    with make_reader(f"file://{DATA / 'codecs'}", rowgroup_selector=SingleIndexSelector("label_index", [3]),
                     schema_fields=["id", "label"]) as reader:
        assert sorted(row.id for row in reader) == list(range(60))
