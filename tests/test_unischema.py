"""Unischema and UnischemaField: API, Spark schema, inference from Arrow, row validation, pickle compatibility."""
from __future__ import annotations

import decimal
import io
import pickle
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyspark.sql import Row
from pyspark.sql import types as T

from petastorm.codecs import CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.legacy_pickle import safe_loads
from petastorm.unischema import (Unischema, UnischemaField, dict_to_spark_row, insert_explicit_nulls,
                                 match_unischema_fields)

SCHEMA = Unischema("TestSchema", [
    UnischemaField("id", np.int64, (), ScalarCodec(T.LongType()), False),
    UnischemaField("id2", np.int32, (), ScalarCodec(T.ShortType()), False),
    UnischemaField("name", np.str_, (), ScalarCodec(T.StringType()), False),
    UnischemaField("price", decimal.Decimal, (), ScalarCodec(T.DecimalType(10, 2)), True),
    UnischemaField("score", np.float32, (), None, True),
    UnischemaField("image", np.uint8, (4, 6, 3), CompressedImageCodec("png"), False),
    UnischemaField("matrix", np.float32, (None, 3), NdarrayCodec(), False),
    UnischemaField("packed", np.float64, (2, 2), CompressedNdarrayCodec(), True),
])


def good_row(**overrides):
    row = {"id": 1, "id2": np.int32(2), "name": "a", "price": decimal.Decimal("1.50"), "score": 0.5,
           "image": np.zeros((4, 6, 3), np.uint8), "matrix": np.ones((5, 3), np.float32), "packed": np.eye(2)}
    row.update(overrides)
    return row


def test_field_equality_and_hash_ignore_codec():
    a = UnischemaField("x", np.int32, (), ScalarCodec(T.IntegerType()), False)
    b = UnischemaField("x", np.int32, (), None, False)
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert a != b._replace(nullable=True) and a != b._replace(shape=(1,))
    assert UnischemaField("x", np.int32, ()) == b  # codec and nullable default to None and False
    assert UnischemaField._fields == ("name", "numpy_dtype", "shape", "codec", "nullable")


def test_schema_fields_attributes_and_order():
    assert list(SCHEMA.fields) == ["id", "id2", "name", "price", "score", "image", "matrix", "packed"]
    assert isinstance(SCHEMA.fields, OrderedDict)
    assert SCHEMA.id is SCHEMA.fields["id"] and SCHEMA.matrix.shape == (None, 3)
    with pytest.warns(UserWarning, match="Can not create dynamic property fields"):
        clash = Unischema("S", [UnischemaField("fields", np.int32, ())])
    assert list(clash.fields) == ["fields"]


def test_str_and_repr():
    text = str(SCHEMA)
    assert text.startswith("Unischema(TestSchema, [\n")
    assert "  UnischemaField('matrix', float32, (None, 3), NdarrayCodec(), False),\n" in text
    assert "UnischemaField('id', int64, (), ScalarCodec(LongType()), False)" in repr(SCHEMA)


def test_create_schema_view_keeps_schema_order():
    view = SCHEMA.create_schema_view(["mat.*", SCHEMA.id, "na.e"])
    assert view._name == "TestSchema_view"
    assert list(view.fields) == ["id", "name", "matrix"]
    assert view.matrix.codec == NdarrayCodec()
    assert list(SCHEMA.create_schema_view(["i"]).fields) == []  # regular expressions match whole names
    assert list(SCHEMA.create_schema_view(["id.*"]).fields) == ["id", "id2"]
    with pytest.raises(ValueError, match=r"\['nope'\] do not belong to the schema TestSchema"):
        SCHEMA.create_schema_view([UnischemaField("nope", np.int32, ())])
    with pytest.raises(ValueError, match="must be either a string"):
        SCHEMA.create_schema_view([1])


def test_match_unischema_fields():
    assert [f.name for f in match_unischema_fields(SCHEMA, ["p.*", "id"])] == ["id", "price", "packed"]
    assert [f.name for f in match_unischema_fields(SCHEMA, "name")] == ["name"]
    assert match_unischema_fields(SCHEMA, []) == [] and match_unischema_fields(SCHEMA, None) == []


def test_make_namedtuple():
    row = SCHEMA.make_namedtuple(**{name: i for i, name in enumerate(SCHEMA.fields)})
    assert type(row).__name__ == "TestSchema" and row._fields == tuple(SCHEMA.fields) and row.matrix == 6
    assert SCHEMA._get_namedtuple() is type(row)
    odd = Unischema("my-schema view", [UnischemaField("a", np.int8, ())])
    assert odd.make_namedtuple(a=1).a == 1


