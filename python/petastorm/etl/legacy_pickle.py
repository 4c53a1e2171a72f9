"""Safe loading of the pickled metadata keys of Petastorm datasets.

The keys ``dataset-toolkit.unischema.v1`` and ``dataset-toolkit.rowgroups_index.v1`` hold Python pickles. A
pickle can call any importable function, so loading one from an untrusted dataset could run arbitrary code.
:func:`safe_loads` only resolves an explicit allow-list of exact ``(module, name)`` pairs that legitimate
Petastorm metadata contains (the schema, codec and indexer classes, numpy scalar types, pyspark SQL types and a
few containers); anything else raises :class:`PetastormMetadataError` before it is called.

It also reads metadata written by old releases: module prefixes ``av.experimental.deepdrive.dataset_toolkit``
and ``av.ml.dataset_toolkit`` (renamed to ``petastorm``), Python 2 module names (``__builtin__``, ``copy_reg``),
numpy type names removed in numpy 2 (``unicode_``, ``string_``) and fields stored through
``pyspark.serializers._restore``, which pyspark 3 removed.
"""
from __future__ import annotations

import copyreg
import decimal
import importlib
import io
import pickle
import struct
import types
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Dict, Tuple

import numpy as np

from petastorm.errors import PetastormMetadataError

__all__ = ["safe_loads", "PetastormMetadataError"]

_RENAMED_PREFIXES = (("av.experimental.deepdrive.dataset_toolkit.", "petastorm."),
                     ("av.ml.dataset_toolkit.", "petastorm."))
_RENAMED_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "numpy.core.multiarray": "numpy._core.multiarray"}

_PETASTORM_CLASSES = {
    "petastorm.unischema": ("Unischema", "UnischemaField"),
    "petastorm.codecs": ("ScalarCodec", "NdarrayCodec", "CompressedNdarrayCodec", "CompressedImageCodec"),
    "petastorm.etl.rowgroup_indexers": ("SingleFieldIndexer", "FieldNotNullIndexer"),
}

# numpy scalar type names (as pickled by numpy 1.x and 2.x) -> the numpy 2 attribute.
_NUMPY_TYPES = {name: name for name in (
    "bool_", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intc", "uintc",
    "int_", "uint", "intp", "uintp", "long", "ulong", "longlong", "ulonglong", "byte", "ubyte", "short", "ushort",
    "float16", "float32", "float64", "half", "single", "double", "longdouble", "complex64", "complex128",
    "csingle", "cdouble", "clongdouble", "str_", "bytes_", "object_", "void", "datetime64", "timedelta64")}
_NUMPY_TYPES.update({"unicode_": "str_", "string_": "bytes_", "str0": "str_", "bytes0": "bytes_",
                     "unicode": "str_", "bool8": "bool_", "object0": "object_", "void0": "void", "float_": "float64",
                     "complex_": "complex128", "longfloat": "longdouble", "singlecomplex": "complex64",
                     "cfloat": "complex128", "clongfloat": "clongdouble", "longcomplex": "clongdouble",
                     "int0": "intp", "uint0": "uintp"})

_SPARK_TYPES = (
    "DataType", "NullType", "StringType", "CharType", "VarcharType", "BinaryType", "BooleanType", "DateType",
    "TimestampType", "TimestampNTZType", "DecimalType", "DoubleType", "FloatType", "ByteType", "IntegerType",
    "LongType", "ShortType", "ArrayType", "MapType", "StructField", "StructType", "DayTimeIntervalType",
    "YearMonthIntervalType")

