"""The language-neutral JSON form of a Unischema (version 1)."""
from __future__ import annotations

import decimal
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from petastorm.codecs import (CompressedImageCodec, CompressedNdarrayCodec, DataframeColumnCodec, NdarrayCodec,
                              ScalarCodec)
from petastorm.etl.legacy_pickle import safe_loads
from petastorm.unischema import Unischema, UnischemaField, unischema_from_json, unischema_to_json

DATA = Path(__file__).parent / "data" / "petastorm-0.13.1"


def assert_same(a, b):
    assert a == b
    assert [(f.codec, type(f.numpy_dtype)) for f in a.fields.values()] == \
        [(f.codec, type(f.numpy_dtype)) for f in b.fields.values()]
    for fa, fb in zip(a.fields.values(), b.fields.values()):
        if isinstance(fa.codec, ScalarCodec):
            assert fa.codec.spark_dtype() == fb.codec.spark_dtype()


def test_document_layout():
    schema = Unischema("Small", [
        UnischemaField("id", np.int32, (), ScalarCodec(T.IntegerType()), False),
        UnischemaField("img", np.uint8, (8, 8, 3), CompressedImageCodec("jpeg", 90), False),
        UnischemaField("ragged", np.float32, (None, 3), NdarrayCodec(), True),
        UnischemaField("packed", np.float64, (2,), CompressedNdarrayCodec(), False),
        UnischemaField("price", decimal.Decimal, (), ScalarCodec(T.DecimalType(10, 2)), True),
        UnischemaField("label", np.str_, (), None, False),
    ])
    assert json.loads(unischema_to_json(schema)) == {
        "version": 1,
        "name": "Small",
        "fields": [
            {"name": "id", "dtype": "int32", "shape": [], "nullable": False,
             "codec": {"type": "scalar", "spark_type": "integer"}},
            {"name": "img", "dtype": "uint8", "shape": [8, 8, 3], "nullable": False,
             "codec": {"type": "image", "format": "jpeg", "quality": 90}},
            {"name": "ragged", "dtype": "float32", "shape": [None, 3], "nullable": True,
             "codec": {"type": "ndarray"}},
            {"name": "packed", "dtype": "float64", "shape": [2], "nullable": False,
             "codec": {"type": "compressed_ndarray"}},
            {"name": "price", "dtype": "decimal", "shape": [], "nullable": True,
             "codec": {"type": "scalar", "spark_type": "decimal(10,2)"}},
            {"name": "label", "dtype": "string", "shape": [], "nullable": False, "codec": None},
        ],
    }
    assert_same(unischema_from_json(unischema_to_json(schema)), schema)


@pytest.mark.parametrize("dataset", ["hello_world", "test_schema", "codecs"])
def test_fixture_schemas_round_trip(dataset):
    metadata = pq.read_schema(DATA / dataset / "_common_metadata").metadata
    schema = safe_loads(metadata[b"dataset-toolkit.unischema.v1"])
    again = unischema_from_json(unischema_to_json(schema))
    assert_same(again, schema)
    assert unischema_to_json(again) == unischema_to_json(schema)


DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
          np.float32, np.float64, np.str_, np.bytes_, decimal.Decimal, np.datetime64, np.timedelta64]
SPARK_TYPES = [T.ByteType(), T.ShortType(), T.IntegerType(), T.LongType(), T.FloatType(), T.DoubleType(),
               T.BooleanType(), T.StringType(), T.BinaryType(), T.DateType(), T.TimestampType(),
               T.TimestampNTZType(), T.DecimalType(38, 18), T.CharType(3), T.VarcharType(10), T.DecimalType(), T.NullType(),
               T.ArrayType(T.IntegerType(), False), T.MapType(T.StringType(), T.DoubleType()),
               T.StructType([T.StructField("a", T.LongType())])]
CODECS = [None, NdarrayCodec(), CompressedNdarrayCodec(), CompressedImageCodec(), CompressedImageCodec("jpeg", 5)]


def test_every_dtype_codec_and_spark_type_round_trips():
    fields = [UnischemaField(f"d{i}", t, (), None, bool(i % 2)) for i, t in enumerate(DTYPES)]
    fields += [UnischemaField(f"s{i}", np.int64, (), ScalarCodec(t), False) for i, t in enumerate(SPARK_TYPES)]
    fields += [UnischemaField(f"c{i}", np.uint8, (None, 4, 3), c, True) for i, c in enumerate(CODECS)]
    schema = Unischema("Everything", fields)
    assert_same(unischema_from_json(unischema_to_json(schema)), schema)


def test_unsupported_values_cannot_be_written():
    class MyCodec(DataframeColumnCodec):
        def encode(self, unischema_field, value):
            return value

        def decode(self, unischema_field, value):
            return value

        def spark_dtype(self):
            return T.BinaryType()

    with pytest.raises(ValueError, match="Field 'x': codec MyCodec has no JSON form"):
        unischema_to_json(Unischema("S", [UnischemaField("x", np.int32, (), MyCodec())]))
    with pytest.raises(ValueError, match="Field 'o': type object_ has no JSON form"):
        unischema_to_json(Unischema("S", [UnischemaField("o", np.object_, ())]))


def doc(**field_overrides):
    field = {"name": "x", "dtype": "int32", "shape": [], "nullable": False, "codec": None}
    field.update(field_overrides)
    return json.dumps({"version": 1, "name": "S", "fields": [field]})


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"version": 2, "name": "S", "fields": []}), "Unsupported Unischema JSON version 2"),
    (json.dumps([]), "Unsupported Unischema JSON version None"),
    (json.dumps({"version": 1, "name": "S"}), "exactly the keys 'version', 'name'"),
    (json.dumps({"version": 1, "name": "S", "fields": [], "extra": 1}), "exactly the keys 'version', 'name'"),
    (doc(dtype="int128"), "unknown dtype 'int128'"),
    (doc(shape=[-1]), "Field 'x': shape must be a list of non-negative integers or null"),
    (doc(shape="3"), "Field 'x': shape must be a list"),
    (doc(nullable="no"), "Field 'x': nullable must be true or false"),
    (doc(codec={"type": "zip"}), "Field 'x': unknown codec"),
    (doc(codec={"type": "ndarray", "level": 3}), "codec 'ndarray' needs exactly the keys"),
    (doc(codec={"type": "image", "format": "gif", "quality": 80}), "format 'png' or 'jpeg'"),
    (doc(codec={"type": "scalar", "spark_type": "huge"}), "Unknown Spark type 'huge'"),
    (json.dumps({"version": 1, "name": "S", "fields": [{"name": "x"}]}), "exactly the keys"),
])
def test_malformed_documents_are_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        unischema_from_json(text)


def test_bytes_input_is_accepted():
    schema = unischema_from_json(doc().encode())
    assert list(schema.fields.values()) == [UnischemaField("x", np.int32, (), None, False)]
