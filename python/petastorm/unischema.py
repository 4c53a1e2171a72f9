"""Unischema: one schema description usable from numpy, Spark and Parquet.

A ``Unischema`` is a named, ordered collection of ``UnischemaField`` objects. Each field has a numpy scalar type,
a shape (``None`` for a variable dimension), an optional codec that turns values into Parquet cells, and a
nullability flag. Instances pickle exactly as in Petastorm 0.13.1 (same class paths and instance state).
"""
from __future__ import annotations

import copy
import decimal
import json
import re
import warnings
from collections import OrderedDict, namedtuple
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from petastorm import codecs as _codecs
from petastorm._checks import check_ndarray, check_scalar, dtype_name

__all__ = ["UnischemaField", "Unischema", "dict_to_spark_row", "insert_explicit_nulls", "match_unischema_fields",
           "unischema_to_json", "unischema_from_json"]

#: The original's ``six.string_types``, kept importable from here.
string_types = (str,)


def _fields_as_tuple(field: "UnischemaField") -> tuple:
    # The codec is left out of equality and hashing (as in Petastorm 0.13.1).
    return (field.name, field.numpy_dtype, field.shape, field.nullable)


class UnischemaField(NamedTuple):
    """A schema field: name, numpy scalar type, shape (``None`` = variable dimension), codec and nullability.

    Equality and hashing ignore the codec.
    """

    name: str
    numpy_dtype: Any
    shape: Tuple[Optional[int], ...]
    codec: Optional[Any] = None
    nullable: bool = False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, tuple) or len(other) != 5:
            return NotImplemented
        return _fields_as_tuple(self) == _fields_as_tuple(UnischemaField(*other))

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(_fields_as_tuple(self))


_namedtuple_cache: Dict[tuple, type] = {}


def _identifier(name: str) -> str:
    text = re.sub(r"\W", "_", name)
    return text if text and not text[0].isdigit() else "_" + text


class Unischema:
    """A named, ordered set of ``UnischemaField`` objects; each field is also an attribute of the schema."""

    def __init__(self, name: str, fields: Iterable[UnischemaField]) -> None:
        fields = list(fields)
        self._name = name
        self._fields = OrderedDict((f.name, f) for f in fields)
        for f in fields:
            if hasattr(self, f.name):
                warnings.warn(f"Can not create dynamic property {f.name} because it conflicts with an existing "
                              f"property of Unischema")
            else:
                setattr(self, f.name, f)

    @property
    def fields(self) -> "OrderedDict[str, UnischemaField]":
        """Fields by name, in schema order."""
        return self._fields

    def create_schema_view(self, fields: Sequence[Union[UnischemaField, str]]) -> "Unischema":
        """A new schema with the selected fields, in this schema's order.

        :param fields: ``UnischemaField`` objects of this schema and/or regular expressions that must match a
            whole field name.
        """
        patterns = [f for f in fields if isinstance(f, str)]
        objects = [f for f in fields if isinstance(f, tuple)]
        if len(patterns) + len(objects) != len(fields):
            raise ValueError('Elements of "fields" must be either a string (regular expressions) or '
                             'an instance of UnischemaField class.')
        unknown = sorted({f.name for f in objects} - set(self._fields))
        if unknown:
            raise ValueError(f"Fields {unknown} do not belong to the schema {self._name}")
        selected = {f.name for f in objects} | {f.name for f in match_unischema_fields(self, patterns)}
        return Unischema(f"{self._name}_view", [f for name, f in self._fields.items() if name in selected])

    def _get_namedtuple(self) -> type:
        """The namedtuple class for rows of this schema (cached per schema name and field names)."""
        key = (self._name, tuple(self._fields))
        if key not in _namedtuple_cache:
            _namedtuple_cache[key] = namedtuple(_identifier(self._name), list(self._fields))
        return _namedtuple_cache[key]

    def make_namedtuple(self, **kwargs: Any) -> tuple:
        """A row namedtuple of this schema from keyword values."""
        return self._get_namedtuple()(**kwargs)

    def as_spark_schema(self) -> Any:
        """The ``pyspark.sql.types.StructType`` of the Parquet columns that store this schema."""
        from pyspark.sql.types import StructField, StructType

        return StructType([StructField(f.name, _field_spark_dtype(f), f.nullable) for f in self._fields.values()])

    @classmethod
    def from_arrow_schema(cls, parquet_dataset_or_arrow_schema: Any,
                          omit_unsupported_fields: bool = True) -> "Unischema":
        """Infer a codec-less schema from a plain Parquet/Arrow schema.

        :param parquet_dataset_or_arrow_schema: a ``pyarrow.Schema`` or an object with a ``.schema`` attribute
            (``pyarrow.dataset.Dataset``, ``pyarrow.parquet.ParquetDataset``); Hive partition columns of such a
            dataset become non-nullable string or int64 fields.
        :param omit_unsupported_fields: skip columns of unsupported types with a warning naming them; if False,
            raise ValueError instead.
        """
        from petastorm._arrow_types import unischema_fields_from_arrow

        fields = unischema_fields_from_arrow(parquet_dataset_or_arrow_schema, omit_unsupported_fields)
        return cls("inferred_schema", fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Unischema):
            return NotImplemented
        return self._name == other._name and list(self._fields.values()) == list(other._fields.values())

    def __hash__(self) -> int:
        return hash((self._name, tuple(self._fields.values())))

    def __str__(self) -> str:
        lines = "".join(f"  {type(f).__name__}('{f.name}', {dtype_name(f.numpy_dtype)}, {f.shape}, "
                        f"{f.codec}, {f.nullable}),\n" for f in self._fields.values())
        return f"{type(self).__name__}({self._name}, [\n{lines}])"

    __repr__ = __str__


