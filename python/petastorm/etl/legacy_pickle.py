"""Safe loading of the pickled metadata keys of Petastorm datasets.

The keys ``dataset-toolkit.unischema.v1`` and ``dataset-toolkit.rowgroups_index.v1`` hold Python pickles. A
pickle can call any importable function, so loading one from an untrusted dataset with an unpickler could run
arbitrary code, and even allowed classes (numpy's ``dtype.__setstate__``) crash on crafted state. No unpickler is
used: :func:`safe_loads` reads the pickle as data (:mod:`petastorm.etl.pickle_data`, with its size limits), refuses
any global outside an explicit allow-list of exact ``(module, name)`` pairs that legitimate Petastorm metadata
contains (the schema, codec and indexer classes, numpy scalar types, pyspark SQL types and a few containers) the
moment the pickle names it, and builds each object with our own code from validated values
(:mod:`petastorm.etl.legacy_objects`).

It also reads metadata written by old releases: module prefixes ``av.experimental.deepdrive.dataset_toolkit``
and ``av.ml.dataset_toolkit`` (renamed to ``petastorm``), Python 2 module names (``__builtin__``, ``copy_reg``),
numpy type names removed in numpy 2 (``unicode_``, ``string_``) and fields stored through
``pyspark.serializers._restore``, which pyspark 3 removed.
"""
from __future__ import annotations

import decimal
import importlib
from collections import OrderedDict, defaultdict
from typing import Any, Callable, Dict, Tuple

import numpy as np

from petastorm.errors import PetastormMetadataError
from petastorm.etl.legacy_objects import MAKERS, SPARK_TYPES, Parts, plain_key
from petastorm.etl.pickle_data import Call, Global, PickledDict, PickledSet, read_pickle

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

_BUILTIN_TYPES = {"set": set, "frozenset": frozenset, "tuple": tuple, "list": list, "dict": dict, "object": object,
                  "str": str, "unicode": str, "bytes": bytes, "int": int, "long": int, "float": float, "bool": bool,
                  "complex": complex}


