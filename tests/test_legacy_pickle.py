"""safe_loads: legacy metadata pickles load; crafted pickles are refused without running anything."""
from __future__ import annotations

import decimal
import io
import pickle
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyspark.serializers
import pytest
from pyspark.sql import types as T

from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
from petastorm.errors import PetastormMetadataError
from petastorm.etl.legacy_pickle import safe_loads
from petastorm.unischema import Unischema, UnischemaField

DATA = Path(__file__).parent / "data" / "petastorm-0.13.1"
UNISCHEMA_KEY = b"dataset-toolkit.unischema.v1"
INDEX_KEY = b"dataset-toolkit.rowgroups_index.v1"


def fixture_metadata(name):
    return pq.read_schema(DATA / name / "_common_metadata").metadata


# ------------------------------------------------------------------ legitimate pickles

def test_fixture_schemas_load():
    hello = safe_loads(fixture_metadata("hello_world")[UNISCHEMA_KEY])
    assert isinstance(hello, Unischema) and hello._name == "HelloWorldSchema"
    assert list(hello.fields.values()) == [
        UnischemaField("id", np.int32, (), None, False),
        UnischemaField("image1", np.uint8, (128, 256, 3), None, False),
        UnischemaField("array_4d", np.uint8, (None, 128, 30, None), None, False)]
    assert [f.codec for f in hello.fields.values()] == [
        ScalarCodec(T.IntegerType()), CompressedImageCodec("png"), NdarrayCodec()]
    codecs_schema = safe_loads(fixture_metadata("codecs")[UNISCHEMA_KEY])
    assert codecs_schema.jpeg.codec == CompressedImageCodec("jpeg", 90)
    assert codecs_schema.name.codec.spark_dtype().simpleString() == "string"
    test_schema = safe_loads(fixture_metadata("test_schema")[UNISCHEMA_KEY])
    assert len(test_schema.fields) == 17
    assert test_schema.decimal == UnischemaField("decimal", decimal.Decimal, (), None, False)
    assert test_schema.decimal.codec.spark_dtype() == T.DecimalType(10, 9)
    assert test_schema.matrix_string.numpy_dtype is np.bytes_ and test_schema.sensor_name.numpy_dtype is np.str_


@pytest.mark.parametrize("dataset", ["codecs", "test_schema"])
def test_fixture_row_group_indexes_load(dataset):
    pytest.importorskip("petastorm.etl.rowgroup_indexers")
    indexes = safe_loads(fixture_metadata(dataset)[INDEX_KEY], what="row-group index")
    assert indexes and all(type(i).__name__ == "SingleFieldIndexer" for i in indexes.values())
    if dataset == "codecs":
        assert indexes["label_index"]._index_data[0] == {0, 1, 2}


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_own_pickles_load_with_every_protocol(protocol):
    schema = Unischema("S", [UnischemaField("a", np.str_, (None,), NdarrayCodec(), True),
                             UnischemaField("b", decimal.Decimal, (), ScalarCodec(T.DecimalType(5, 2)), False)])
    data = pickle.dumps(schema, protocol=protocol)
    if protocol < 2:
        assert b"copy_reg\n_reconstructor" in data or b"copy_reg\n" in data
    loaded = safe_loads(data)
    assert loaded == schema and loaded.b.codec == ScalarCodec(T.DecimalType(5, 2))


def restore_style_pickle(schema, protocol, monkeypatch):
    """A pickle as Petastorm 0.4-0.7 wrote it: every field through pyspark.serializers._restore."""

    def _restore(name, fields, values):
        raise AssertionError("only used as a reference while pickling")

    _restore.__module__, _restore.__qualname__ = "pyspark.serializers", "_restore"
    monkeypatch.setattr(pyspark.serializers, "_restore", _restore, raising=False)

    class OldPickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, UnischemaField):
                return _restore, ("UnischemaField", obj._fields, tuple(obj))
            return NotImplemented

    buf = io.BytesIO()
    OldPickler(buf, protocol=protocol).dump(schema)
    return buf.getvalue()