def _numpy_to_spark_mapping() -> Dict[Any, Any]:
    from pyspark.sql import types as T

    return {
        np.int8: T.ByteType(), np.uint8: T.ShortType(), np.int16: T.ShortType(), np.uint16: T.IntegerType(),
        np.int32: T.IntegerType(), np.int64: T.LongType(), np.float32: T.FloatType(),
        np.float64: T.DoubleType(), np.bytes_: T.StringType(), np.str_: T.StringType(),
        np.bool_: T.BooleanType(),
    }


def _field_spark_dtype(field: UnischemaField) -> Any:
    if field.codec is not None:
        return field.codec.spark_dtype()
    if field.shape != ():
        raise ValueError(f"Field '{field.name}' has shape {field.shape} but no codec: a non-scalar field needs a "
                         f"codec to be stored in Spark")
    spark_type = _numpy_to_spark_mapping().get(field.numpy_dtype)
    if spark_type is None:
        raise ValueError(f"Field '{field.name}': no Spark type for {dtype_name(field.numpy_dtype)} without a "
                         f"codec; give it a ScalarCodec")
    return spark_type


def match_unischema_fields(schema: Unischema, field_regex: Union[str, Sequence[str], None]) -> List[UnischemaField]:
    """Fields of ``schema`` whose whole name matches any of the regular expressions, in schema order."""
    if not field_regex:
        return []
    patterns = [re.compile(p) for p in ([field_regex] if isinstance(field_regex, str) else field_regex)]
    return [f for name, f in schema.fields.items() if any(p.fullmatch(name) for p in patterns)]


def insert_explicit_nulls(unischema: Unischema, row_dict: Dict[str, Any]) -> None:
    """Add ``None`` for nullable fields missing from ``row_dict`` (in place); raise for missing required ones."""
    for name, field in unischema.fields.items():
        if name not in row_dict:
            if not field.nullable:
                raise ValueError(f"Field '{name}' is missing from the row and is not nullable")
            row_dict[name] = None


def _check_field_value(field: UnischemaField, value: Any) -> None:
    """Nullability, and dtype/shape of codec-less fields (codecs check the values they encode)."""
    if value is None:
        if not field.nullable:
            raise ValueError(f"Field '{field.name}' is not nullable, but got None")
    elif field.codec is None:
        if field.shape == ():
            check_scalar(field, value)
        elif isinstance(value, np.ndarray):
            check_ndarray(field, value)