_BUILTIN_TYPES = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list, "dict": dict, "object": object,
                  "str": str, "unicode": str, "bytes": bytes, "int": int, "long": int, "float": float, "bool": bool,
                  "complex": complex}


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    """``numpy.core.multiarray.scalar`` restricted to building a plain scalar from its raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise PetastormMetadataError(f"Refused numpy scalar of dtype {dtype!r}: only plain (non-object) scalars "
                                     f"are loaded")
    if isinstance(data, str):
        data = data.encode("latin1")  # Python 2 pickles store the bytes as str
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise PetastormMetadataError(f"Refused numpy scalar of dtype {dtype}: expected {dtype.itemsize} raw bytes")
    return np.frombuffer(data, dtype=dtype)[0]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocols 0-2 use it to pickle bytes: only str to latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise PetastormMetadataError(f"Refused _codecs.encode with encoding {encoding!r}: only latin1 text is "
                                     f"turned into bytes")
    return text.encode("latin1")


def _restore(name: str, fields: Any, values: Any) -> Any:
    """Replacement for ``pyspark.serializers._restore`` (removed in pyspark 3); rebuilds only UnischemaFields."""
    from petastorm.unischema import UnischemaField

    fields, values = tuple(fields), tuple(values)
    if name != "UnischemaField" or not set(fields) <= set(UnischemaField._fields) or len(fields) != len(values):
        raise PetastormMetadataError(f"Refused pyspark.serializers._restore of namedtuple {name!r} with fields "
                                     f"{fields!r}: only UnischemaField is loaded")
    return UnischemaField(**dict(zip(fields, values)))


def _lazy(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


def _allow_list() -> Dict[Tuple[str, str], Callable[[], Any]]:
    allowed: Dict[Tuple[str, str], Callable[[], Any]] = {}
    for module, names in _PETASTORM_CLASSES.items():
        allowed.update({(module, n): _lazy(module, n) for n in names})
    for name, target in _NUMPY_TYPES.items():
        if hasattr(np, target):
            allowed[("numpy", name)] = _lazy("numpy", target)
    allowed[("numpy", "dtype")] = lambda: np.dtype
    allowed[("numpy._core.multiarray", "scalar")] = lambda: _numpy_scalar
    allowed.update({("pyspark.sql.types", n): _lazy("pyspark.sql.types", n) for n in _SPARK_TYPES})
    allowed[("pyspark.serializers", "_restore")] = lambda: _restore
    allowed[("decimal", "Decimal")] = lambda: decimal.Decimal
    allowed[("collections", "OrderedDict")] = lambda: OrderedDict
    allowed[("collections", "defaultdict")] = lambda: defaultdict
    allowed.update({("builtins", n): (lambda t=t: t) for n, t in _BUILTIN_TYPES.items()})
    allowed[("copyreg", "_reconstructor")] = lambda: _safe_reconstructor
    allowed[("_codecs", "encode")] = lambda: _latin1_encode
    return allowed


_ALLOWED = _allow_list()


def _normalise(module: str, name: str) -> Tuple[str, str]:
    for old, new in _RENAMED_PREFIXES:
        if module.startswith(old):
            module = new + module[len(old):]
    return _RENAMED_MODULES.get(module, module), name


def _resolve(module: str, name: str) -> Any:
    """The allow-listed object for a pickled global; PetastormMetadataError if it is not allow-listed."""
    resolver = _ALLOWED.get(_normalise(module, name))
    if resolver is None:
        raise PetastormMetadataError(f"Refused to unpickle {module}.{name}: not on the allow-list of classes "
                                     f"that Petastorm metadata may contain")
    return resolver()


def _is_allowed_type(cls: Any) -> bool:
    if not isinstance(cls, type):
        return False
    try:
        return _resolve(cls.__module__, cls.__qualname__) is cls
    except (PetastormMetadataError, ImportError, AttributeError):
        return False


def _is_allowed_instance(obj: Any) -> bool:
    return any(_is_allowed_type(base) for base in type(obj).__mro__ if base is not object)


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` limited to allow-listed classes (``base`` may also be ``object``)."""
    if not (_is_allowed_type(cls) and (base is object or _is_allowed_type(base)) and issubclass(cls, base)):
        raise PetastormMetadataError(f"Refused copyreg._reconstructor({cls!r}, {base!r}, ...): only allow-listed "
                                     f"classes are reconstructed")
    return copyreg._reconstructor(cls, base, state)


