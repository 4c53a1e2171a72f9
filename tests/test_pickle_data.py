"""read_pickle: every opcode family read as data, nothing called; limits refused before anything is allocated."""
from __future__ import annotations

import decimal
import pickle
import resource
import struct
import time
from collections import OrderedDict, defaultdict

import numpy as np
import pytest

from petastorm.errors import PetastormMetadataError
from petastorm.etl.legacy_pickle import resolve_global, safe_loads
from petastorm.etl.pickle_data import Call, Global, PickledDict, PickleLimits, read_pickle

PLAIN_VALUES = [
    None, True, False, 0, 1, -1, 255, 256, 65535, 65536, -2 ** 31, 2 ** 31, 2 ** 64 + 3, -(2 ** 200), 1.5, -0.0,
    "", "text", "ünïcødé \U0001f600", "a\nb\\c'\"", b"", b"\x00\xff" * 300, bytearray(b"xyz"),
    [], [1, [2, [3]]], (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), {}, {"a": 1, 2: "b", (1, "t"): None},
    {1, "2", (3,)}, frozenset({1, 2}), OrderedDict([("z", 1), ("a", 2)]), defaultdict(set, {1: {2, 3}}),
    decimal.Decimal("3.14159"), "x" * 70000, list(range(3000)),
]


@pytest.mark.parametrize("protocol", range(6))
def test_plain_values_read_as_pickle_loads_reads_them(protocol):
    for value in PLAIN_VALUES:
        if isinstance(value, bytearray) and protocol < 5:
            continue  # bytearray before protocol 5 is a call of builtins.bytearray, not metadata
        data = pickle.dumps(value, protocol=protocol)
        loaded = safe_loads(data)
        assert loaded == pickle.loads(data) and type(loaded) is type(value), (protocol, value)


def test_shared_objects_stay_shared_and_order_is_kept():
    inner = [1, 2]
    loaded = safe_loads(pickle.dumps({"b": inner, "a": inner, "c": (inner,)}, protocol=4))
    assert list(loaded) == ["b", "a", "c"] and loaded["b"] is loaded["a"] is loaded["c"][0]


def test_the_tree_is_data_and_nothing_is_called():
    data = pickle.dumps(OrderedDict(a=np.int32(3)), protocol=2)
    tree, end = read_pickle(data, resolve_global)
    assert end == len(data) and isinstance(tree, Call) and tree.func.qualname == "collections.OrderedDict"
    assert tree.args == () and tree.dict_items[0][0] == "a" and isinstance(tree.dict_items[0][1], Call)
    assert tree.dict_items[0][1].func.qualname == "numpy._core.multiarray.scalar"


def test_the_end_offset_allows_several_pickles_in_a_row():
    data = pickle.dumps([1], protocol=4) + pickle.dumps("next", protocol=0)
    first, end = read_pickle(data, resolve_global)
    assert first == [1] and read_pickle(data[end:], resolve_global)[0] == "next"


def test_globals_are_resolved_as_named_and_refused_at_once():
    seen = []

    def resolve(module, name):
        seen.append((module, name))
        if module == "os":
            raise PetastormMetadataError(f"Refused {module}.{name}")
        return Global(module, name)

    with pytest.raises(PetastormMetadataError, match="Refused os.system"):
        read_pickle(b"cos\nsystem\n(Vtrue\ntR.", resolve)
    assert seen == [("os", "system")]


def _refused(data, match, limits=PickleLimits()):
    with pytest.raises(PetastormMetadataError, match=match):
        read_pickle(data, lambda m, n: Global(m, n), limits)


