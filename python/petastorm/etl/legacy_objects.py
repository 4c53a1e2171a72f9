"""The objects legacy Petastorm metadata pickles may ask for, each built by our own code from validated values.

A pickle read by :mod:`petastorm.etl.pickle_data` asks for calls (``Unischema.__new__`` then a ``BUILD`` state,
``numpy.dtype('f8')``, ``OrderedDict([...])``...). For each allowed callable, :data:`MAKERS` holds a function that
checks the arguments and state the pickle gives and builds the value through public constructors: no
``__setstate__``, ``__reduce__`` or ``__new__`` of numpy or any other class ever sees untrusted state.
"""
from __future__ import annotations

import decimal
import re
import warnings
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from petastorm.errors import PetastormMetadataError

__all__ = ["MAKERS", "Parts", "plain_key"]

_MAX_DIMENSION = 2 ** 31 - 1


class Parts(NamedTuple):
    """A call from a pickle with its parts already built: ``name(*args)``, then ``state``, then the items."""

    name: str
    args: tuple
    state: Any
    list_items: List[Any]
    dict_items: List[Tuple[Any, Any]]


def _refuse(parts: Parts, reason: str) -> PetastormMetadataError:
    return PetastormMetadataError(f"Refused {parts.name} from a pickle: {reason}")


def _no_items(parts: Parts) -> None:
    if parts.list_items or parts.dict_items:
        raise _refuse(parts, "items added to an object that holds none")


def _state(parts: Parts, allowed: Tuple[str, ...], args: int = 0) -> Dict[str, Any]:
    """The ``BUILD`` state as a dict with only ``allowed`` keys (absent state: empty), after ``args`` arguments."""
    _no_items(parts)
    if len(parts.args) != args:
        raise _refuse(parts, f"{len(parts.args)} arguments, expected {args}")
    state = {} if parts.state is None else parts.state
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise _refuse(parts, f"a state of type {type(state).__name__}, expected a dict of attributes")
    unknown = sorted(set(state) - set(allowed))
    if unknown:
        raise _refuse(parts, f"unexpected attributes {unknown}")
    return state


def plain_key(value: Any) -> Any:
    """``value`` if it may be a dict key or set element of metadata (hashing it cannot run code or take long)."""
    if isinstance(value, (str, bytes, int, float, type(None), decimal.Decimal)) or \
            (isinstance(value, np.generic) and not isinstance(value, np.object_)):
        return value
    if isinstance(value, tuple):
        return tuple(plain_key(v) for v in value)
    raise PetastormMetadataError(f"Refused a dict key or set element of type {type(value).__name__}: metadata "
                                 f"keys are strings, numbers or tuples of them")


