"""Small Petastorm datasets written with pyarrow (no Spark) for the TF / torch / JAX adapter tests."""
from __future__ import annotations

import datetime
import decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.types import DecimalType, IntegerType, LongType, StringType

from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import write_dataset_metadata
from petastorm.unischema import Unischema, UnischemaField

AdapterSchema = Unischema("AdapterSchema", [
    UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("label", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("u16", np.uint16, (), None, False),
    UnischemaField("u32", np.uint32, (), None, False),
    UnischemaField("flag", np.bool_, (), None, False),
    UnischemaField("name", np.str_, (), ScalarCodec(StringType()), False),
    UnischemaField("price", decimal.Decimal, (), ScalarCodec(DecimalType(10, 2)), False),
    UnischemaField("ts", np.datetime64, (), None, False),
    UnischemaField("matrix", np.float32, (2, 3), NdarrayCodec(), False),
    UnischemaField("image", np.uint8, (4, 5, 3), CompressedImageCodec("png"), False),
    UnischemaField("ragged", np.int16, (None,), NdarrayCodec(), False),
])

NUMERIC_FIELDS = ["id", "label", "u16", "u32", "flag", "matrix", "image"]
EPOCH = datetime.datetime(2020, 1, 1)


def expected_row(i: int) -> dict:
    """The values of row ``i`` of the adapter dataset."""
    rng = np.random.default_rng(i)
    return {
        "id": i,
        "label": i % 3,
        "u16": 60000 + i,
        "u32": 4_000_000_000 + i,
        "flag": i % 2 == 0,
        "name": f"row-{i}",
        "price": decimal.Decimal(i) + decimal.Decimal("0.50"),
        "ts": EPOCH + datetime.timedelta(seconds=i),
        "matrix": np.arange(6, dtype=np.float32).reshape(2, 3) + i,
        "image": rng.integers(0, 255, size=(4, 5, 3), dtype=np.uint8),
        "ragged": np.arange(1 + i % 4, dtype=np.int16),
    }


def write_adapter_dataset(root, rows: int = 50, rows_per_group: int = 10, files: int = 2) -> str:
    """Writes ``rows`` rows (ids 0..rows-1) in ``files`` files of ``rows_per_group``-row row groups."""
    root.mkdir(parents=True, exist_ok=True)
    fields = AdapterSchema.fields
    per_file = rows // files
    for f in range(files):
        ids = range(f * per_file, rows if f == files - 1 else (f + 1) * per_file)
        data = [expected_row(i) for i in ids]

        def encoded(name):
            field = fields[name]
            return [bytes(field.codec.encode(field, d[name])) for d in data]

        table = pa.table({
            "id": pa.array([d["id"] for d in data], pa.int64()),
            "label": pa.array([d["label"] for d in data], pa.int32()),
            "u16": pa.array([d["u16"] for d in data], pa.uint16()),
            "u32": pa.array([d["u32"] for d in data], pa.uint32()),
            "flag": pa.array([d["flag"] for d in data], pa.bool_()),
            "name": pa.array([d["name"] for d in data], pa.string()),
            "price": pa.array([d["price"] for d in data], pa.decimal128(10, 2)),
            "ts": pa.array([d["ts"] for d in data], pa.timestamp("us")),
            "matrix": pa.array(encoded("matrix"), pa.binary()),
            "image": pa.array(encoded("image"), pa.binary()),
            "ragged": pa.array(encoded("ragged"), pa.binary()),
        })
        pq.write_table(table, str(root / f"part-{f:05d}.parquet"), row_group_size=rows_per_group)
    url = root.as_uri()
    write_dataset_metadata(url, AdapterSchema)
    return url


TensorSchema = Unischema("TensorSchema", [
    UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("x", np.float32, (3, 4), NdarrayCodec(), False),
    UnischemaField("y", np.int32, (), ScalarCodec(IntegerType()), False),
])


def write_tensor_dataset(root, rows: int = 60, rows_per_group: int = 10, nullable_y: bool = False) -> str:
    """A numeric-only dataset: id, x = (3, 4) float32 filled with id, y = id % 5 (None for id 7 if nullable)."""
    root.mkdir(parents=True, exist_ok=True)
    schema = TensorSchema
    if nullable_y:
        schema = Unischema("TensorSchemaNullable", [
            TensorSchema.fields["id"], TensorSchema.fields["x"],
            UnischemaField("y", np.int32, (), ScalarCodec(IntegerType()), True)])
    field = schema.fields["x"]
    ids = list(range(rows))
    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "x": pa.array([bytes(field.codec.encode(field, np.full((3, 4), i, np.float32))) for i in ids], pa.binary()),
        "y": pa.array([None if nullable_y and i == 7 else i % 5 for i in ids], pa.int32()),
    })
    pq.write_table(table, str(root / "part-00000.parquet"), row_group_size=rows_per_group)
    url = root.as_uri()
    write_dataset_metadata(url, schema)
    return url