@pytest.mark.parametrize("data, match", [
    (b"\x80\x04B\xff\xff\xff\x7fabc.", "claims 2,147,483,647 bytes, the pickle has 4 left"),
    (b"\x80\x05\x96\x00\x00\x00\x00\x02\x00\x00\x00.", "claims 8,589,934,592 bytes"),
    (b"\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00.", "claims"),
    (b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff.", "claims"),
    (b"\x80\x04\x8b\xff\xff\xff\x7f.", "claims"),
    (b"\x80\x04X\x05\x00\x00\x00ab", "claims 5 bytes, the pickle has 2 left"),
    (b"\x80\x04]", "truncated"),
    (b"Vno end of line", "truncated"),
    (b"\x80\x04s.", "stack underflow"),
    (b"\x80\x04]e.", "no MARK"),
    (b"\x80\x04h\x07.", "memo entry 7 read before it is written"),
    (b"\x80\x04(K\x01u.", "no MARK|odd item count|stack underflow"),
    (b"\x80\x04}(K\x01u.", "odd item count"),
    (b"\x80\x04K\x01K\x02K\x03s.", "SETITEM on a int"),
    (b"\x80\x04K\x01K\x02a.", "APPEND to a int"),
    (b"\x80\x04\x91(K\x01\x90.", "ADDITEMS on a PickledSet|no MARK"),
    (b"\x80\x04K\x01)R.", "got a int, expected a Global"),
    (b"\x80\x04K\x01K\x02b.", "Refused to set the state of 1"),
    (b"\x80\x04Vx\nQ.", "persistent id"),
    (b"\x80\x04Px\n.", "persistent id"),
    (b"\x80\x04\x82\x01.", "extension registry"),
    (b"\x80\x05\x97.", "out-of-band buffer"),
    (b"\x80\x04\xff.", "opcode 0xff"),
    (b"\x80\x09N.", "protocol 9"),
    (b"Sunquoted\n.", "not quoted"),
    (b"I12x\n.", "malformed pickle at byte"),
])
def test_malformed_and_refused_opcodes(data, match):
    _refused(data, match)


def test_the_input_size_is_bounded():
    limits = PickleLimits()
    limits.max_bytes = 100
    _refused(pickle.dumps("x" * 200, protocol=4), "over the limit of 100", limits)


def test_a_cycle_through_the_memo_is_refused():
    cyclic = []
    cyclic.append(cyclic)
    _refused(pickle.dumps(cyclic, protocol=4), "nests deeper than 64")


def test_deep_nesting_is_refused():
    deep = []
    for _ in range(100):
        deep = [deep]
    _refused(pickle.dumps(deep, protocol=4), "nests deeper than 64")


def test_a_reference_dag_is_refused_fast():
    """Each level refers twice to the level below: 2**40 references in a 400-byte pickle."""
    data = b"\x80\x04]\x94"  # memo 0: []
    for level in range(40):
        data += b"h" + bytes([level]) + b"h" + bytes([level]) + b"\x86\x94"  # (below, below), memoized
    data += b"."
    started = time.monotonic()
    _refused(data, "more than 1,000,000 objects")
    assert time.monotonic() - started < 5


def test_a_dag_of_dict_keys_is_refused_before_hashing():
    data = b"\x80\x04)\x94"
    for level in range(60):
        data += b"h" + bytes([level]) + b"h" + bytes([level]) + b"\x86\x94"
    data += b"}h\x3cK\x01s."  # {level-60 tuple: 1}: hashing it would take 2**60 steps
    started = time.monotonic()
    with pytest.raises(PetastormMetadataError, match="more than 1,000,000 objects"):
        safe_loads(data)
    assert time.monotonic() - started < 5


def test_lists_as_dict_keys_or_set_elements_are_refused():
    with pytest.raises(PetastormMetadataError, match="dict key or set element of type list"):
        safe_loads(b"\x80\x04}]K\x01s.")
    with pytest.raises(PetastormMetadataError, match="dict key or set element of type list"):
        safe_loads(b"\x80\x04\x8f(]\x90.")


def test_a_huge_claim_allocates_nothing():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for opcode in (b"\x96", b"\x8e", b"\x8d"):
        with pytest.raises(PetastormMetadataError, match="claims"):
            safe_loads(b"\x80\x05" + opcode + struct.pack("<Q", 9 * 2 ** 30) + b".")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_the_builder_refuses_calls_it_has_no_maker_for():
    data = pickle.dumps(np.float64, protocol=4)[:-1] + b")R."  # numpy.float64() called
    with pytest.raises(PetastormMetadataError, match="Refused a call of numpy.float64"):
        safe_loads(data)


@pytest.mark.parametrize("state, match", [
    ((3, "<", None, None, None, 800, 4, 0), "only plain dtypes"),  # an item size of 800 for an int64
    ((3, "<", ("i8", (10 ** 9,)), None, None, -1, -1, 0), "only plain dtypes"),  # a sub-array
    ((3, "<", None, ("a",), {"a": ("i8", 10 ** 12)}, -1, -1, 16), "only plain dtypes"),  # a field past the end
    ((3, "!", None, None, None, -1, -1, 0), "only plain dtypes"),
    ((4, "<", None, None, None, -1, -1, 0, (None, (b"xs", 1, 1, 1))), "only plain dtypes"),
])
def test_crafted_dtype_states_are_refused_without_numpy_seeing_them(state, match):
    crafted = b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00i8\x89\x88\x87R" + pickle.dumps(state, protocol=2)[2:-1] + b"b."
    with pytest.raises(PetastormMetadataError, match=match):
        safe_loads(crafted)


@pytest.mark.parametrize("dtype", ["<i8", ">f4", "|b1", "<U3", "|S5", "<M8[ns]", ">m8[s]", "<c16", "|V4"])
def test_plain_dtypes_are_rebuilt_from_their_descr(dtype):
    for protocol in (0, 2, 4):
        assert safe_loads(pickle.dumps(np.dtype(dtype), protocol=protocol)) == np.dtype(dtype)


def test_dict_state_forms_are_kept_apart_from_dicts():
    assert isinstance(read_pickle(pickle.dumps({}, protocol=4), resolve_global)[0], PickledDict)
