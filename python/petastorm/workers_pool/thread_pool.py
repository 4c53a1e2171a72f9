"""``ThreadPool``: the original's generic thread pool, running on the engine's thread pool.

Workers run in the threads of :class:`petastorm.reader_impl.pools.ThreadPool`; see
:mod:`petastorm.workers_pool.worker_base` for how ``WorkerBase`` objects are driven there.
"""
from __future__ import annotations

import queue
import sys
import threading
import traceback
from typing import Any

from petastorm.reader_impl import pools as engine_pools
from petastorm.workers_pool import EmptyResultError, VentilatedItemProcessedMessage
from petastorm.workers_pool.worker_base import WorkerBase, _PoolFacade, _WorkerRunner

__all__ = ["ThreadPool", "WorkerThread", "WorkerTerminationRequested", "IO_TIMEOUT_INTERVAL_S", "EmptyResultError",
           "VentilatedItemProcessedMessage"]

# Seconds between checks of the stop event while waiting on a queue.
IO_TIMEOUT_INTERVAL_S = 0.001


class WorkerTerminationRequested(Exception):
    """Raised in a worker thread that is asked to stop while it waits to hand over a result."""


class ThreadPool(_PoolFacade):
    """Runs ``workers_count`` instances of a :class:`WorkerBase` subclass in threads.

    :param workers_count: number of threads.
    :param results_queue_size: used by ``make_reader`` when an instance is passed as ``reader_pool_type``.
    :param profiling_enabled: profile the workers' ``process`` calls; ``join()`` prints the merged statistics.
    :param shuffle_rows, seed: results come back in ventilation order unless ``shuffle_rows`` is set without a
        seed (None or 0), in which case they come back as soon as they are ready (as in the original).

    Attributes read by ``make_reader(reader_pool_type=ThreadPool(...))``: ``engine_kind`` (``'thread'``),
    ``workers_count`` and ``results_queue_size``.
    """

    engine_kind = "thread"

    def __init__(self, workers_count: int, results_queue_size: int = 50, profiling_enabled: bool = False,
                 shuffle_rows: bool = False, seed: int | None = None) -> None:
        unordered = shuffle_rows and (seed is None or seed == 0)
        super().__init__(workers_count, results_queue_size, ordered=not unordered)
        self._profiling_enabled = profiling_enabled
        self._shuffle_rows = shuffle_rows
        self._seed = seed

    def _make_engine(self) -> Any:
        return engine_pools.ThreadPool(self.workers_count)

    def start(self, worker_class: type, worker_args: Any = None, ventilator: Any = None) -> None:
        """Constructs ``workers_count`` workers (ids 0..n-1, in this thread) and starts the threads.

        :param worker_class: a :class:`WorkerBase` subclass.
        :param worker_args: passed to each worker as ``args``.
        :param ventilator: an optional :class:`~petastorm.workers_pool.ventilator.Ventilator`, started here.
        """
        runner = _WorkerRunner(worker_class, worker_args, profiling=self._profiling_enabled)
        runner.prebuild(self.workers_count)
        self._start(runner, ventilator)

    def join(self) -> None:
        super().join()
        if self._profiling_enabled and self._runner is not None:
            self._runner.print_profiles()

    @property
    def diagnostics(self) -> dict:
        return {"output_queue_size": self.results_qsize()}


class WorkerThread(threading.Thread):
    """A thread running one worker on items from its own queue (the original's building block of its thread pool).

    :class:`ThreadPool` does not use it (its threads are the engine's); it stays a working class for code that
    drives a worker by hand: items are ``(args, kwargs)`` tuples read from ``ventilator_queue``; after each one a
    :class:`VentilatedItemProcessedMessage` is published; an exception is put on ``results_queue`` and ends the
    thread. Set ``stop_event`` to end it.
    """

    def __init__(self, worker_impl: WorkerBase, stop_event: threading.Event, ventilator_queue: "queue.Queue",
                 results_queue: "queue.Queue", profiling_enabled: bool = False) -> None:
        super().__init__(daemon=True)
        self._worker_impl = worker_impl
        self._stop_event = stop_event
        self._ventilator_queue = ventilator_queue
        self._results_queue = results_queue
        self._profiling_enabled = profiling_enabled
        if profiling_enabled:
            import cProfile

            self.prof = cProfile.Profile()

    def run(self) -> None:
        if self._profiling_enabled:
            self.prof.enable()
        try:
            self._loop()
        finally:
            if self._profiling_enabled:
                self.prof.disable()

    def _loop(self) -> None:
        while not self._stop_event.is_set():
            try:
                args, kwargs = self._ventilator_queue.get(timeout=IO_TIMEOUT_INTERVAL_S)
            except queue.Empty:
                continue
            try:
                self._worker_impl.process(*args, **kwargs)
                self._worker_impl.publish_func(VentilatedItemProcessedMessage())
            except WorkerTerminationRequested:
                pass
            except Exception as e:  # noqa: BLE001 - handed to the consumer
                sys.stderr.write(f"Worker {self._worker_impl.worker_id} terminated: unexpected exception:\n"
                                 f"{traceback.format_exc()}")
                self._results_queue.put(e)
                return