def dict_to_spark_row(unischema: Unischema, row_dict: Dict[str, Any]) -> Any:
    """Validate ``row_dict`` against ``unischema``, encode it with the fields' codecs and return a ``pyspark.Row``.

    Raises ValueError naming the field for a missing or extra field, None in a non-nullable field, a wrong
    dtype or a wrong shape. ``row_dict`` itself is not modified.
    """
    from pyspark.sql import Row

    if not isinstance(unischema, Unischema):
        raise TypeError(f"Expected a Unischema, got {type(unischema).__name__}")
    extra = sorted(set(row_dict) - set(unischema.fields))
    if extra:
        raise ValueError(f"Fields {extra} are not in schema {unischema._name} "
                         f"(schema fields: {list(unischema.fields)})")
    row = copy.copy(row_dict)
    insert_explicit_nulls(unischema, row)
    values = []
    for name, field in unischema.fields.items():
        value = row[name]
        _check_field_value(field, value)
        if value is None:
            values.append(None)
        elif field.codec is not None:
            values.append(field.codec.encode(field, value))
        elif isinstance(value, (np.generic, np.ndarray)):
            values.append(value.tolist())
        else:
            values.append(value)
    return Row(**dict(zip(unischema.fields, values)))



# ---------------------------------------------------------------------------------------------------------------
# Language-neutral JSON form of a Unischema (read and written by the Scala side too; see docs/format.md).

JSON_SCHEMA_VERSION = 1

_JSON_DTYPES: Dict[str, Any] = {
    "bool": np.bool_, "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "float16": np.float16,
    "float32": np.float32, "float64": np.float64, "string": np.str_, "bytes": np.bytes_,
    "decimal": decimal.Decimal, "datetime64": np.datetime64, "timedelta64": np.timedelta64,
}
_JSON_DTYPE_NAMES = {t: name for name, t in _JSON_DTYPES.items()}


def _spark_atomic_types() -> Dict[str, type]:
    from pyspark.sql import types as T

    classes = (T.NullType, T.StringType, T.BinaryType, T.BooleanType, T.DateType, T.TimestampType,
               T.TimestampNTZType, T.DecimalType, T.DoubleType, T.FloatType, T.ByteType, T.IntegerType,
               T.LongType, T.ShortType)
    return {cls.typeName(): cls for cls in classes}


def _spark_type_from_json(value: Any) -> Any:
    """A pyspark DataType from Spark's own JSON form ("integer", "decimal(10,2)", {"type": "array", ...})."""
    from pyspark.sql import types as T

    if isinstance(value, dict):
        complex_types = {"array": T.ArrayType, "map": T.MapType, "struct": T.StructType}
        if value.get("type") not in complex_types:
            raise ValueError(f"Unknown Spark type {value!r}")
        return complex_types[value["type"]].fromJson(value)
    if not isinstance(value, str):
        raise ValueError(f"A Spark type must be a string or an object, got {value!r}")
    decimal_match = re.fullmatch(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)", value)
    if decimal_match:
        return T.DecimalType(int(decimal_match.group(1)), int(decimal_match.group(2)))
    char_match = re.fullmatch(r"(char|varchar)\(\s*(\d+)\s*\)", value)
    if char_match:
        return (T.CharType if char_match.group(1) == "char" else T.VarcharType)(int(char_match.group(2)))
    atomic = _spark_atomic_types()
    if value not in atomic:
        raise ValueError(f"Unknown Spark type {value!r}")
    return atomic[value]()


def _codec_to_json(field: UnischemaField) -> Optional[Dict[str, Any]]:
    codec = field.codec
    if codec is None:
        return None
    if type(codec) is _codecs.ScalarCodec:
        return {"type": "scalar", "spark_type": codec.spark_dtype().jsonValue()}
    if type(codec) is _codecs.NdarrayCodec:
        return {"type": "ndarray"}
    if type(codec) is _codecs.CompressedNdarrayCodec:
        return {"type": "compressed_ndarray"}
    if type(codec) is _codecs.CompressedImageCodec:
        return {"type": "image", "format": codec.image_codec, "quality": int(codec.quality)}
    raise ValueError(f"Field '{field.name}': codec {type(codec).__name__} has no JSON form")