def _checked(value: Any, kind: Any, parts: Parts, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _refuse(parts, f"{what} is a {type(value).__name__}")
    return value


# ------------------------------------------------------------------ schema, fields, codecs

def _unischema(parts: Parts) -> Any:
    from petastorm.unischema import Unischema, UnischemaField

    state = parts.state if isinstance(parts.state, dict) else {}
    fields = state.get("_fields")
    name = _checked(state.get("_name"), str, parts, "_name")
    if not isinstance(fields, dict) or \
            not all(isinstance(f, UnischemaField) and f.name == k for k, f in fields.items()):
        raise _refuse(parts, "_fields is not a dict of UnischemaField by name")
    _state(parts, ("_name", "_fields", *(k for k, f in fields.items() if state.get(k) == f)))
    with warnings.catch_warnings():  # a field named like a Unischema attribute: as the original, no attribute
        warnings.simplefilter("ignore")
        return Unischema(name, fields.values())


def _unischema_field(parts: Parts, values: Optional[Dict[str, Any]] = None) -> Any:
    from petastorm.codecs import DataframeColumnCodec
    from petastorm.unischema import UnischemaField

    _no_items(parts)
    if values is None:
        if not 4 <= len(parts.args) <= 5 or parts.state is not None:
            raise _refuse(parts, f"{len(parts.args)} values, expected 4 or 5 and no state")
        values = dict(zip(UnischemaField._fields, parts.args))
    name = _checked(values.get("name"), str, parts, "the field name")
    dtype, shape, codec = values.get("numpy_dtype"), values.get("shape"), values.get("codec")
    if not (isinstance(dtype, type) and issubclass(dtype, (np.generic, decimal.Decimal))):
        raise _refuse(parts, f"field {name!r} has the type {dtype!r}, expected a numpy scalar type or Decimal")
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(
            d is None or (type(d) is int and 0 <= d <= _MAX_DIMENSION) for d in shape):
        raise _refuse(parts, f"field {name!r} has the shape {shape!r}, expected a tuple of ints from 0 to "
                             f"{_MAX_DIMENSION} and None")
    if codec is not None and not isinstance(codec, DataframeColumnCodec):
        raise _refuse(parts, f"field {name!r} has the codec {codec!r}")
    nullable = _checked(values.get("nullable", False), (bool, np.bool_), parts, f"field {name!r}'s nullability")
    return UnischemaField(name, dtype, shape, codec, bool(nullable))


def _restore(parts: Parts) -> Any:
    """``pyspark.serializers._restore(name, fields, values)``, as Petastorm 0.4-0.7 pickled each field."""
    from petastorm.unischema import UnischemaField

    name, fields, values = parts.args if len(parts.args) == 3 else (None, (), ())
    if name != "UnischemaField" or not isinstance(fields, tuple) or not isinstance(values, tuple) or \
            not set(fields) <= set(UnischemaField._fields) or len(fields) != len(values):
        raise PetastormMetadataError(f"Refused pyspark.serializers._restore of namedtuple {name!r} with fields "
                                     f"{fields!r}: only UnischemaField is loaded")
    return _unischema_field(parts._replace(args=()), dict(zip(fields, values)))


def _codec(cls_name: str) -> Callable[[Parts], Any]:
    def make(parts: Parts) -> Any:
        from petastorm import codecs

        _state(parts, ())
        return getattr(codecs, cls_name)()
    return make


def _image_codec(parts: Parts) -> Any:
    from petastorm.codecs import CompressedImageCodec

    state = _state(parts, ("_image_codec", "_quality"))
    image_format = state.get("_image_codec", ".png")
    quality = _checked(state.get("_quality", 80), int, parts, "_quality")
    if image_format not in (".png", ".jpeg", ".jpg") or not 0 <= quality <= 100:
        raise _refuse(parts, f"image format {image_format!r} with quality {quality!r}, expected .png or .jpeg and "
                             f"0-100")
    return CompressedImageCodec(image_format[1:], quality)


def _scalar_codec(parts: Parts) -> Any:
    from pyspark.sql.types import DataType

    from petastorm.codecs import ScalarCodec

    spark_type = _state(parts, ("_spark_type",)).get("_spark_type")
    return ScalarCodec(_checked(spark_type, DataType, parts, "_spark_type"))


# ------------------------------------------------------------------ Spark SQL types

# Constructor arguments of each type, taken from its pickled attributes; other attributes are derived ones
# (StructType.names, DecimalType.hasPrecisionInfo...) and are rebuilt by the constructor.
_SPARK_TYPE_ARGS = {
    "DecimalType": ("precision", "scale"), "ArrayType": ("elementType", "containsNull"),
    "MapType": ("keyType", "valueType", "valueContainsNull"), "StructField": ("name", "dataType", "nullable"),
    "StructType": ("fields",), "CharType": ("length",), "VarcharType": ("length",),
    "DayTimeIntervalType": ("startField", "endField"), "YearMonthIntervalType": ("startField", "endField")}
SPARK_TYPES = (
    "DataType", "NullType", "StringType", "CharType", "VarcharType", "BinaryType", "BooleanType", "DateType",
    "TimestampType", "TimestampNTZType", "DecimalType", "DoubleType", "FloatType", "ByteType", "IntegerType",
    "LongType", "ShortType", "ArrayType", "MapType", "StructField", "StructType", "DayTimeIntervalType",
    "YearMonthIntervalType")


def _spark_value(value: Any, parts: Parts, key: str) -> Any:
    from pyspark.sql.types import DataType, StructField

    if isinstance(value, (DataType, str, bool)) or type(value) is int:
        return value
    if isinstance(value, list) and all(isinstance(v, StructField) for v in value):
        return value
    raise _refuse(parts, f"attribute {key} is a {type(value).__name__}")


def _spark_type(cls_name: str) -> Callable[[Parts], Any]:
    def make(parts: Parts) -> Any:
        from pyspark.sql import types

        _no_items(parts)
        state = parts.state if isinstance(parts.state, dict) else {}
        if parts.args or (parts.state is not None and not isinstance(parts.state, dict)):
            raise _refuse(parts, "arguments or a state that is not a dict of attributes")
        kwargs = {k: _spark_value(state[k], parts, k) for k in _SPARK_TYPE_ARGS.get(cls_name, ()) if k in state}
        try:
            return getattr(types, cls_name)(**kwargs)
        except (TypeError, ValueError, AssertionError) as e:
            raise _refuse(parts, f"{type(e).__name__}: {e}") from None
    return make


# ------------------------------------------------------------------ row-group indexers

def _indexer(cls_name: str) -> Callable[[Parts], Any]:
    def make(parts: Parts) -> Any:
        from petastorm.etl import rowgroup_indexers

        state = _state(parts, ("_index_name", "_column_name", "_index_data"))
        index_name = _checked(state.get("_index_name"), str, parts, "_index_name")
        indexer = getattr(rowgroup_indexers, cls_name)(index_name, _checked(state.get("_column_name"), str, parts,
                                                                            "_column_name"))
        data = state.get("_index_data", indexer._index_data)
        pieces = data.values() if cls_name == "SingleFieldIndexer" and isinstance(data, dict) else [data]
        if type(data) is not type(indexer._index_data) or not all(
                isinstance(p, set) and all(type(i) is int or isinstance(i, np.integer) for i in p) for p in pieces):
            raise _refuse(parts, f"_index_data is a {type(data).__name__} that does not map values to sets of "
                                 f"row-group numbers")
        indexer._index_data = data
        return indexer
    return make


# ------------------------------------------------------------------ numpy, containers and scalars

_DESCR = re.compile(r"b1|[iu][1248]|f(2|4|8|16)|c(8|16|32)|[SUV]\d{1,9}|[Mm]8")
_TIME_UNITS = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic")


def _numpy_dtype(parts: Parts) -> np.dtype:
    """``numpy.dtype(descr, align, copy)`` then its state: only plain dtypes, built from their descr string."""
    _no_items(parts)
    descr = parts.args[0] if parts.args else None
    state = parts.state
    if not isinstance(descr, str) or not _DESCR.fullmatch(descr) or len(parts.args) > 3:
        raise _refuse(parts, f"dtype {descr!r}: only plain numeric, text, bytes and time dtypes are loaded")
    dtype = np.dtype(descr)
    if state is None:
        return dtype
    expected = dtype.__reduce__()[2]
    plain = isinstance(state, tuple) and len(state) == len(expected) and state[0] == expected[0] and \
        state[1] in ("<", ">", "|", "=") and state[2:8] == expected[2:8]
    if plain and len(state) > 8:  # datetime64 / timedelta64: (None, (unit, 1, 1, 1))
        unit = state[8][1] if isinstance(state[8], tuple) and len(state[8]) == 2 else None
        plain = isinstance(unit, tuple) and len(unit) == 4 and isinstance(unit[0], bytes) and \
            unit[0].decode("latin1") in _TIME_UNITS and unit[1:] == (1, 1, 1)
        dtype = np.dtype(f"{descr}[{unit[0].decode('latin1')}]") if plain else dtype
    if not plain:
        raise _refuse(parts, f"the state {state!r} of dtype {dtype}: only plain dtypes are loaded")
    return dtype.newbyteorder(state[1]) if state[1] in "<>" and dtype.byteorder != "|" else dtype


def _numpy_scalar(parts: Parts) -> np.generic:
    """``numpy.core.multiarray.scalar(dtype, raw bytes)``: a plain scalar from exactly its bytes."""
    dtype, data = parts.args if len(parts.args) == 2 else (None, None)
    if isinstance(data, str):
        data = data.encode("latin1")  # Python 2 pickles store the bytes as str
    if not isinstance(dtype, np.dtype) or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise _refuse(parts, f"scalar of dtype {dtype!r} from {type(data).__name__}: expected the dtype's raw bytes")
    _no_items(parts)
    return np.frombuffer(data, dtype=dtype)[0]


def _latin1_encode(parts: Parts) -> bytes:
    """``_codecs.encode(text, 'latin1')``, as protocols 0-2 pickle bytes."""
    text, encoding = parts.args if len(parts.args) == 2 else (parts.args[0] if parts.args else None, "latin1")
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise PetastormMetadataError(f"Refused _codecs.encode with encoding {encoding!r}: only latin1 text is "
                                     f"turned into bytes")
    return text.encode("latin1")


def _collection(kind: type) -> Callable[[Parts], Any]:
    """``set(items)``, ``list(items)``, ``OrderedDict(pairs)``... from at most one built iterable, then the items
    ``APPEND``/``SETITEM`` add."""
    def make(parts: Parts) -> Any:
        if len(parts.args) > 1 or parts.state is not None or (parts.args and not isinstance(
                parts.args[0], (list, tuple, set, frozenset, dict, str, bytes))):
            raise _refuse(parts, "arguments other than one list, tuple, set or dict, or a state")
        items = list(parts.args[0].items() if isinstance(parts.args[0], dict) else parts.args[0]) \
            if parts.args else []
        if kind in (dict, OrderedDict):
            return kind(_pairs(parts, items) + _pairs(parts, parts.dict_items))
        if parts.dict_items or (parts.list_items and kind is not list):
            raise _refuse(parts, "items added to it")
        items = [plain_key(i) for i in items] if kind in (set, frozenset) else items
        return kind(items + parts.list_items)
    return make


def _pairs(parts: Parts, items: List[Any]) -> List[Tuple[Any, Any]]:
    if not all(isinstance(item, (list, tuple)) and len(item) == 2 for item in items):
        raise _refuse(parts, "an item that is not a (key, value) pair")
    return [(plain_key(k), v) for k, v in items]


def _defaultdict(parts: Parts) -> defaultdict:
    factory = parts.args[0] if parts.args else None
    if len(parts.args) > 1 or factory not in (None, set, list, dict, int) or parts.state is not None or \
            parts.list_items:
        raise _refuse(parts, f"default factory {factory!r}, expected set, list, dict or int")
    return defaultdict(factory, _pairs(parts, parts.dict_items))


def _decimal(parts: Parts) -> decimal.Decimal:
    _no_items(parts)
    if len(parts.args) != 1 or not isinstance(parts.args[0], str) or len(parts.args[0]) > 100:
        raise _refuse(parts, "expected one decimal string")
    return decimal.Decimal(parts.args[0])


MAKERS: Dict[str, Callable[[Parts], Any]] = {
    "petastorm.unischema.Unischema": _unischema, "petastorm.unischema.UnischemaField": _unischema_field,
    "pyspark.serializers._restore": _restore,
    "petastorm.codecs.NdarrayCodec": _codec("NdarrayCodec"),
    "petastorm.codecs.CompressedNdarrayCodec": _codec("CompressedNdarrayCodec"),
    "petastorm.codecs.CompressedImageCodec": _image_codec, "petastorm.codecs.ScalarCodec": _scalar_codec,
    "petastorm.etl.rowgroup_indexers.SingleFieldIndexer": _indexer("SingleFieldIndexer"),
    "petastorm.etl.rowgroup_indexers.FieldNotNullIndexer": _indexer("FieldNotNullIndexer"),
    "numpy.dtype": _numpy_dtype, "numpy._core.multiarray.scalar": _numpy_scalar, "_codecs.encode": _latin1_encode,
    "decimal.Decimal": _decimal, "collections.OrderedDict": _collection(OrderedDict),
    "collections.defaultdict": _defaultdict, "builtins.bytes": _collection(bytes),
    **{f"builtins.{kind.__name__}": _collection(kind) for kind in (set, frozenset, list, tuple, dict)},
    **{f"pyspark.sql.types.{name}": _spark_type(name) for name in SPARK_TYPES},
}
