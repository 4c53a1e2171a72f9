"""``DummyPool``: the pool interface with no parallelism; all work happens inside ``get_results()``.

Runs on the engine's :class:`petastorm.reader_impl.pools.DummyPool`. Handy for profiling or debugging a worker:
its code runs in the caller's thread.
"""
from __future__ import annotations

from time import sleep
from typing import Any

from petastorm.reader_impl import pools as engine_pools
from petastorm.workers_pool import EmptyResultError
from petastorm.workers_pool.worker_base import _PoolFacade, _WorkerRunner

__all__ = ["DummyPool", "EmptyResultError", "sleep"]


class DummyPool(_PoolFacade):
    """One worker (``worker_id`` 0) whose ``process`` runs in the thread calling ``get_results()``, in ventilation
    order.

    :param workers: ignored (accepted like the other pools' ``workers_count``); ``workers_count`` is 1.

    Attributes read by ``make_reader(reader_pool_type=DummyPool())``: ``engine_kind`` (``'dummy'``),
    ``workers_count`` (1) and ``results_queue_size`` (50).
    """

    engine_kind = "dummy"

    def __init__(self, workers: Any = None) -> None:
        super().__init__(1, results_queue_size=50, ordered=True)

    def _make_engine(self) -> Any:
        return engine_pools.DummyPool(1)

    def start(self, worker_class: type, worker_args: Any = None, ventilator: Any = None) -> None:
        """Constructs the worker and starts the ventilator (if any).

        :param worker_class: a :class:`~petastorm.workers_pool.worker_base.WorkerBase` subclass.
        :param worker_args: passed to the worker as ``args``.
        :param ventilator: an optional :class:`~petastorm.workers_pool.ventilator.Ventilator`.
        """
        runner = _WorkerRunner(worker_class, worker_args)
        runner.prebuild(1)
        self._start(runner, ventilator)

    @property
    def diagnostics(self) -> dict:
        return {}
