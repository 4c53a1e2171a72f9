"""The original's batch-reader worker module: ``convert_arrow_table_to_numpy_dict`` and the results-queue reader
work; the worker itself belongs to the original's engine and is replaced by ``make_batch_reader``.

``convert_arrow_table_to_numpy_dict`` uses the engine's own conversion of native Parquet columns (the one
``make_batch_reader`` applies): strings become ``str_`` arrays, equal-length lists a matrix (reshaped to the
field's shape when it has more than one dimension), everything else goes through pandas. Codec-encoded columns
are not decoded, as in the original.
"""
from __future__ import division

from typing import Any

import pyarrow as pa

from petastorm.cache import NullCache
from petastorm.local_disk_cache import LocalDiskCache
from petastorm.reader_impl.decoding import native_column_to_numpy
from petastorm.workers_pool import EmptyResultError
from petastorm.workers_pool.worker_base import RetiredWorker, WorkerBase  # noqa: F401 - WorkerBase: an original name

__all__ = ["ArrowReaderWorker", "ArrowReaderWorkerResultsQueueReader", "convert_arrow_table_to_numpy_dict",
           "EmptyResultError", "LocalDiskCache", "NullCache", "WorkerBase", "division"]


def convert_arrow_table_to_numpy_dict(result_table: pa.Table, schema: Any) -> dict:
    """A dict column name -> numpy array for every column of ``result_table``.

    :param result_table: a ``pyarrow.Table`` (typically one row group).
    :param schema: a :class:`~petastorm.unischema.Unischema`; list columns take the shape of its field.
    :raises RuntimeError: the lists of a list column differ in length.
    """
    result = {}
    for name in result_table.column_names:
        field = schema.fields.get(name) if schema is not None else None
        try:
            result[name] = native_column_to_numpy(name, result_table.column(name), field)
        except ValueError as e:
            raise RuntimeError(str(e)) from e
    return result


class ArrowReaderWorkerResultsQueueReader:
    """Turns each result of a pool (an Arrow table or a dict of numpy columns) into one namedtuple of columns."""

    @property
    def batched_output(self) -> bool:
        return True

    def read_next(self, workers_pool: Any, schema: Any, ngram: Any) -> Any:
        """The next batch from ``workers_pool.get_results()``; ``StopIteration`` when the pool is exhausted."""
        if ngram:
            raise NotImplementedError("Batched results do not support n-grams (use make_reader for n-grams)")
        try:
            result = workers_pool.get_results()
        except EmptyResultError:
            raise StopIteration from None
        if not isinstance(result, dict):
            result = convert_arrow_table_to_numpy_dict(result, schema)
        return schema.make_namedtuple(**result)


class ArrowReaderWorker(RetiredWorker):
    """The original's row-group worker of ``make_batch_reader``. Not available: constructing it raises
    ``NotImplementedError`` naming ``make_batch_reader``, which reads with the engine's own workers."""

    reader_function = "make_batch_reader"

    results_queue_reader_class = ArrowReaderWorkerResultsQueueReader