@pytest.mark.parametrize("protocol", [0, 2, 3])
def test_restore_form_loads(protocol, monkeypatch):
    schema = Unischema("Old", [UnischemaField("id", np.int64, (), ScalarCodec(T.LongType()), False),
                               UnischemaField("img", np.uint8, (4, 4, 3), CompressedImageCodec("png"), True)])
    data = restore_style_pickle(schema, protocol, monkeypatch)
    assert b"_restore" in data
    loaded = safe_loads(data)
    assert loaded == schema and loaded.img.codec == CompressedImageCodec("png")
    assert isinstance(loaded.img, UnischemaField) and loaded.id is loaded.fields["id"]


# Written by hand the way Python 2 wrote Petastorm 0.4-0.7 metadata with protocol 0: copy_reg._reconstructor,
# __builtin__ names, str ('S') strings, the pre-rename module prefixes, numpy.unicode_ and pyspark's _restore.
PY2_PICKLE = (
    b"ccopy_reg\n_reconstructor\np0\n(cav.experimental.deepdrive.dataset_toolkit.unischema\nUnischema\np1\n"
    b"c__builtin__\nobject\np2\nNtp3\nRp4\n(dp5\nS'_name'\np6\nS'OldSchema'\np7\nsS'_fields'\np8\n"
    b"ccollections\nOrderedDict\np9\n((lp10\n(lp11\nS'id'\np12\nacpyspark.serializers\n_restore\np13\n"
    b"(S'UnischemaField'\np14\n(S'name'\nS'numpy_dtype'\nS'shape'\nS'codec'\nS'nullable'\ntp15\n"
    b"(g12\ncnumpy\nint64\np16\n(tNI00\ntp17\ntp18\nRp19\naa(lp20\nS'text'\np21\nag13\n(g14\ng15\n"
    b"(g21\ncnumpy\nunicode_\np22\n(I1\ntp23\nccopy_reg\n_reconstructor\np24\n"
    b"(cav.ml.dataset_toolkit.codecs\nNdarrayCodec\np25\ng2\nNtp26\nRp27\nI01\ntp28\ntp29\nRp30\naatp31\n"
    b"Rp32\nsS'id'\np33\ng19\nsS'text'\np34\ng30\nsb.")


def test_python2_protocol0_pickle_with_old_names_loads():
    schema = safe_loads(PY2_PICKLE)
    assert list(schema.__dict__) == ["_name", "_fields", "id", "text"]
    assert list(schema.fields.values()) == [UnischemaField("id", np.int64, (), None, False),
                                            UnischemaField("text", np.str_, (1,), None, True)]
    assert schema.text.codec == NdarrayCodec() and schema.text is schema.fields["text"]


def test_protocol0_reconstructor_of_namedtuple_field():
    field = UnischemaField("x", np.bytes_, (2,), NdarrayCodec(), False)
    data = pickle.dumps(field, protocol=0)
    assert b"copy_reg\n_reconstructor" in data and b"__builtin__\ntuple" in data
    data = data.replace(b"cnumpy\nbytes_\n", b"cnumpy\nstring_\n")
    assert safe_loads(data) == field


