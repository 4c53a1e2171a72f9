"""``ProcessPool``: the original's generic process pool, running on the engine's process pool.

Workers run in the processes of :class:`petastorm.reader_impl.process_pool.ProcessPool` (forkserver, else spawn: no fork
of the caller), which exchange pickled tasks and results over pipes; there is no ZeroMQ. The worker class, its
``worker_setup_args`` and the ``serializer`` are sent to the processes with cloudpickle, so they must be picklable
(classes and functions defined in ``__main__`` travel by value).
"""
from __future__ import annotations

import logging
import pickle
from time import sleep, time
from typing import Any

from petastorm.reader_impl import process_pool as engine_pools
from petastorm.reader_impl.pickle_serializer import PickleSerializer
from petastorm.workers_pool import EmptyResultError, VentilatedItemProcessedMessage
from petastorm.workers_pool.exec_in_new_process import exec_in_new_process
from petastorm.workers_pool.worker_base import _PoolFacade, _WorkerRunner

__all__ = ["ProcessPool", "PickleSerializer", "EmptyResultError", "VentilatedItemProcessedMessage",
           "exec_in_new_process", "logger", "sleep", "time"]

logger = logging.getLogger(__name__)


class ProcessPool(_PoolFacade):
    """Runs one instance of a :class:`~petastorm.workers_pool.worker_base.WorkerBase` subclass in each of
    ``workers_count`` worker processes; results come back as they complete.

    :param workers_count: number of processes.
    :param serializer: how published values travel back: None or a
        :class:`~petastorm.reader_impl.pickle_serializer.PickleSerializer` sends them pickled (protocol 5, numpy
        buffers out of band); any other object with ``serialize`` / ``deserialize`` (e.g.
        :class:`~petastorm.reader_impl.arrow_table_serializer.ArrowTableSerializer`) is applied to each value.
    :param zmq_copy_buffers: accepted for compatibility; there is no ZeroMQ (shown in ``diagnostics``).

    Attributes read by ``make_reader(reader_pool_type=ProcessPool(...))``: ``engine_kind`` (``'process'``),
    ``workers_count`` and ``results_queue_size`` (50).
    """

    engine_kind = "process"

    def __init__(self, workers_count: int, serializer: Any = None, zmq_copy_buffers: bool = True) -> None:
        super().__init__(workers_count, results_queue_size=50, ordered=False)
        self._serializer = serializer or PickleSerializer()
        self._zmq_copy_buffers = zmq_copy_buffers

    def _make_engine(self) -> Any:
        return engine_pools.ProcessPool(self.workers_count)

    def _custom_serializer(self) -> Any:
        return None if type(self._serializer) is PickleSerializer else self._serializer

    def start(self, worker_class: type, worker_setup_args: Any = None, ventilator: Any = None) -> None:
        """Starts the worker processes; each constructs its worker (``worker_id`` = its index) on its first item.

        :param worker_class: a picklable :class:`WorkerBase` subclass.
        :param worker_setup_args: passed to each worker as ``args`` (must be picklable).
        :param ventilator: an optional :class:`~petastorm.workers_pool.ventilator.Ventilator`, started here.
        :raises pickle.PicklingError: the worker class, its args or the serializer cannot be pickled.
        """
        serializer = self._custom_serializer()
        try:
            engine_pools.cloudpickle.dumps((worker_class, worker_setup_args, serializer))
        except Exception as e:
            raise pickle.PicklingError(
                f"ProcessPool sends the worker class, its worker_setup_args and the serializer to its worker "
                f"processes, so they must be picklable (with cloudpickle); pickling failed: {e!r}. Use ThreadPool "
                f"for workers that hold unpicklable state.") from e
        runner = _WorkerRunner(worker_class, worker_setup_args, serializer=serializer, in_worker_process=True)
        self._start(runner, ventilator)

    def _decode(self, outputs: list) -> list:
        serializer = self._custom_serializer()
        if serializer is None:
            return outputs
        return [serializer.deserialize(value) for value in outputs]

    @property
    def diagnostics(self) -> dict:
        return {"items_consumed": self._ventilated, "items_produced": self._processed,
                "items_inprocess": self._ventilated - self._processed, "zmq_copy_buffers": self._zmq_copy_buffers}
