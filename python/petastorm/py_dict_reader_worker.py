"""The original's row-reader worker module: the results-queue reader works; the worker itself belongs to the
original's engine and is replaced by ``make_reader``."""
from __future__ import division

import threading
from typing import Any

from petastorm.cache import NullCache
from petastorm.workers_pool import EmptyResultError
from petastorm.workers_pool.worker_base import RetiredWorker, WorkerBase  # noqa: F401 - WorkerBase: an original name

__all__ = ["PyDictReaderWorker", "PyDictReaderWorkerResultsQueueReader", "EmptyResultError", "NullCache",
           "WorkerBase", "division"]


class PyDictReaderWorkerResultsQueueReader:
    """Returns rows one at a time from pool results that are lists of row dicts (or of n-gram dicts
    ``{timestep: row dict}``), as namedtuples of ``schema`` (n-grams: ``{timestep: namedtuple}``)."""

    def __init__(self) -> None:
        self._result_buffer_lock = threading.Lock()
        self._result_buffer: list = []

    @property
    def batched_output(self) -> bool:
        return False

    def _to_rows(self, results: list, schema: Any, ngram: Any) -> list:
        if not ngram:
            return [schema.make_namedtuple(**row) for row in results]
        return [{step: ngram.get_schema_at_timestep(schema, step).make_namedtuple(**row)
                 for step, row in item.items()} for item in results]

    def read_next(self, workers_pool: Any, schema: Any, ngram: Any) -> Any:
        """The next row; ``StopIteration`` when the pool is exhausted."""
        with self._result_buffer_lock:
            while not self._result_buffer:
                try:
                    results = workers_pool.get_results()
                except EmptyResultError:
                    raise StopIteration from None
                self._result_buffer = list(reversed(self._to_rows(results, schema, ngram)))
            return self._result_buffer.pop()


class PyDictReaderWorker(RetiredWorker):
    """The original's row-group worker of ``make_reader``. Not available: constructing it raises
    ``NotImplementedError`` naming ``make_reader``, which reads with the engine's own workers."""

    reader_function = "make_reader"

    results_queue_reader_class = PyDictReaderWorkerResultsQueueReader
