"""Datasets written by this package are read by the original Petastorm 0.13.1, value for value.

Skipped unless PETASTORM_LEGACY_PYTHON names an interpreter with the original installed (build one with
scripts/legacy-venv.sh; see docs/legacy-interop.md).
"""
import importlib.util
import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql.types import BooleanType, DecimalType, DoubleType, IntegerType, LongType, StringType

from petastorm import make_reader
from petastorm.codecs import CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import materialize_dataset
from petastorm.etl.rowgroup_indexers import SingleFieldIndexer
from petastorm.etl.rowgroup_indexing import build_rowgroup_index
from petastorm.selectors import SingleIndexSelector
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

LEGACY_PYTHON = os.environ.get("PETASTORM_LEGACY_PYTHON")
pytestmark = pytest.mark.skipif(not LEGACY_PYTHON, reason="PETASTORM_LEGACY_PYTHON is not set")

SCRIPT = Path(__file__).parent / "legacy" / "read_with_original.py"
JPEG_TOLERANCE = 8
_spec = importlib.util.spec_from_file_location("read_with_original", SCRIPT)
_legacy_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_legacy_script)
as_json = _legacy_script.as_json

InteropSchema = Unischema("InteropSchema", [
    UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("label", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("name", np.str_, (), ScalarCodec(StringType()), False),
    UnischemaField("score", np.float64, (), ScalarCodec(DoubleType()), False),
    UnischemaField("flag", np.bool_, (), ScalarCodec(BooleanType()), False),
    UnischemaField("small", np.int8, (), None, False),
    UnischemaField("price", Decimal, (), ScalarCodec(DecimalType(10, 3)), False),
    UnischemaField("png", np.uint8, (20, 30, 3), CompressedImageCodec("png"), False),
    UnischemaField("gray16", np.uint16, (16, 16), CompressedImageCodec("png"), False),
    UnischemaField("jpeg", np.uint8, (32, 48, 3), CompressedImageCodec("jpeg", quality=90), False),
    UnischemaField("tensor", np.float32, (None, 3), NdarrayCodec(), True),
    UnischemaField("packed", np.float64, (5, 7), CompressedNdarrayCodec(), False),
    UnischemaField("strings", np.bytes_, (None,), NdarrayCodec(), False),
    UnischemaField("words", np.str_, (2,), NdarrayCodec(), False),
])


def _row(i: int, rng: np.random.Generator) -> dict:
    gradient = np.add.outer(np.arange(32), np.arange(48)).astype(np.uint8)
    return {
        "id": i, "label": i % 5, "name": f"row-{i}", "score": i / 7, "flag": i % 2 == 0, "small": np.int8(i - 20),
        "price": Decimal(i * 125).scaleb(-3),
        "png": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
        "gray16": rng.integers(0, 65536, (16, 16), dtype=np.uint16),
        "jpeg": np.stack([gradient, gradient * 2, 255 - gradient], axis=-1),
        "tensor": None if i % 4 == 0 else rng.standard_normal((i % 6, 3)).astype(np.float32),
        "packed": rng.standard_normal((5, 7)),
        "strings": np.array([b"a\x00b", b"", b"xyz"][: i % 4], dtype=np.bytes_),
        "words": np.array(["alpha", f"w{i}"], dtype=np.str_),
    }


def _read_with_original(url: str, out: Path, *selector_args: str) -> dict:
    done = subprocess.run([LEGACY_PYTHON, str(SCRIPT), url, str(out), *selector_args], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("use_summary_metadata", [False, True])
def test_original_reads_what_we_write(spark, tmp_path, use_summary_metadata):
    url = f"file://{tmp_path / 'interop'}"
    rng = np.random.default_rng(7)
    written = [_row(i, rng) for i in range(30)]
    with materialize_dataset(spark, url, InteropSchema, row_group_size_mb=1,
                             use_summary_metadata=use_summary_metadata):
        rows = [dict_to_spark_row(InteropSchema, row) for row in written]
        spark.createDataFrame(rows, InteropSchema.as_spark_schema()).repartition(3, "label") \
            .write.mode("overwrite").parquet(url)
    if use_summary_metadata:
        assert (tmp_path / "interop" / "_metadata").exists()
    build_rowgroup_index(url, spark.sparkContext, [SingleFieldIndexer("label_index", "label")])

    legacy = _read_with_original(url, tmp_path / "legacy.json", "label_index", "2")

    # numpy 2 calls numpy.bool_ "bool"; numpy 1 (the original's stack) calls it "bool_".
    assert legacy["schema"] == [[f.name, "bool_" if f.numpy_dtype is np.bool_ else f.numpy_dtype.__name__,
                                 list(f.shape),
                                 type(f.codec).__name__ if f.codec else None, f.nullable]
                                for f in InteropSchema.fields.values()]
    legacy_rows = sorted(legacy["rows"], key=lambda row: row["id"])
    with make_reader(url, shuffle_row_groups=False) as reader:
        ours = sorted(({k: as_json(v) for k, v in row._asdict().items()} for row in reader), key=lambda r: r["id"])
    assert len(legacy_rows) == len(ours) == 30

    for legacy_row, our_row, source in zip(legacy_rows, ours, written):
        expected = {name: as_json(value) for name, value in source.items()}
        # Lossless fields: the original decodes exactly what we wrote, and so do we.
        for row in (legacy_row, our_row):
            assert {k: v for k, v in row.items() if k != "jpeg"} == {k: v for k, v in expected.items() if k != "jpeg"}
        # JPEG is lossy: compare the original's pixels with ours and with the source within a few levels.
        legacy_jpeg = np.array(legacy["jpeg_pixels"][str(source["id"])], dtype=np.uint8)
        assert legacy_jpeg.shape == (32, 48, 3)
        assert np.abs(legacy_jpeg.astype(int) - source["jpeg"].astype(int)).max() <= JPEG_TOLERANCE
        assert legacy_row["jpeg"]["shape"] == our_row["jpeg"]["shape"]

    with make_reader(url, rowgroup_selector=SingleIndexSelector("label_index", [2]), schema_fields=["id"]) as reader:
        our_selected = sorted(int(row.id) for row in reader)
    assert legacy["selected_ids"] == our_selected
    assert {i for i in range(30) if i % 5 == 2} <= set(our_selected) < set(range(30))
