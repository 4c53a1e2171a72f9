"""How the local-disk cache stores a value: a ``pyarrow.Table`` / ``RecordBatch`` as an Arrow IPC file, a ``dict``
of numpy arrays as an uncompressed ``.npz`` (object columns split into typed parts listed in a manifest); nothing
is pickled. Each file records the key it was written for, and reading checks it."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from petastorm._npy import load_npz

__all__ = ["write_arrow", "read_arrow", "write_npz", "read_npz", "serializer_for", "encode_object_column"]

_KEY_FIELD = "__petastorm_cache_key__"
_KIND_FIELD = b"__petastorm_cache_kind__"


def write_arrow(path: str, value: Any, key: str) -> None:
    table = pa.Table.from_batches([value]) if isinstance(value, pa.RecordBatch) else value
    metadata = dict(table.schema.metadata or {})
    metadata[_KEY_FIELD.encode()] = key.encode("utf-8")
    metadata[_KIND_FIELD] = b"batch" if isinstance(value, pa.RecordBatch) else b"table"
    table = table.replace_schema_metadata(metadata)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_arrow(path: str, key: str) -> Any:
    with pa.memory_map(path, "r") as source:
        table = pa.ipc.open_file(source).read_all()
    metadata = dict(table.schema.metadata or {})
    if metadata.pop(_KEY_FIELD.encode(), b"").decode("utf-8") != key:
        raise KeyError(key)
    kind = metadata.pop(_KIND_FIELD, b"table")
    table = table.replace_schema_metadata(metadata or None)
    if kind == b"batch":
        return table.combine_chunks().to_batches()[0] if table.num_rows else \
            pa.RecordBatch.from_pylist([], schema=table.schema)
    return table


_MANIFEST_FIELD = "__petastorm_cache_manifest__"


def encode_object_column(values: np.ndarray) -> dict | None:
    """Arrays that hold a 1-D object column without pickle, or None when its elements are not all of one
    supported kind: ``str``, ``bytes`` or numpy arrays of one non-object dtype, each possibly ``None``."""
    if values.ndim != 1:
        return None
    present = [v for v in values if v is not None]
    missing = np.array([v is None for v in values], dtype=bool)
    if not present or all(isinstance(v, str) for v in present):
        kind = "str"
        blobs = [v.encode("utf-8") if v is not None else b"" for v in values]
    elif all(isinstance(v, bytes) for v in present):
        kind = "bytes"
        blobs = [v if v is not None else b"" for v in values]
    elif all(isinstance(v, np.ndarray) for v in present):
        dtypes = {v.dtype for v in present}
        ndims = {v.ndim for v in present}
        if len(dtypes) != 1 or len(ndims) != 1 or next(iter(dtypes)).hasobject:
            return None
        dtype, ndim = next(iter(dtypes)), next(iter(ndims))
        shapes = np.array([v.shape if v is not None else (0,) * ndim for v in values], dtype=np.int64)
        flat = [np.ascontiguousarray(v).reshape(-1) for v in present]
        data = np.concatenate(flat) if flat else np.empty(0, dtype)
        return {"kind": np.array("ndarray"), "missing": missing, "shapes": shapes.reshape(len(values), ndim),
                "data": data}
    else:
        return None
    lengths = np.array([len(b) for b in blobs], dtype=np.int64)
    numpy_scalar = np.array([isinstance(v, np.generic) for v in values], dtype=bool)  # np.str_ / np.bytes_
    return {"kind": np.array(kind), "missing": missing, "lengths": lengths, "numpy_scalar": numpy_scalar,
            "data": np.frombuffer(b"".join(blobs), dtype=np.uint8)}


def _decode_object_column(parts: dict) -> np.ndarray:
    kind = str(parts["kind"])
    missing = parts["missing"]
    out = np.empty(len(missing), dtype=object)
    data = parts["data"]
    if kind == "ndarray":
        shapes = parts["shapes"]
        offset = 0
        for i, shape in enumerate(shapes):
            if missing[i]:
                out[i] = None
                continue
            size = int(np.prod(shape)) if len(shape) else 1
            out[i] = data[offset: offset + size].reshape(tuple(int(d) for d in shape))
            offset += size
        return out
    raw = data.tobytes()
    ends = np.cumsum(parts["lengths"])
    numpy_scalar = parts["numpy_scalar"]
    text, scalar = (str, np.str_) if kind == "str" else (bytes, np.bytes_)
    start = 0
    for i, end in enumerate(ends):
        blob = raw[start: int(end)]
        start = int(end)
        if missing[i]:
            out[i] = None
        else:
            item = blob.decode("utf-8") if kind == "str" else blob
            out[i] = scalar(item) if numpy_scalar[i] else text(item)
    return out


def _npz_arrays(value: dict) -> dict | None:
    """The arrays an npz entry holds for ``value`` (with a manifest of names and encodings), or None."""
    arrays: dict = {}
    manifest = []
    for index, (name, array) in enumerate(value.items()):
        if not isinstance(name, str) or not isinstance(array, np.ndarray):
            return None
        if not array.dtype.hasobject:
            arrays[f"c{index}"] = array
            manifest.append([name, "plain"])
            continue
        parts = encode_object_column(array)
        if parts is None:
            return None
        for part, data in parts.items():
            arrays[f"c{index}_{part}"] = data
        manifest.append([name, "object"])
    arrays[_MANIFEST_FIELD] = np.array(json.dumps(manifest))
    return arrays


def write_npz(path: str, arrays: dict, key: str) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{_KEY_FIELD: np.array(key)}, **arrays)


def read_npz(path: str, key: str) -> dict:
    npz = load_npz(path)  # not np.load: its header parsing is not thread-safe on Python 3.11 (see petastorm._npy)
    if str(npz[_KEY_FIELD]) != key:
        raise KeyError(key)
    manifest = json.loads(str(npz[_MANIFEST_FIELD]))
    result = {}
    for index, (name, encoding) in enumerate(manifest):
        if encoding == "plain":
            result[name] = npz[f"c{index}"]
        else:
            prefix = f"c{index}_"
            result[name] = _decode_object_column({part[len(prefix):]: array for part, array in npz.items()
                                                  if part.startswith(prefix)})
    return result


def serializer_for(value: Any) -> tuple[str, Any] | None:
    """``('arrow', value)``, ``('npz', arrays)`` or None (not cacheable without pickle)."""
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return "arrow", value
    if isinstance(value, dict) and value:
        arrays = _npz_arrays(value)
        if arrays is not None:
            return "npz", arrays
    return None