def test_as_spark_schema():
    spark_schema = SCHEMA.as_spark_schema()
    assert [(f.name, f.dataType, f.nullable) for f in spark_schema.fields] == [
        ("id", T.LongType(), False), ("id2", T.ShortType(), False), ("name", T.StringType(), False),
        ("price", T.DecimalType(10, 2), True), ("score", T.FloatType(), True), ("image", T.BinaryType(), False),
        ("matrix", T.BinaryType(), False), ("packed", T.BinaryType(), True)]
    mapping = {np.int8: T.ByteType(), np.uint8: T.ShortType(), np.int16: T.ShortType(),
               np.uint16: T.IntegerType(), np.int32: T.IntegerType(), np.int64: T.LongType(),
               np.float32: T.FloatType(), np.float64: T.DoubleType(), np.str_: T.StringType(),
               np.bytes_: T.StringType(), np.bool_: T.BooleanType()}
    for numpy_type, spark_type in mapping.items():
        assert Unischema("S", [UnischemaField("x", numpy_type, ())]).as_spark_schema()[0].dataType == spark_type
    with pytest.raises(ValueError, match="Field 'm' has shape \\(2,\\) but no codec"):
        Unischema("S", [UnischemaField("m", np.int32, (2,))]).as_spark_schema()
    with pytest.raises(ValueError, match="Field 'd': no Spark type for Decimal"):
        Unischema("S", [UnischemaField("d", decimal.Decimal, ())]).as_spark_schema()


# ------------------------------------------------------------------ from_arrow_schema

def test_from_arrow_schema_types():
    schema = pa.schema([
        pa.field("i8", pa.int8(), False), pa.field("u16", pa.uint16()), pa.field("i64", pa.int64()),
        pa.field("f32", pa.float32()), pa.field("f64", pa.float64()), pa.field("b", pa.bool_()),
        pa.field("s", pa.string()), pa.field("ls", pa.large_string()), pa.field("bin", pa.binary()),
        pa.field("dec", pa.decimal128(10, 2)), pa.field("d", pa.date32()), pa.field("ts", pa.timestamp("us")),
        pa.field("li", pa.list_(pa.int32())), pa.field("fl", pa.list_(pa.float32(), 9)),
        pa.field("cat", pa.dictionary(pa.int32(), pa.string())),
        pa.field("nested", pa.list_(pa.list_(pa.int32()))), pa.field("st", pa.struct([("a", pa.int32())])),
        pa.field("m", pa.map_(pa.string(), pa.int32())),
    ])
    with pytest.warns(UserWarning, match=r"nested \(list<item: list<item: int32>>\), st \(struct<a: int32>\), "
                                         r"m \(map<string, int32>\)") as record:
        inferred = Unischema.from_arrow_schema(schema)
    assert len(record) == 1
    assert inferred._name == "inferred_schema"
    got = {f.name: (f.numpy_dtype, f.shape, f.nullable) for f in inferred.fields.values()}
    assert got == {
        "i8": (np.int8, (), False), "u16": (np.uint16, (), True), "i64": (np.int64, (), True),
        "f32": (np.float32, (), True), "f64": (np.float64, (), True), "b": (np.bool_, (), True),
        "s": (np.str_, (), True), "ls": (np.str_, (), True), "bin": (np.bytes_, (), True),
        "dec": (decimal.Decimal, (), True), "d": (np.datetime64, (), True), "ts": (np.datetime64, (), True),
        "li": (np.int32, (None,), True), "fl": (np.float32, (9,), True), "cat": (np.str_, (), True)}
    assert all(f.codec is None for f in inferred.fields.values())
    with pytest.raises(ValueError, match=r"cannot infer a Unischema for: nested"):
        Unischema.from_arrow_schema(schema, omit_unsupported_fields=False)


def test_from_arrow_schema_of_partitioned_dataset(tmp_path):
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "part": ["a", "b", "a"], "year": [2020, 2021, 2020]})
    pq.write_to_dataset(table, tmp_path, partition_cols=["part", "year"])
    inferred = Unischema.from_arrow_schema(ds.dataset(tmp_path, partitioning="hive"))
    assert [(f.name, f.numpy_dtype, f.nullable) for f in inferred.fields.values()] == [
        ("id", np.int64, True), ("part", np.str_, False), ("year", np.int64, False)]
    with pytest.raises(TypeError, match="Expected a pyarrow.Schema"):
        Unischema.from_arrow_schema(object())


# ------------------------------------------------------------------ dict_to_spark_row / insert_explicit_nulls

def test_dict_to_spark_row_encodes_in_schema_order():
    row_dict = good_row(score=None)
    del row_dict["packed"]
    before = dict(row_dict)
    row = dict_to_spark_row(SCHEMA, row_dict)
    assert row_dict.keys() == before.keys()  # the input is not modified
    assert isinstance(row, Row) and row.__fields__ == list(SCHEMA.fields)
    assert row.id == 1 and row.id2 == 2 and type(row.id2) is int and row.name == "a"
    assert row.score is None and row.packed is None
    assert NdarrayCodec().decode(SCHEMA.matrix, row.matrix).shape == (5, 3)
    assert bytes(row.image[:4]) == b"\x89PNG"
    plain = Unischema("P", [UnischemaField("x", np.float64, ()), UnischemaField("v", np.int32, (None,))])
    assert dict_to_spark_row(plain, {"x": np.float64(2.5), "v": np.array([1, 2], np.int32)}) == Row(x=2.5, v=[1, 2])