def _codec_from_json(name: str, spec: Any) -> Any:
    if spec is None:
        return None
    kind = spec.get("type") if isinstance(spec, dict) else None
    expected_keys = {"scalar": {"type", "spark_type"}, "ndarray": {"type"}, "compressed_ndarray": {"type"},
                     "image": {"type", "format", "quality"}}
    if kind not in expected_keys:
        raise ValueError(f"Field '{name}': unknown codec {spec!r}")
    if set(spec) != expected_keys[kind]:
        raise ValueError(f"Field '{name}': codec '{kind}' needs exactly the keys {sorted(expected_keys[kind])}, "
                         f"got {sorted(spec)}")
    if kind == "scalar":
        return _codecs.ScalarCodec(_spark_type_from_json(spec["spark_type"]))
    if kind == "ndarray":
        return _codecs.NdarrayCodec()
    if kind == "compressed_ndarray":
        return _codecs.CompressedNdarrayCodec()
    if spec["format"] not in ("png", "jpeg") or not isinstance(spec["quality"], int):
        raise ValueError(f"Field '{name}': image codec needs format 'png' or 'jpeg' and an integer quality, "
                         f"got {spec!r}")
    return _codecs.CompressedImageCodec(spec["format"], spec["quality"])


def unischema_to_json(schema: Unischema) -> str:
    """The schema as a versioned JSON document (layout in docs/format.md)."""
    fields = []
    for f in schema.fields.values():
        if f.numpy_dtype not in _JSON_DTYPE_NAMES:
            raise ValueError(f"Field '{f.name}': type {dtype_name(f.numpy_dtype)} has no JSON form")
        fields.append({"name": f.name, "dtype": _JSON_DTYPE_NAMES[f.numpy_dtype],
                       "shape": [None if d is None else int(d) for d in f.shape],
                       "nullable": bool(f.nullable), "codec": _codec_to_json(f)})
    return json.dumps({"version": JSON_SCHEMA_VERSION, "name": schema._name, "fields": fields})


def _field_from_json(item: Any) -> UnischemaField:
    keys = {"name", "dtype", "shape", "nullable", "codec"}
    if not isinstance(item, dict) or set(item) != keys:
        raise ValueError(f"A field must be an object with exactly the keys {sorted(keys)}, got {item!r}")
    name = item["name"]
    if not isinstance(name, str) or item["dtype"] not in _JSON_DTYPES:
        raise ValueError(f"Field {name!r}: bad name or unknown dtype {item['dtype']!r} "
                         f"(known: {sorted(_JSON_DTYPES)})")
    shape = item["shape"]
    if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and d >= 0) for d in shape):
        raise ValueError(f"Field '{name}': shape must be a list of non-negative integers or null, got {shape!r}")
    if not isinstance(item["nullable"], bool):
        raise ValueError(f"Field '{name}': nullable must be true or false, got {item['nullable']!r}")
    return UnischemaField(name, _JSON_DTYPES[item["dtype"]], tuple(shape), _codec_from_json(name, item["codec"]),
                          item["nullable"])


def unischema_from_json(text: Union[str, bytes]) -> Unischema:
    """A Unischema from the document written by :func:`unischema_to_json`; ValueError if it is malformed."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"Unischema JSON is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("version") != JSON_SCHEMA_VERSION:
        version = doc.get("version") if isinstance(doc, dict) else None
        raise ValueError(f"Unsupported Unischema JSON version {version!r} (this release reads version "
                         f"{JSON_SCHEMA_VERSION})")
    if set(doc) != {"version", "name", "fields"} or not isinstance(doc["name"], str) \
            or not isinstance(doc["fields"], list):
        raise ValueError("Unischema JSON must be an object with exactly the keys 'version', 'name' (a string) "
                         "and 'fields' (a list)")
    return Unischema(doc["name"], [_field_from_json(item) for item in doc["fields"]])


def _new_gt_255_compatible_namedtuple(*args: Any, **kwargs: Any) -> type:
    """``collections.namedtuple`` (the original's helper for namedtuples of more than 255 fields; Python 3.7 and
    later lift that limit, so the standard class serves)."""
    return namedtuple(*args, **kwargs)
