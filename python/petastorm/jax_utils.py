"""numpy / JAX batches from a Petastorm reader: dicts of arrays, optionally placed on a JAX device.

JAX is optional: :func:`make_numpy_iterator` needs only numpy, and :func:`make_jax_iterator` calls
``jax.device_put`` only when JAX is importable (``device_put=None``) or when asked to (``device_put=True``).

>>> with make_batch_reader(url, num_epochs=1) as reader:
...     for batch in make_jax_iterator(reader, batch_size=256):
...         params = train_step(params, batch['image'], batch['label'])
"""
from __future__ import annotations

import importlib.util
from typing import Any, Iterator

import numpy as np

from petastorm._batching import item_columns, rebatch_columns
from petastorm._extras import require

__all__ = ["make_numpy_iterator", "make_jax_iterator", "jax_available"]

# numpy kinds JAX cannot hold; they are left as numpy arrays.
_NON_NUMERIC_KINDS = "OUSMm"


def jax_available() -> bool:
    """True when ``import jax`` would succeed."""
    return importlib.util.find_spec("jax") is not None


def _null_check(name: str, value: np.ndarray) -> None:
    if value.dtype.kind == "O" and any(v is None for v in value.ravel()):
        raise ValueError(f"Field '{name}' has null (None) values; filter them out (predicate) or fill them")


def make_numpy_iterator(reader: Any, batch_size: int | None = None, drop_last: bool = False,
                        fields: list[str] | None = None) -> Iterator[dict]:
    """Yields dicts ``{field: ndarray}`` whose arrays share a leading batch dimension.

    :param reader: a ``make_reader`` or ``make_batch_reader`` reader.
    :param batch_size: rows per batch; None yields one batch per reader item (a row group for a batch reader,
        a batch of 1 for a row reader).
    :param drop_last: drop a last batch smaller than ``batch_size``.
    :param fields: only these fields (default: all of the reader's schema).
    """
    def columns() -> Iterator[dict]:
        for item in reader:
            cols = item_columns(reader, item)
            if fields is not None:
                cols = {k: cols[k] for k in fields}
            yield cols

    stream = columns() if batch_size is None else rebatch_columns(columns(), batch_size, drop_last)
    for batch in stream:
        for name, value in batch.items():
            _null_check(name, value)
        yield batch


def make_jax_iterator(reader: Any, batch_size: int | None = None, drop_last: bool = False,
                      fields: list[str] | None = None, device_put: bool | None = None, device: Any = None,
                      prefetch: int = 2) -> Iterator[dict]:
    """Like :func:`make_numpy_iterator`, with numeric arrays moved by ``jax.device_put`` (to ``device``).

    :param device_put: None: when JAX is importable; True: always (ImportError without JAX); False: never.
    :param prefetch: batches transferred ahead of the consumer (JAX transfers are asynchronous).
    """
    use_jax = jax_available() if device_put is None else device_put
    batches = make_numpy_iterator(reader, batch_size, drop_last, fields)
    if not use_jax:
        yield from batches
        return
    jax = require("jax", "petastorm.jax_utils")  # optional dependency

    def put(batch: dict) -> dict:
        return {k: (v if v.dtype.kind in _NON_NUMERIC_KINDS else jax.device_put(v, device)) for k, v in batch.items()}

    queue: list[dict] = []
    for batch in batches:
        queue.append(put(batch))
        if len(queue) > prefetch:
            yield queue.pop(0)
    yield from queue