def _lazy(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


def _allow_list() -> Dict[str, Callable[[], Any]]:
    """What each allowed global stands for when a pickle uses it as a value (a field's numpy type, a defaultdict
    factory) or when :meth:`RestrictedUnpickler.find_class` is asked for it."""
    allowed: Dict[str, Callable[[], Any]] = {}
    for module, names in _PETASTORM_CLASSES.items():
        allowed.update({f"{module}.{n}": _lazy(module, n) for n in names})
    for name, target in _NUMPY_TYPES.items():
        if hasattr(np, target):
            allowed[f"numpy.{name}"] = _lazy("numpy", target)
    allowed["numpy.dtype"] = lambda: np.dtype
    allowed.update({f"pyspark.sql.types.{n}": _lazy("pyspark.sql.types", n) for n in SPARK_TYPES})
    allowed["decimal.Decimal"] = lambda: decimal.Decimal
    allowed["collections.OrderedDict"] = lambda: OrderedDict
    allowed["collections.defaultdict"] = lambda: defaultdict
    allowed.update({f"builtins.{n}": (lambda t=t: t) for n, t in _BUILTIN_TYPES.items()})
    for name in ("numpy._core.multiarray.scalar", "pyspark.serializers._restore", "_codecs.encode",
                 "copyreg._reconstructor"):  # functions: only ever called through their maker
        allowed[name] = lambda name=name: _refused_call(name)
    return allowed


def _refused_call(name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise PetastormMetadataError(f"{name} is only evaluated by safe_loads, from a pickle")
    return call


_ALLOWED = _allow_list()


def _normalise(module: str, name: str) -> Global:
    for old, new in _RENAMED_PREFIXES:
        if module.startswith(old):
            module = new + module[len(old):]
    return Global(_RENAMED_MODULES.get(module, module), name)


def resolve_global(module: str, name: str) -> Global:
    """The allow-listed global ``module.name`` (old module names normalised); PetastormMetadataError otherwise."""
    normalised = _normalise(module, name)
    if normalised.qualname not in _ALLOWED:
        raise PetastormMetadataError(f"Refused to unpickle {module}.{name}: not on the allow-list of classes "
                                     f"that Petastorm metadata may contain")
    return normalised


def resolve_object(module: str, name: str) -> Any:
    """What the allow-listed global ``module.name`` stands for; PetastormMetadataError if it is not allowed."""
    return _ALLOWED[resolve_global(module, name).qualname]()


class _Builder:
    """Turns a pickle read as data into objects, each call through its maker; shared parts are built once."""

    def __init__(self) -> None:
        self.built: Dict[int, Any] = {}

    def build(self, node: Any) -> Any:
        if node is None or isinstance(node, (str, bytes, int, float)):
            return node
        if id(node) not in self.built:
            self.built[id(node)] = self._build(node)
        return self.built[id(node)]

    def _build(self, node: Any) -> Any:
        if isinstance(node, bytearray):
            return bytearray(node)
        if isinstance(node, list):
            return [self.build(item) for item in node]
        if isinstance(node, tuple):
            return tuple(self.build(item) for item in node)
        if isinstance(node, PickledDict):
            return {plain_key(self.build(k)): self.build(v) for k, v in node.items}
        if isinstance(node, PickledSet):
            return (frozenset if node.frozen else set)(plain_key(self.build(item)) for item in node.items)
        if isinstance(node, Global):
            return _ALLOWED[node.qualname]()
        return self._call(node)

    def _call(self, call: Call) -> Any:
        func, args = call.func, call.args
        if func.qualname == "copyreg._reconstructor":
            func, args = _reconstructed(call)
        maker = MAKERS.get(func.qualname)
        if maker is None or (call.kwargs is not None and call.kwargs.items):
            raise PetastormMetadataError(f"Refused a call of {func.qualname}: a pickle of Petastorm metadata never "
                                         f"calls it (or never with keyword arguments)")
        return maker(Parts(func.qualname, self.build(args), self.build(call.state),
                           [self.build(item) for item in call.list_items],
                           [(self.build(k), self.build(v)) for k, v in call.dict_items]))


def _reconstructed(call: Call) -> Tuple[Global, tuple]:
    """``copyreg._reconstructor(cls, base, base_state)`` (protocols 0 and 1) as the class and its arguments: only an
    allowed class on ``object`` or (a namedtuple) on ``tuple``."""
    cls, base, base_state = call.args if len(call.args) == 3 else (None, None, None)
    base_name = base.qualname if isinstance(base, Global) else None
    if not isinstance(cls, Global) or cls.qualname not in MAKERS or base_name not in ("builtins.object",
                                                                                   "builtins.tuple"):
        raise PetastormMetadataError(f"Refused copyreg._reconstructor({cls!r}, {base!r}, ...): only allow-listed "
                                     f"classes are reconstructed, on object or tuple")
    if base_name == "builtins.tuple" and isinstance(base_state, tuple):
        return cls, base_state
    if base_state is not None:
        raise PetastormMetadataError(f"Refused copyreg._reconstructor({cls!r}, object, {base_state!r})")
    return cls, ()


def load_prefix(data: bytes, what: str = "pickled Petastorm metadata",
                resolve: Callable[[str, str], Global] = resolve_global) -> Tuple[Any, int]:
    """The value of the pickle at the start of ``data`` (see :func:`safe_loads`) and the offset after it;
    ``resolve`` may word the refusal of a global differently (it must refuse what :func:`resolve_global` does)."""
    try:
        tree, end = read_pickle(data, resolve)
        return _Builder().build(tree), end
    except PetastormMetadataError as e:
        raise PetastormMetadataError(f"Cannot load {what}: {e}") from None
    except Exception as e:  # a maker's constructor refusing a value the checks let through
        raise PetastormMetadataError(f"Cannot load {what}: {type(e).__name__}: {e}") from e


def safe_loads(data: bytes, what: str = "pickled Petastorm metadata") -> Any:
    """Load pickled Petastorm metadata as data: nothing outside the allow-list is imported, nothing is called.

    :param data: the pickle bytes (any protocol, 0 to 5).
    :param what: what the bytes are (e.g. the metadata key), used in error messages.
    :raises PetastormMetadataError: a global outside the allow-list (the message names its ``module.name``), bytes
        that are not a pickle of Petastorm metadata, or a value over the limits of
        :class:`petastorm.etl.pickle_data.PickleLimits` (256 MiB, 1,000,000 objects counting every reference,
        nesting deeper than 64).
    """
    return load_prefix(data, what)[0]


def check_loaded_unischema(schema: Any, what: str) -> None:
    """Raises ``PetastormMetadataError`` unless a loaded ``schema`` is a Unischema (its fields and codecs were
    checked as they were built)."""
    from petastorm.unischema import Unischema

    if not isinstance(schema, Unischema):
        raise PetastormMetadataError(f"Cannot load {what}: it holds a {type(schema).__name__}, expected a Unischema")