@pytest.mark.parametrize("overrides,message", [
    ({"matrix": np.ones((5, 4), np.float32)}, r"Field 'matrix': expected shape \(None, 3\), got \(5, 4\)"),
    ({"matrix": np.ones(3, np.float32)}, r"Field 'matrix': expected shape \(None, 3\), got \(3,\)"),
    ({"image": np.zeros((4, 6), np.uint8)}, r"Field 'image': expected shape \(4, 6, 3\), got \(4, 6\)"),
    ({"matrix": np.ones((5, 3), np.float64)}, r"Field 'matrix': expected dtype float32, got float64"),
    ({"matrix": [[1.0, 2.0, 3.0]]}, r"Field 'matrix': expected a numpy.ndarray of float32 .* got list"),
    ({"id": 1.5}, r"Field 'id': expected a value of type int64, got float \(1.5\)"),
    ({"id": "7"}, r"Field 'id': expected a value of type int64, got str"),
    ({"name": 3}, r"Field 'name': expected a value of type str_, got int"),
    ({"score": "high"}, r"Field 'score': expected a value of type float32, got str"),
    ({"price": 1.5}, r"Field 'price': expected a value of type Decimal, got float"),
    ({"id": np.array([1, 2])}, r"Field 'id': expected a scalar of int64, got an array of shape \(2,\)"),
    ({"id": None}, r"Field 'id' is not nullable, but got None"),
    ({"image": None}, r"Field 'image' is not nullable, but got None"),
    ({"extra": 1, "more": 2}, r"Fields \['extra', 'more'\] are not in schema TestSchema"),
])
def test_dict_to_spark_row_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        dict_to_spark_row(SCHEMA, good_row(**overrides))


def test_dict_to_spark_row_missing_field():
    row = good_row()
    del row["name"]
    with pytest.raises(ValueError, match="Field 'name' is missing from the row and is not nullable"):
        dict_to_spark_row(SCHEMA, row)


def test_insert_explicit_nulls():
    row = {"id": 1}
    with pytest.raises(ValueError, match="Field 'id2' is missing"):
        insert_explicit_nulls(SCHEMA, row)
    nullable = Unischema("N", [UnischemaField("a", np.int32, (), None, True), UnischemaField("b", np.int32, ())])
    row = {"b": 1}
    insert_explicit_nulls(nullable, row)
    assert row == {"b": 1, "a": None}


# ------------------------------------------------------------------ pickle compatibility

def pickled_globals(data):
    """(module, name) of every global a pickle references, as the pickle names them."""
    found = set()

    class Recorder(pickle._Unpickler):
        def find_class(self, module, name):
            found.add((module, name))
            return super().find_class(module, name)

    Recorder(io.BytesIO(data)).load()
    return found


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_class_paths_and_state(protocol):
    data = pickle.dumps(SCHEMA, protocol=protocol)
    classes = {f"{m}.{n}" for m, n in pickled_globals(data)}
    ours = {c for c in classes if c.startswith("petastorm.")}
    assert ours == {"petastorm.unischema.Unischema", "petastorm.unischema.UnischemaField",
                    "petastorm.codecs.ScalarCodec", "petastorm.codecs.CompressedImageCodec",
                    "petastorm.codecs.NdarrayCodec", "petastorm.codecs.CompressedNdarrayCodec"}
    allowed_prefixes = ("petastorm.", "numpy.", "decimal.", "pyspark.sql.types.", "collections.OrderedDict",
                        "copy_reg._reconstructor", "__builtin__.object", "__builtin__.tuple")
    assert all(c.startswith(allowed_prefixes) for c in classes), classes
    for loaded in (pickle.loads(data), safe_loads(data)):
        assert loaded == SCHEMA
        assert list(loaded.__dict__) == ["_name", "_fields", *SCHEMA.fields]
        assert [f.codec for f in loaded.fields.values()] == [f.codec for f in SCHEMA.fields.values()]


def test_instance_state_matches_the_original_layout():
    assert list(SCHEMA.__dict__) == ["_name", "_fields", *SCHEMA.fields]
    assert SCHEMA.__reduce_ex__(4)[2] == SCHEMA.__dict__
    assert SCHEMA.image.__reduce_ex__(4)[1] == (UnischemaField, *SCHEMA.image)
    assert ScalarCodec(T.IntegerType()).__reduce_ex__(4)[2] == {"_spark_type": T.IntegerType()}
    assert CompressedImageCodec().__reduce_ex__(4)[2] == {"_image_codec": ".png", "_quality": 80}
    assert NdarrayCodec().__reduce_ex__(4)[2] is None and CompressedNdarrayCodec().__reduce_ex__(4)[2] is None
