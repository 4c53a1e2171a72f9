"""The original's generic worker pools, kept for user code that runs its own workers through them.

:class:`~petastorm.workers_pool.thread_pool.ThreadPool`,
:class:`~petastorm.workers_pool.process_pool.ProcessPool` and
:class:`~petastorm.workers_pool.dummy_pool.DummyPool` run a
:class:`~petastorm.workers_pool.worker_base.WorkerBase` subclass on the reader engine's own pools
(:mod:`petastorm.reader_impl.pools`); there is one pool implementation in the package. Passing an instance to
``make_reader(reader_pool_type=...)`` selects the engine pool of the same kind and size.

This package module holds the exceptions and the message class the pools share.
"""
from __future__ import annotations

__all__ = ["EmptyResultError", "TimeoutWaitingForResultError", "VentilatedItemProcessedMessage"]


class EmptyResultError(RuntimeError):
    """``get_results()`` found no result left: every ventilated item is processed and consumed, and the
    ventilator (if any) has nothing more to ventilate. Ventilating again makes results available again."""


class TimeoutWaitingForResultError(RuntimeError):
    """No result arrived within the time allowed for waiting on one."""


class VentilatedItemProcessedMessage:
    """Marks that a worker finished one ventilated item (the pools count items with it)."""
