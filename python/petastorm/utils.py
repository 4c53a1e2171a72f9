"""The original Petastorm's ``petastorm.utils`` helpers, delegating to the parts of the package that own them.

- :func:`decode_row` decodes a dict of stored values with the schema's codecs (the reader's own decoding);
- :func:`add_to_dataset_metadata` adds one key to a dataset's ``_common_metadata``;
- :func:`run_in_subprocess` runs a function in a one-off child process and returns its result.
"""
from __future__ import annotations

import logging
from multiprocessing import Pool
from typing import Any, Callable, Mapping, Union

from petastorm.errors import DecodeFieldError
from petastorm.etl import dataset_metadata
from petastorm.parquet_store import ParquetStore
from petastorm.codecs import decode_value
from petastorm.unischema import Unischema

__all__ = ["DecodeFieldError", "Pool", "add_to_dataset_metadata", "decode_row", "run_in_subprocess"]

logger = logging.getLogger(__name__)


def run_in_subprocess(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs ``func(*args, **kwargs)`` in a new child process, returns its result and ends the process.

    Whatever the call leaks (memory, threads, open files) goes away with the child. ``func``, its arguments and
    its result travel by pickle, so ``func`` must be defined at the top level of a module.
    """
    with Pool(1) as pool:  # leaving the block terminates the child
        return pool.apply(func, args=args, kwds=kwargs)


def decode_row(row: Mapping[Any, Any], schema: Unischema) -> dict:
    """Decodes a dict of stored (encoded) values into their Python/numpy values.

    Each field of ``schema`` found in ``row`` is decoded by its codec; a field without a codec is cast to its
    numpy scalar type (or ``Decimal``) when it has one, and nulls stay ``None``. Keys that are not fields of
    ``schema`` are left out.

    :raises DecodeFieldError: a value could not be decoded (the message names the field).
    """
    decoded = {}
    for key, value in row.items():
        name = str(key)
        if name in schema.fields:
            decoded[name] = decode_value(schema.fields[name], value)
    return decoded


def _as_bytes(text: Union[str, bytes]) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def add_to_dataset_metadata(dataset: Union[str, ParquetStore], key: Union[str, bytes],
                            value: Union[str, bytes]) -> None:
    """Adds (or replaces) one key/value entry of the dataset's ``_common_metadata``, keeping the other entries.

    When the dataset has no ``_common_metadata`` yet, it is created from ``_metadata`` or, failing that, from the
    footer of the first data file.

    :param dataset: the dataset directory, as a URL or path, or an opened
        :class:`~petastorm.parquet_store.ParquetStore`.
    :param key: the metadata key (``str`` is stored as UTF-8).
    :param value: the metadata value (``str`` is stored as UTF-8).
    :raises TypeError: ``dataset`` is neither a URL nor a ParquetStore.
    :raises ValueError: ``dataset`` is a list of files rather than a dataset directory.
    """
    store = dataset_metadata._as_store(dataset)
    if not store.is_directory:
        raise ValueError("Expected a dataset directory, not a list of files: _common_metadata lives in the "
                         "dataset's base directory")
    dataset_metadata.add_to_dataset_metadata(store, {_as_bytes(key): _as_bytes(value)})