def test_numpy_scalars_in_pickles():
    values = {np.int32(3), np.str_("a"), np.float64(1.5), np.bool_(True), np.uint64(2 ** 63)}
    for protocol in (0, 2, 4):
        assert safe_loads(pickle.dumps(values, protocol=protocol)) == values
    legacy = pickle.dumps(np.int64(7), protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert safe_loads(legacy) == 7


# ------------------------------------------------------------------ crafted pickles: refused, nothing runs

def op_global(module, name, protocol):
    if protocol == 0:
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    return op_str(module, protocol) + op_str(name, protocol) + b"\x93"


def op_str(text, protocol):
    if protocol == 0:
        return b"V" + text.encode("raw_unicode_escape") + b"\n"
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_bytes(data):
    return b"B" + struct.pack("<I", len(data)) + data


def call(func, *args):
    return func + b"(" + b"".join(args) + b"tR"


def finish(body, protocol):
    return (b"" if protocol == 0 else b"\x80" + bytes([protocol])) + body + b"."


def payloads(marker: Path):
    """(id, pickle bytes, text the refusal must name, runs under plain pickle.loads)."""
    m = str(marker)
    touch = f"touch {m}"
    py_touch = f"open({m!r}, 'w').close()"
    os_system_pickle = finish(call(op_global("os", "system", 0), op_str(touch, 0)), 0)
    evil_file = marker.with_name("evil.pickle")  # written by the tests: holds os_system_pickle
    g = op_global
    return [
        ("os.system-p0", os_system_pickle, "os.system", True),
        ("posix.system-p4", finish(call(g("posix", "system", 4), op_str(touch, 4)), 4), "posix.system", True),
        ("builtins.eval-p2", finish(call(g("builtins", "eval", 2), op_str(py_touch, 2)), 2), "builtins.eval", True),
        ("__builtin__.exec-p0", finish(call(g("__builtin__", "exec", 0), op_str(py_touch, 0)), 0),
         "__builtin__.exec", True),
        ("getattr-import-p4", finish(call(call(g("builtins", "getattr", 4),
                                               call(g("builtins", "__import__", 4), op_str("os", 4)),
                                               op_str("system", 4)), op_str(touch, 4)), 4), "builtins.getattr", True),
        ("__import__-p2", finish(call(g("builtins", "__import__", 2), op_str("os", 2)), 2), "builtins.__import__",
         False),
        ("subprocess.check_output-p4", finish(call(g("subprocess", "check_output", 4),
                                                   b"]" + b"(" + op_str("touch", 4) + op_str(m, 4) + b"e"), 4),
         "subprocess.check_output", True),
        ("subprocess.Popen-p0", finish(call(g("subprocess", "Popen", 0), op_str(touch, 0)), 0), "subprocess.Popen",
         False),
        ("numpy.testing.runstring-p4", finish(call(g("numpy.testing._private.utils", "runstring", 4),
                                                   op_str(py_touch, 4), b"}"), 4),
         "numpy.testing._private.utils.runstring", True),
        ("numpy.load-p2", finish(call(g("numpy", "load", 2), op_str(str(evil_file), 2), b"N", b"\x88"), 2),
         "numpy.load", True),
        ("numpy.lib.npyio.load-p0", finish(call(g("numpy.lib.npyio", "load", 0), op_str(str(evil_file), 0)), 0),
         "numpy.lib.npyio.load", False),
        ("numpy.ctypeslib-p4", finish(call(g("numpy.ctypeslib", "load_library", 4), op_str("libc.so.6", 4),
                                           op_str("/lib", 4)), 4), "numpy.ctypeslib.load_library", False),
        ("numpy._reconstruct-p2", finish(call(g("numpy.core.multiarray", "_reconstruct", 2),
                                              g("numpy", "ndarray", 2), b")", op_bytes(b"b")), 2),
         "numpy.core.multiarray._reconstruct", False),
        ("pyspark.cloudpickle.loads-p4", finish(call(g("pyspark.cloudpickle", "loads", 4),
                                                     op_bytes(os_system_pickle)), 4), "pyspark.cloudpickle.loads", True),
        ("pyspark.serializers.pickle.loads-p4", finish(call(g("pyspark.serializers", "pickle.loads", 4),
                                                            op_bytes(os_system_pickle)), 4),
         "pyspark.serializers.pickle.loads", True),
        ("allowed-module-other-name-p4", finish(call(g("petastorm.codecs", "os.system", 4), op_str(touch, 4)), 4),
         "petastorm.codecs.os.system", True),
        ("allowed-module-other-name-p0", finish(call(g("collections", "namedtuple", 0), op_str("X", 0),
                                                     op_str("a", 0)), 0), "collections.namedtuple", False),
        ("reconstructor-os.system-base-p0", finish(call(g("copy_reg", "_reconstructor", 0),
                                                        g("petastorm.unischema", "Unischema", 0),
                                                        g("os", "system", 0), op_str(touch, 0)), 0),
         "os.system", False),
        ("reconstructor-posix.system-base-p4", finish(call(g("copyreg", "_reconstructor", 4),
                                                           g("petastorm.unischema", "Unischema", 4),
                                                           g("posix", "system", 4), op_str(touch, 4)), 4),
         "posix.system", False),
        ("inst-opcode-p0", b"(" + op_str(touch, 0) + b"ios\nsystem\n.", "os.system", True),
    ]


PAYLOAD_NAMES = [p[0] for p in payloads(Path("marker"))]
RUNNABLE_NAMES = [p[0] for p in payloads(Path("marker")) if p[3]]


def payload(tmp_path, name):
    marker = tmp_path / "marker"
    (tmp_path / "evil.pickle").write_bytes(finish(call(op_global("os", "system", 0), op_str(f"touch {marker}", 0)), 0))
    return {p[0]: p[1:] for p in payloads(marker)}[name]


def test_corpus_size():
    assert len(PAYLOAD_NAMES) == len(set(PAYLOAD_NAMES)) >= 12


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, name):
    data, refused, _ = payload(tmp_path, name)
    with pytest.raises(PetastormMetadataError, match="Refused") as excinfo:
        safe_loads(data, what=f"payload {name}")
    assert f"Refused to unpickle {refused}:" in str(excinfo.value)
    assert f"payload {name}" in str(excinfo.value)
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("name", RUNNABLE_NAMES)
def test_crafted_pickles_really_run_code_without_the_allow_list(tmp_path, name):
    """Control: these payloads do run their command under plain pickle.loads."""
    data, _, _ = payload(tmp_path, name)
    pickle.loads(data)
    assert (tmp_path / "marker").exists()


