"""Unischema: one schema description usable from numpy, Spark and Parquet.

A ``Unischema`` is a named, ordered collection of ``UnischemaField`` objects. Each field has a numpy scalar type,
a shape (``None`` for a variable dimension), an optional codec that turns values into Parquet cells, and a
nullability flag. Instances pickle exactly as in Petastorm 0.13.1 (same class paths and instance state).
"""
from __future__ import annotations

import copy
import re
import warnings
from collections import OrderedDict, namedtuple
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from petastorm import codecs as _codecs
from petastorm._checks import check_ndarray, check_scalar, dtype_name

__all__ = ["UnischemaField", "Unischema", "dict_to_spark_row", "insert_explicit_nulls", "match_unischema_fields"]


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


_VALIDATED_ARRAY_CODECS = (_codecs.NdarrayCodec, _codecs.CompressedNdarrayCodec, _codecs.CompressedImageCodec)


def _check_field_value(field: UnischemaField, value: Any) -> None:
    if value is None:
        if not field.nullable:
            raise ValueError(f"Field '{field.name}' is not nullable, but got None")
        return
    if field.shape == ():
        if field.codec is None or isinstance(field.codec, _codecs.ScalarCodec):
            check_scalar(field, value)
    elif isinstance(field.codec, _VALIDATED_ARRAY_CODECS) or (field.codec is None and isinstance(value, np.ndarray)):
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
    return Row(*unischema.fields)(*values)