_TIME_UNITS = {u.encode() for u in ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic")}


def _check_dtype_state(dtype: np.dtype, state: Any) -> None:
    """A pickled dtype's ``__setstate__`` state must be the plain one of its type (any byte order): numpy trusts the
    item size, alignment, fields and flags it is handed, and a crafted state yields dtypes that read out of bounds."""
    expected = dtype.__reduce__()[2]
    plain = isinstance(state, tuple) and len(state) == len(expected) and state[0] == expected[0] and \
        state[1] in ("<", ">", "|", "=") and state[2:8] == expected[2:8]
    if plain and len(state) > 8:  # datetime64 / timedelta64: (None, (unit, count, 1, 1)) with a known unit
        unit = state[8][1] if isinstance(state[8], tuple) and len(state[8]) == 2 else None
        plain = isinstance(unit, tuple) and len(unit) == 4 and unit[0] in _TIME_UNITS and unit[1:] == (1, 1, 1)
    if not plain:
        raise PetastormMetadataError(f"Refused the pickled state {state!r} of dtype {dtype}: only plain dtypes "
                                     f"are loaded")


class _SafeUnpickler(pickle._Unpickler):
    """Pure-Python unpickler (so that BUILD can be checked) resolving only allow-listed globals."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        return _resolve(module, name)

    def load_build(self) -> None:
        inst = self.stack[-2]  # the state is on top, the object to build below it
        if isinstance(inst, (type, types.FunctionType, types.BuiltinFunctionType)) or not _is_allowed_instance(inst):
            raise PetastormMetadataError(f"Refused to set the state of {inst!r}: only instances of allow-listed "
                                         f"classes are built")
        if isinstance(inst, np.dtype):
            _check_dtype_state(inst, self.stack[-1])
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    input_size = 0  # bytes of the pickle: no object in it can be larger

    def load_bytearray8(self) -> None:
        # pickle allocates the stated size before reading: a 600-byte pickle claiming 9.9 GB took 9.9 GB.
        (size,) = struct.unpack("<Q", self.read(8))
        if size > self.input_size:
            raise PetastormMetadataError(f"a BYTEARRAY8 claims {size:,} bytes, the pickle has {self.input_size:,}")
        buffer = bytearray(size)
        self.readinto(buffer)
        self.append(buffer)

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def persistent_load(self, pid: Any) -> Any:
        raise PetastormMetadataError("Refused a persistent id: Petastorm metadata never contains one")


# A loaded value may hold at most this many objects, counting each reference (a pickle can make a list refer twice
# to the one below it through the memo: printing, hashing or comparing such a DAG takes time exponential in depth).
_MAX_OBJECTS = 1_000_000
_MAX_DEPTH = 64


def _check_size(value: Any, what: str) -> None:
    """Raises ``PetastormMetadataError`` when ``value``, walked as a tree (shared objects counted every time they
    are referred to), holds more than ``_MAX_OBJECTS`` objects or nests deeper than ``_MAX_DEPTH``."""
    stack, count = [(value, 0)], 0
    while stack:
        obj, depth = stack.pop()
        count += 1
        if count > _MAX_OBJECTS or depth > _MAX_DEPTH:
            raise PetastormMetadataError(f"Cannot load {what}: it holds more than {_MAX_OBJECTS:,} objects or nests "
                                         f"deeper than {_MAX_DEPTH} (legitimate metadata is small; a crafted pickle?)")
        if isinstance(obj, (str, bytes, int, float, bool, type(None), type)):
            continue
        if isinstance(obj, dict):
            children = list(obj.keys()) + list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = list(obj)
        else:
            children = list(getattr(obj, "__dict__", {}).values())
        stack.extend((child, depth + 1) for child in children)


def safe_loads(data: bytes, what: str = "pickled Petastorm metadata") -> Any:
    """Unpickle ``data`` resolving only allow-listed classes; nothing else is imported or called.

    :param data: the pickle bytes (any protocol, 0 to 5).
    :param what: what the bytes are (e.g. the metadata key), used in error messages.
    :raises PetastormMetadataError: a global outside the allow-list (the message names its ``module.name``),
        bytes that are not a loadable pickle, or a value too large to be metadata (more than 1,000,000 objects
        counting every reference, or nested deeper than 64).
    """
    try:
        unpickler = _SafeUnpickler(io.BytesIO(data), encoding="latin1")
        unpickler.input_size = len(data)
        value = unpickler.load()
    except PetastormMetadataError as e:
        raise PetastormMetadataError(f"Cannot load {what}: {e}") from None
    except Exception as e:  # a malformed pickle can fail in many ways; report them all the same way
        raise PetastormMetadataError(f"Cannot load {what}: {type(e).__name__}: {e}") from e
    _check_size(value, what)
    return value


def check_loaded_unischema(schema: Any, what: str) -> None:
    """Raises ``PetastormMetadataError`` unless an unpickled ``schema`` is a well-formed Unischema: fields with a str
    name, a numpy (or Decimal) type, a shape of ints >= 0 and None, a bool nullability and a codec holding the
    state its class needs (a pickle may build allow-listed objects with any state, or none)."""
    from petastorm.codecs import CompressedImageCodec, DataframeColumnCodec, ScalarCodec
    from petastorm.unischema import Unischema, UnischemaField

    def bad(reason: str) -> PetastormMetadataError:
        return PetastormMetadataError(f"Cannot load {what}: {reason}")

    if not isinstance(schema, Unischema) or not isinstance(getattr(schema, "_fields", None), dict) or \
            not isinstance(getattr(schema, "_name", None), str):
        raise bad(f"it holds a {type(schema).__name__}, expected a Unischema")
    for name, field in schema._fields.items():
        if not isinstance(field, UnischemaField) or not isinstance(field.name, str) or field.name != name:
            raise bad(f"entry {name!r} is not a field of that name")
        if not (isinstance(field.numpy_dtype, type) and issubclass(field.numpy_dtype, (np.generic, decimal.Decimal))):
            raise bad(f"field {name!r} has the type {field.numpy_dtype!r}, expected a numpy scalar type or Decimal")
        if not isinstance(field.shape, tuple) or len(field.shape) > 32 or not all(
                d is None or (type(d) is int and d >= 0) for d in field.shape):
            raise bad(f"field {name!r} has the shape {field.shape!r}, expected a tuple of ints >= 0 and None")
        if not isinstance(field.nullable, (bool, np.bool_)):
            raise bad(f"field {name!r} has the nullability {field.nullable!r}, expected a bool")
        codec, state = field.codec, getattr(field.codec, "__dict__", {})
        needed = {ScalarCodec: ("_spark_type",),
                  CompressedImageCodec: ("_image_codec", "_quality")}.get(type(codec), ())
        if codec is not None and (not isinstance(codec, DataframeColumnCodec) or any(k not in state for k in needed)):
            raise bad(f"field {name!r} has the codec {type(codec).__name__} without its state")
        if isinstance(codec, CompressedImageCodec) and codec._image_codec not in (".png", ".jpeg"):
            raise bad(f"field {name!r} has the image format {codec._image_codec!r}, expected .png or .jpeg")
