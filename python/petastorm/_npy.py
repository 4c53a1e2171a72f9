"""Reading NPY headers without ``ast``, safely from many threads at once.

numpy's header reader evaluates the header with ``ast.literal_eval``, and CPython 3.11 keeps the AST constructor's
recursion depth per interpreter, not per thread: reader threads parsing headers at the same moment then fail at
random with ``SystemError: AST constructor recursion depth mismatch`` (python/cpython#106905). The headers numpy
and petastorm's Spark writer produce are parsed here with a regular expression; any other header goes to numpy's
reader, one thread at a time.
"""
from __future__ import annotations

import io
import re
import threading
import zipfile
from typing import Callable, Optional, Union

import numpy as np
from numpy.lib import format as npy_format

_MAGIC = b"\x93NUMPY"
_HEADER = re.compile(r"\{\s*'descr':\s*'([^']+)',\s*'fortran_order':\s*(True|False),\s*"
                     r"'shape':\s*\(\s*((?:\d+\s*,\s*)*\d*)\s*\),?\s*\}\s*$")
_numpy_reader = threading.Lock()


def read_npy_header(cell: Union[bytes, bytearray, memoryview]) -> tuple[np.dtype, tuple, bool, int]:
    """``(dtype, shape, fortran_order, data offset)`` of NPY bytes; ValueError when they are not NPY."""
    view = memoryview(cell)
    if len(view) < 10 or bytes(view[:6]) != _MAGIC:
        raise ValueError("the bytes do not start with the NPY magic string")
    major, minor = view[6], view[7]
    if major == 1:
        start, length = 10, int.from_bytes(view[8:10], "little")
    elif major in (2, 3) and len(view) >= 12:
        start, length = 12, int.from_bytes(view[8:12], "little")
    else:
        raise ValueError(f"unsupported NPY version {major}.{minor}")
    end = start + length
    if len(view) < end:
        raise ValueError(f"the NPY header needs {end} bytes, there are {len(view)}")
    header = bytes(view[start:end]).decode("utf8" if major == 3 else "latin1")
    match = _HEADER.match(header)
    if match is None:
        return _read_with_numpy(bytes(view[:end]), major) + (end,)
    descr, fortran, dims = match.groups()
    try:
        dtype = np.dtype(descr)
    except Exception as e:  # TypeError, or SyntaxError from numpy's parser of comma-separated descrs
        raise ValueError(f"the NPY header names an unknown dtype {descr!r}") from e
    return dtype, tuple(int(d) for d in dims.split(",") if d.strip()), fortran == "True", end


def _read_with_numpy(head: bytes, major: int) -> tuple[np.dtype, tuple, bool]:
    fp = io.BytesIO(head)
    with _numpy_reader:
        try:
            npy_format.read_magic(fp)
            if major == 1:
                shape, fortran, dtype = npy_format.read_array_header_1_0(fp)
            else:
                shape, fortran, dtype = npy_format.read_array_header_2_0(fp)
        except ValueError:
            raise
        except Exception as e:  # numpy's header parser tokenizes the header: TokenError, SyntaxError, ...
            raise ValueError(f"the NPY header cannot be parsed ({type(e).__name__}: {e})") from e
    return dtype, tuple(shape), fortran


def cell_header(cell: Union[bytes, memoryview], what: str) -> tuple[np.dtype, tuple, bool, int]:
    """``read_npy_header`` for one stored cell; object arrays are refused. ValueError messages start with ``what``
    (e.g. the field)."""
    try:
        dtype, shape, fortran, offset = read_npy_header(cell)
    except (ValueError, EOFError) as e:
        raise ValueError(f"{what}: cell is not a valid NPY array ({e})") from e
    if dtype.hasobject:
        raise ValueError(f"{what}: NPY cell holds Python objects (dtype {dtype}), which are never loaded")
    return dtype, shape, fortran, offset


def load_npy(cell: Union[bytes, memoryview], what: str,
             check: Optional[Callable[[np.dtype, tuple], None]] = None) -> np.ndarray:
    """The array in one NPY cell (a copy); ValueError messages start with ``what``. ``check(dtype, shape)`` runs
    on the parsed header before anything is allocated."""
    dtype, shape, fortran, offset = cell_header(cell, what)
    if check is not None:
        check(dtype, shape)
    count = int(np.prod(shape, dtype=np.int64))
    if len(cell) - offset < count * dtype.itemsize:
        raise ValueError(f"{what}: truncated NPY cell: shape {shape} of {dtype} needs {count * dtype.itemsize} "
                         f"data bytes, the cell has {len(cell) - offset}")
    array = np.frombuffer(cell, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C").copy(order="K")


def load_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (``numpy.savez``), without pickles."""
    with zipfile.ZipFile(path) as archive:
        return {name[:-len(".npy")]: load_npy(archive.read(name), f"{path}: {name}")
                for name in archive.namelist() if name.endswith(".npy")}
