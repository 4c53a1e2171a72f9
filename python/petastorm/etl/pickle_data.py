"""A pickle read as data: the opcodes of protocols 0-5, interpreted without importing, calling or building anything.

:func:`read_pickle` turns pickle bytes into a tree of plain values: ``None``, bools, ints, floats, str, bytes,
lists, tuples, :class:`PickledDict`, :class:`PickledSet`, :class:`Global` (a name the pickle refers to) and
:class:`Call` (a call the pickle asks for — ``REDUCE``, ``NEWOBJ``, ``INST``, ``OBJ`` — with the state ``BUILD``
gives it and the items ``APPEND``/``SETITEM`` add to it). Nothing is called: what a call means is decided by the
caller, from validated values (see :mod:`petastorm.etl.legacy_pickle`).

Limits are checked before anything is allocated: the input size, every length prefix against the bytes left, and,
once read, the size of the value walked as a tree (shared objects counted each time they are referred to, so a
DAG built through the memo cannot make later code run for ever) and its depth (which also refuses cycles).
Persistent ids, the extension registry and out-of-band buffers are refused: metadata never uses them.
"""
from __future__ import annotations

import codecs
import struct
from typing import Any, Callable, Dict, List, Optional, Tuple

from petastorm.errors import PetastormMetadataError

__all__ = ["Call", "Global", "PickledDict", "PickledSet", "PickleLimits", "read_pickle"]