def test_reconstructor_refuses_non_allowed_combinations():
    data = finish(call(op_global("copyreg", "_reconstructor", 4), op_global("petastorm.unischema", "Unischema", 4),
                       op_global("pyspark.serializers", "_restore", 4), b"N"), 4)
    with pytest.raises(PetastormMetadataError, match=r"Refused copyreg._reconstructor"):
        safe_loads(data)


def test_restore_refuses_other_namedtuples():
    data = finish(call(op_global("pyspark.serializers", "_restore", 2), op_str("Evil", 2),
                       b"(" + op_str("a", 2) + b"t", b"(" + op_str("x", 2) + b"t"), 2)
    with pytest.raises(PetastormMetadataError, match=r"Refused pyspark.serializers._restore of namedtuple 'Evil'"):
        safe_loads(data)


def test_numpy_scalar_refuses_object_dtype():
    object_dtype = call(op_global("numpy", "dtype", 2), op_str("O", 2), b"\x89\x88")
    data = finish(call(op_global("numpy.core.multiarray", "scalar", 2), object_dtype, op_str("x", 2)), 2)
    with pytest.raises(PetastormMetadataError, match="Refused numpy.dtype from a pickle: dtype 'O'"):
        safe_loads(data)


def test_build_cannot_patch_classes():
    original = NdarrayCodec.decode
    data = finish(op_global("petastorm.codecs", "NdarrayCodec", 4) + b"N}" + op_str("decode", 4)
                  + op_global("builtins", "set", 4) + b"s\x86b", 4)
    with pytest.raises(PetastormMetadataError, match="Refused to set the state of petastorm.codecs.NdarrayCodec"):
        safe_loads(data)
    assert NdarrayCodec.decode is original


def test_bytes_via_codecs_encode_only_latin1():
    assert safe_loads(pickle.dumps(b"\x00\xff", protocol=2)) == b"\x00\xff"
    data = finish(call(op_global("_codecs", "encode", 2), op_str("x", 2), op_str("zlib_codec", 2)), 2)
    with pytest.raises(PetastormMetadataError, match="Refused _codecs.encode with encoding 'zlib_codec'"):
        safe_loads(data)


def test_persistent_ids_and_garbage_are_refused():
    with pytest.raises(PetastormMetadataError, match="persistent id"):
        safe_loads(b"\x80\x04" + op_str("x", 4) + b"Q.")
    with pytest.raises(PetastormMetadataError, match="Cannot load dataset-toolkit.unischema.v1: "):
        safe_loads(b"not a pickle", what="dataset-toolkit.unischema.v1")
    with pytest.raises(PetastormMetadataError, match="Cannot load"):
        safe_loads(pickle.dumps(OrderedDict(a=1), protocol=4)[:-5])


def test_reconstructor_rebuilds_allowed_classes_only():
    data = pickle.dumps(CompressedImageCodec("jpeg", 70), protocol=0)
    assert b"copy_reg\n_reconstructor" in data
    assert safe_loads(data) == CompressedImageCodec("jpeg", 70)
