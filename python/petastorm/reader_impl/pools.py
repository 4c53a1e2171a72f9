"""Worker pools that run work items: ``dummy`` (in the consumer's thread), ``thread`` and ``process``.

Every pool has the same small interface: ``start(fn)``, ``submit(seq, task, describe)``, ``get() -> (seq, ok,
value)``, ``stop()``, ``join()``. ``get`` blocks on a queue or on ``multiprocessing.connection.wait`` with a
timeout only to re-check liveness: a worker that raised gives ``ok=False``; a worker process that died (killed,
segfault, OOM) raises :class:`WorkerDiedError` at once (its sentinel wakes the wait); a task running longer than
``worker_timeout`` seconds raises :class:`WorkerTimeoutError`.

The process pool is in :mod:`petastorm.reader_impl.process_pool` (loaded when one is made).
"""
from __future__ import annotations

import collections
import os
import queue
import threading
import time
from typing import Any, Callable

from petastorm._lazy import lazy_module

__all__ = ["WorkerDiedError", "WorkerTimeoutError", "PoolStoppedError", "DummyPool", "ThreadPool", "ProcessPool",
           "make_pool"]

# The process pool lives in its own module (loaded when a process pool is made); importable from here too.
_LAZY = {"ProcessPool": "petastorm.reader_impl.process_pool"}
__getattr__, __dir__ = lazy_module(__name__, _LAZY)

_CHECK_INTERVAL_S = 1.0
_JOIN_GRACE_S = 2.0


class WorkerDiedError(RuntimeError):
    """A reader worker process ended while the reader was running (killed, crashed, out of memory)."""


class PoolStoppedError(RuntimeError):
    """The pool was stopped while a consumer waited for a result."""


_STOPPED = object()  # put on the result queue by stop(): wakes every consumer blocked in get()


class WorkerTimeoutError(TimeoutError):
    """A reader worker spent longer than ``worker_timeout`` on one work item."""


class _RemoteTraceback(Exception):
    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\nTraceback in the worker process:\n" + self.text


def _check_interval(timeout: float | None) -> float:
    return _CHECK_INTERVAL_S if timeout is None else max(0.01, min(_CHECK_INTERVAL_S, timeout / 4))


class DummyPool:
    """Runs each task in the consumer's thread when its result is asked for (so ``worker_timeout``, accepted for a
    uniform signature, cannot apply: nothing can interrupt the caller's own thread)."""

    kind = "dummy"

    def __init__(self, workers_count: int = 1, worker_timeout: float | None = None):
        self._tasks: collections.deque = collections.deque()
        self._fn: Callable | None = None
        self.workers_count = 1

    def start(self, fn: Callable) -> None:
        self._fn = fn

    def submit(self, seq: int, task: Any, describe: str) -> None:
        self._tasks.append((seq, task))

    def get(self) -> tuple[int, bool, Any]:
        seq, task = self._tasks.popleft()
        try:
            return seq, True, self._fn(task)
        except Exception as e:
            return seq, False, e

    def discard_pending(self) -> None:
        self._tasks.clear()

    def in_flight(self) -> int:
        return len(self._tasks)

    def stop(self) -> None:
        self._tasks.clear()

    def join(self) -> None:
        pass


class ThreadPool:
    """``workers_count`` daemon threads taking tasks from one queue."""

    kind = "thread"

    def __init__(self, workers_count: int, worker_timeout: float | None = None):
        self.workers_count = workers_count
        self._timeout = worker_timeout
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._running: dict[int, tuple[int, float, str]] = {}
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._outstanding = 0
        self._on_exit: Callable | None = None

    def start(self, fn: Callable, on_exit: Callable | None = None) -> None:
        self._on_exit = on_exit
        for i in range(self.workers_count):
            thread = threading.Thread(target=self._work, args=(fn,), name=f"petastorm-reader-worker-{i}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _work(self, fn: Callable) -> None:
        ident = threading.get_ident()
        try:
            while True:
                task = self._tasks.get()
                if task is None or self._stopped.is_set():
                    return
                seq, payload, describe = task
                self._running[ident] = (seq, time.monotonic(), describe)
                try:
                    out = (seq, True, fn(payload))
                except BaseException as e:  # noqa: B902 - everything goes back to the consumer
                    out = (seq, False, e)
                finally:
                    self._running.pop(ident, None)
                self._results.put(out)
        finally:
            if self._on_exit is not None:
                try:
                    self._on_exit()
                except Exception:  # pragma: no cover
                    pass

    def submit(self, seq: int, task: Any, describe: str) -> None:
        self._outstanding += 1
        self._tasks.put((seq, task, describe))

    def in_flight(self) -> int:
        return self._outstanding

    def discard_pending(self) -> None:
        """Drops queued tasks (their results will never be asked for)."""
        while True:
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                return
            if task is not None:
                self._outstanding -= 1

    def get(self) -> tuple[int, bool, Any]:
        interval = _check_interval(self._timeout)
        while True:
            if self._stopped.is_set():
                raise PoolStoppedError("The reader was stopped (stop() was called) while waiting for a row group")
            try:
                out = self._results.get(timeout=interval)
            except queue.Empty:
                self._check()
                continue
            if out is _STOPPED:
                self._results.put(_STOPPED)  # for the next blocked consumer
                continue
            self._outstanding -= 1
            return out

    def _check(self) -> None:
        now = time.monotonic()
        if self._timeout is not None:
            for seq, started, describe in list(self._running.values()):
                if now - started > self._timeout:
                    raise WorkerTimeoutError(f"A reader worker thread spent more than {self._timeout} s on "
                                             f"{describe}")
        if not self._stopped.is_set() and not any(t.is_alive() for t in self._threads):
            raise WorkerDiedError("All reader worker threads ended unexpectedly")

    def stop(self) -> None:
        """Stops the workers and wakes every consumer blocked in :meth:`get` at once (it raises
        :class:`PoolStoppedError`), also while a worker is still busy with a row group."""
        self._stopped.set()
        self.discard_pending()
        self._results.put(_STOPPED)
        for _ in self._threads:
            self._tasks.put(None)

    def join(self) -> None:
        deadline = time.monotonic() + _JOIN_GRACE_S
        for thread in self._threads:
            # The reader's finalizer may run in a worker thread (garbage collection happens on any thread).
            if thread is not threading.current_thread():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))


def make_pool(reader_pool_type: str, workers_count: int, worker_timeout: float | None) -> Any:
    if not isinstance(workers_count, int) or workers_count < 1:
        raise ValueError(f"workers_count must be a positive int, got {workers_count!r}")
    if reader_pool_type == "dummy":
        return DummyPool(1, worker_timeout)
    if reader_pool_type == "thread":
        return ThreadPool(workers_count, worker_timeout)
    if reader_pool_type == "process":
        from petastorm.reader_impl.process_pool import ProcessPool

        return ProcessPool(workers_count, worker_timeout)
    raise ValueError(f"Unknown reader_pool_type {reader_pool_type!r}; expected 'thread', 'process' or 'dummy'")


def cpu_count() -> int:
    return os.cpu_count() or 1