class Global:
    """A global the pickle names (``GLOBAL``, ``STACK_GLOBAL``, ``INST``): a name, never imported."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return self.qualname


class Call:
    """A call the pickle asks for, recorded and never made: ``func(*args, **kwargs)``, then ``BUILD``'s state and
    the items ``APPEND(S)``/``SETITEM(S)`` add to the result (``new`` for ``NEWOBJ``: ``func.__new__(func, *args)``).
    """

    __slots__ = ("func", "args", "kwargs", "new", "state", "list_items", "dict_items")

    def __init__(self, func: Any, args: tuple, kwargs: Optional["PickledDict"] = None, new: bool = False) -> None:
        self.func, self.args, self.kwargs, self.new = func, args, kwargs, new
        self.state: Any = None
        self.list_items: List[Any] = []
        self.dict_items: List[Tuple[Any, Any]] = []

    def __repr__(self) -> str:
        return f"{self.func!r}(...)"


class PickledDict:
    """A dict as (key, value) pairs in pickled order: keys are not hashed until they are validated values."""

    __slots__ = ("items",)

    def __init__(self, items: List[Tuple[Any, Any]]) -> None:
        self.items = items


class PickledSet:
    """A set or frozenset as its elements in pickled order (not hashed, as for :class:`PickledDict`)."""

    __slots__ = ("items", "frozen")

    def __init__(self, items: List[Any], frozen: bool) -> None:
        self.items, self.frozen = items, frozen


class PickleLimits:
    """Bounds on a pickle read as data; legitimate Petastorm metadata is far below each."""

    max_bytes = 256 * 1024 * 1024  #: input size
    max_objects = 1_000_000  #: values in the result walked as a tree (each reference counted)
    max_depth = 64  #: nesting of the result (a cycle nests for ever)


def read_pickle(data: bytes, resolve: Callable[[str, str], Global],
                limits: PickleLimits = PickleLimits()) -> Tuple[Any, int]:
    """The value of the pickle at the start of ``data``, as plain data, and the offset after its ``STOP``.

    :param resolve: turns a named global into a :class:`Global`, or raises (the caller's allow-list): a refused
        name stops reading at once.
    :raises PetastormMetadataError: malformed pickles, refused opcodes and exceeded limits (the message says which).
    """
    if len(data) > limits.max_bytes:
        raise PetastormMetadataError(f"a pickle of {len(data):,} bytes is over the limit of {limits.max_bytes:,}")
    reader = _Reader(bytes(data), resolve)
    try:
        value = reader.run()
    except PetastormMetadataError:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError, struct.error) as e:
        raise PetastormMetadataError(f"malformed pickle at byte {reader.pos}: {type(e).__name__}: {e}") from None
    _check_tree(value, limits)
    return value, reader.pos


def _check_tree(value: Any, limits: PickleLimits) -> None:
    stack, count = [(value, 0)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_objects or depth > limits.max_depth:
            raise PetastormMetadataError(
                f"the pickled value holds more than {limits.max_objects:,} objects (counting every reference) or "
                f"nests deeper than {limits.max_depth}: legitimate metadata is small (a crafted pickle?)")
        stack.extend((child, depth + 1) for child in _children(node))


def _children(node: Any) -> List[Any]:
    if isinstance(node, (list, tuple)):
        return list(node)
    if isinstance(node, PickledDict):
        return [x for pair in node.items for x in pair]
    if isinstance(node, PickledSet):
        return list(node.items)
    if isinstance(node, Call):
        pairs = [x for pair in node.dict_items for x in pair]
        return [node.func, node.args, node.kwargs, node.state, *node.list_items, *pairs]
    return []


class _Reader:
    """The pickle machine: a stack, a stack of marks and a memo, over ``data`` from ``pos``."""

    def __init__(self, data: bytes, resolve: Callable[[str, str], Global]) -> None:
        self.data, self.pos, self.resolve = data, 0, resolve
        self.stack: List[Any] = []
        self.marks: List[List[Any]] = []
        self.memo: Dict[int, Any] = {}
        self.done = False

    def run(self) -> Any:
        while not self.done:
            code = self.read(1)[0]
            op = _OPS.get(code)
            if op is None:
                raise PetastormMetadataError(f"Refused pickle opcode 0x{code:02x} at byte {self.pos - 1}: "
                                             f"{_REFUSED.get(code, 'not an opcode of protocols 0-5')}")
            op(self)
        return self.pop()

    # ------------------------------------------------------------------ input
    def read(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise PetastormMetadataError(f"truncated pickle: {n:,} bytes needed at byte {self.pos}, "
                                         f"{len(self.data) - self.pos:,} left")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise PetastormMetadataError(f"truncated pickle: a line at byte {self.pos} has no end")
        line, self.pos = self.data[self.pos:end], end + 1
        return line

    def uint(self, width: int) -> int:
        return int.from_bytes(self.read(width), "little")

    def sized(self, width: int) -> bytes:
        """The bytes after a ``width``-byte length, refused before allocation when longer than what is left."""
        size = self.uint(width)
        if size > len(self.data) - self.pos:
            raise PetastormMetadataError(f"an opcode at byte {self.pos - width - 1} claims {size:,} bytes, "
                                         f"the pickle has {len(self.data) - self.pos:,} left")
        return self.read(size)

    # ------------------------------------------------------------------ stack
    def push(self, value: Any) -> None:
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise PetastormMetadataError(f"malformed pickle: stack underflow at byte {self.pos}")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise PetastormMetadataError(f"malformed pickle: stack underflow at byte {self.pos}")
        return self.stack[-1]

    def pop_mark(self) -> List[Any]:
        if not self.marks:
            raise PetastormMetadataError(f"malformed pickle: no MARK before byte {self.pos}")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def mark(self) -> None:
        self.marks.append(self.stack)
        self.stack = []

    def typed(self, value: Any, kind: type, opcode: str) -> Any:
        if not isinstance(value, kind):
            raise PetastormMetadataError(f"malformed pickle: {opcode} at byte {self.pos} got a "
                                         f"{type(value).__name__}, expected a {kind.__name__}")
        return value

    # ------------------------------------------------------------------ containers and calls
    def add_list_items(self, items: List[Any]) -> None:
        target = self.top()
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, Call):
            target.list_items.extend(items)
        else:
            raise PetastormMetadataError(f"malformed pickle: APPEND to a {type(target).__name__} at byte {self.pos}")

    def add_dict_items(self, items: List[Any]) -> None:
        if len(items) % 2:
            raise PetastormMetadataError(f"malformed pickle: SETITEMS with an odd item count at byte {self.pos}")
        pairs = list(zip(items[::2], items[1::2]))
        target = self.top()
        if isinstance(target, PickledDict):
            target.items.extend(pairs)
        elif isinstance(target, Call):
            target.dict_items.extend(pairs)
        else:
            raise PetastormMetadataError(f"malformed pickle: SETITEM on a {type(target).__name__} at byte {self.pos}")

    def add_set_items(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if not isinstance(target, PickledSet) or target.frozen:
            raise PetastormMetadataError(f"malformed pickle: ADDITEMS on a {type(target).__name__} at byte {self.pos}")
        target.items.extend(items)

    def dict_from_mark(self) -> None:
        items = self.pop_mark()
        self.push(PickledDict([]))
        self.add_dict_items(items)

    def obj(self) -> None:
        items = self.pop_mark()
        if not items:
            raise PetastormMetadataError(f"malformed pickle: OBJ without a class at byte {self.pos}")
        self.push(Call(self.typed(items[0], Global, "OBJ"), tuple(items[1:])))

    def call(self, new: bool, with_kwargs: bool = False) -> None:
        kwargs = self.typed(self.pop(), PickledDict, "NEWOBJ_EX") if with_kwargs else None
        args = self.typed(self.pop(), tuple, "REDUCE/NEWOBJ")
        self.push(Call(self.typed(self.pop(), Global, "REDUCE/NEWOBJ"), args, kwargs, new))

    def build(self) -> None:
        state = self.pop()
        target = self.top()
        if not isinstance(target, Call) or target.state is not None:
            raise PetastormMetadataError(f"Refused to set the state of {target!r} at byte {self.pos}: only objects "
                                         f"the pickle creates are given a state, once")
        target.state = state

    def stack_global(self) -> None:
        name, module = self.typed(self.pop(), str, "STACK_GLOBAL"), self.typed(self.pop(), str, "STACK_GLOBAL")
        self.push(self.resolve(module, name))

    def text_global(self) -> Global:
        module = self.readline().decode("utf-8")
        return self.resolve(module, self.readline().decode("utf-8"))

    def get(self, index: int) -> None:
        if index not in self.memo:
            raise PetastormMetadataError(f"malformed pickle: memo entry {index} read before it is written")
        self.push(self.memo[index])

    def put(self, index: int) -> None:
        self.memo[index] = self.top()

    def proto(self) -> None:
        version = self.read(1)[0]
        if version > 5:
            raise PetastormMetadataError(f"unsupported pickle protocol {version}")

    def stop(self) -> None:
        self.done = True


def _text_int(line: bytes) -> Any:
    if line in (b"00", b"01"):
        return line == b"01"
    return int(line)


def _quoted(line: bytes) -> str:
    if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
        raise PetastormMetadataError("malformed pickle: a STRING opcode's argument is not quoted")
    return codecs.escape_decode(line[1:-1])[0].decode("latin1")


def _signed(width: int) -> Callable[[_Reader], None]:
    return lambda r: r.push(int.from_bytes(r.read(width), "little", signed=True))


_PERSISTENT = "a persistent id (metadata never holds one)"
_REFUSED = {ord("P"): _PERSISTENT, ord("Q"): _PERSISTENT,
            0x82: "the extension registry", 0x83: "the extension registry", 0x84: "the extension registry",
            0x97: "an out-of-band buffer", 0x98: "an out-of-band buffer"}

_OPS: Dict[int, Callable[[_Reader], None]] = {
    ord("("): _Reader.mark, ord("."): _Reader.stop, ord("0"): lambda r: r.pop() if r.stack else r.pop_mark(),
    ord("1"): _Reader.pop_mark, ord("2"): lambda r: r.push(r.top()), 0x80: _Reader.proto,
    0x95: lambda r: r.uint(8),  # FRAME: a size hint only
    # scalars
    ord("N"): lambda r: r.push(None), 0x88: lambda r: r.push(True), 0x89: lambda r: r.push(False),
    ord("I"): lambda r: r.push(_text_int(r.readline())), ord("J"): _signed(4), ord("K"): lambda r: r.push(r.uint(1)),
    ord("M"): lambda r: r.push(r.uint(2)), ord("L"): lambda r: r.push(int(r.readline().rstrip(b"L"))),
    0x8a: lambda r: r.push(int.from_bytes(r.sized(1), "little", signed=True)),
    0x8b: lambda r: r.push(int.from_bytes(r.sized(4), "little", signed=True)),
    ord("F"): lambda r: r.push(float(r.readline())), ord("G"): lambda r: r.push(struct.unpack(">d", r.read(8))[0]),
    # text and bytes (Python 2 str is read as latin-1 text, as pickle.loads(encoding="latin1") does)
    ord("S"): lambda r: r.push(_quoted(r.readline())), ord("T"): lambda r: r.push(r.sized(4).decode("latin1")),
    ord("U"): lambda r: r.push(r.sized(1).decode("latin1")),
    ord("V"): lambda r: r.push(r.readline().decode("raw_unicode_escape")),
    ord("X"): lambda r: r.push(r.sized(4).decode("utf-8", "surrogatepass")),
    0x8c: lambda r: r.push(r.sized(1).decode("utf-8", "surrogatepass")),
    0x8d: lambda r: r.push(r.sized(8).decode("utf-8", "surrogatepass")),
    ord("B"): lambda r: r.push(r.sized(4)), ord("C"): lambda r: r.push(r.sized(1)),
    0x8e: lambda r: r.push(r.sized(8)), 0x96: lambda r: r.push(bytearray(r.sized(8))),
    # containers
    ord("]"): lambda r: r.push([]), ord("l"): lambda r: r.push(r.pop_mark()),
    ord("a"): lambda r: r.add_list_items([r.pop()]), ord("e"): lambda r: r.add_list_items(r.pop_mark()),
    ord(")"): lambda r: r.push(()), ord("t"): lambda r: r.push(tuple(r.pop_mark())),
    0x85: lambda r: r.push((r.pop(),)), 0x86: lambda r: r.push(tuple(reversed([r.pop(), r.pop()]))),
    0x87: lambda r: r.push(tuple(reversed([r.pop(), r.pop(), r.pop()]))),
    ord("}"): lambda r: r.push(PickledDict([])), ord("d"): _Reader.dict_from_mark,
    ord("s"): lambda r: r.add_dict_items(list(reversed([r.pop(), r.pop()]))),
    ord("u"): lambda r: r.add_dict_items(r.pop_mark()),
    0x8f: lambda r: r.push(PickledSet([], frozen=False)), 0x90: _Reader.add_set_items,
    0x91: lambda r: r.push(PickledSet(r.pop_mark(), frozen=True)),
    # globals, calls and state
    ord("c"): lambda r: r.push(r.text_global()), 0x93: _Reader.stack_global,
    ord("R"): lambda r: r.call(new=False), 0x81: lambda r: r.call(new=True),
    0x92: lambda r: r.call(new=True, with_kwargs=True),
    ord("i"): lambda r: r.push(Call(r.text_global(), tuple(r.pop_mark()))),
    ord("o"): lambda r: r.obj(), ord("b"): _Reader.build,
    # memo
    ord("p"): lambda r: r.put(int(r.readline())), ord("q"): lambda r: r.put(r.uint(1)),
    ord("r"): lambda r: r.put(r.uint(4)), 0x94: lambda r: r.put(len(r.memo)),
    ord("g"): lambda r: r.get(int(r.readline())), ord("h"): lambda r: r.get(r.uint(1)),
    ord("j"): lambda r: r.get(r.uint(4)),
}
