"""``WorkerBase``, the worker protocol of the generic pools, and the adapter that runs such workers on the engine.

A worker is constructed as ``worker_class(worker_id, publish_func, args)``; each ventilated item becomes one
``worker.process(*args, **kwargs)`` call, which hands any number of results to ``publish_func``. The pools in this
package (thread, process, dummy) are thin facades over :mod:`petastorm.reader_impl.pools`: the engine's task
function is a :class:`_WorkerRunner`, which keeps one worker instance per engine thread or process and returns the
list of what ``process`` published; :class:`_PoolFacade` turns that into the original's
``start`` / ``ventilate`` / ``get_results`` / ``stop`` / ``join`` interface.
"""
from __future__ import annotations

import collections
import cProfile
import multiprocessing
import multiprocessing.util
import pstats
import threading
from abc import abstractmethod
from typing import Any, Callable

from petastorm.workers_pool import EmptyResultError

__all__ = ["WorkerBase"]

# How long get_results() waits for the ventilator before it looks again (it is woken early by ventilate()).
_VENTILATION_POLL_S = 0.05


class WorkerBase:
    """Base class of the workers run by the generic pools.

    :param worker_id: an int unique among the workers of one pool (0 .. workers_count - 1).
    :param publish_func: call it with each result; ``get_results()`` returns the published values one by one.
    :param args: the ``worker_args`` / ``worker_setup_args`` given to the pool's ``start``.
    """

    def __init__(self, worker_id: int, publish_func: Callable[[Any], None], args: Any) -> None:
        self.worker_id = worker_id
        self.publish_func = publish_func
        self.args = args

    @abstractmethod
    def process(self, *args: Any, **kargs: Any) -> None:
        """Does the work of one ventilated item (called with the arguments given to ``ventilate``)."""

    def shutdown(self) -> None:
        """Called when a process pool's worker process ends; nothing by default."""


class RetiredWorker(WorkerBase):
    """A row-group worker class of the original reader engine, kept importable. Constructing it or calling
    ``process`` raises ``NotImplementedError`` naming the reader function (``reader_function``) that replaces it:
    that reader runs the engine's own workers."""

    reader_function = ""
    results_queue_reader_class: type = object

    def __init__(self, worker_id: int, publish_func: Callable[[Any], None], args: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} belonged to the original reader engine and cannot run "
                                  f"here; use {self._use_instead()}")

    @classmethod
    def _use_instead(cls) -> str:
        return (f"petastorm.{cls.reader_function}(...) (its engine reads row groups with its own workers; pass "
                "reader_pool_type='thread' / 'process' / 'dummy' or a petastorm.workers_pool pool instance)")

    @classmethod
    def new_results_queue_reader(cls) -> Any:
        """The reader of this worker's results, as the original's reader called it (still usable on its own)."""
        return cls.results_queue_reader_class()

    def process(self, piece_index: int, worker_predicate: Any, shuffle_row_drop_partition: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__}.process is not available; use {self._use_instead()}")


def _process_worker_index() -> int:
    """The engine's index of the current worker process: its process name ends with it."""
    _, _, index = multiprocessing.current_process().name.rpartition("-")
    return int(index) if index.isdigit() else 0


class _WorkerRunner:
    """The engine task function: ``task = (args, kwargs)`` -> list of the values ``worker.process`` published.

    One worker instance per engine thread (or process) is used; instances built by :meth:`prebuild` in the
    caller's thread are handed out first, the rest are built on first use. With ``in_worker_process`` the runner
    lives in an engine worker process: the worker takes that process's index as ``worker_id`` and its
    ``shutdown()`` runs when the process ends. Picklable when the worker class, its args and the serializer are.
    """

    def __init__(self, worker_class: type, worker_args: Any, serializer: Any = None, profiling: bool = False,
                 in_worker_process: bool = False) -> None:
        self._worker_class = worker_class
        self._worker_args = worker_args
        self._serializer = serializer
        self._profiling = profiling
        self._in_worker_process = in_worker_process
        self._init_local_state()

    def _init_local_state(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._spare: list = []
        self._next_id = 0
        self.profiles: list = []

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in ("_local", "_lock", "_spare", "_next_id", "profiles"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_local_state()

    def prebuild(self, count: int) -> None:
        """Constructs ``count`` workers now, in this thread (so constructor errors surface in ``start``)."""
        self._spare = [self._new_worker() for _ in range(count)]

    def _new_worker(self) -> WorkerBase:
        if self._in_worker_process:
            index = _process_worker_index()
        else:
            index, self._next_id = self._next_id, self._next_id + 1
        return self._worker_class(index, self._publish, self._worker_args)

    def _worker(self) -> WorkerBase:
        worker = getattr(self._local, "worker", None)
        if worker is None:
            with self._lock:
                worker = self._spare.pop(0) if self._spare else self._new_worker()
            self._local.worker = worker
            if self._in_worker_process:
                # Runs when the worker process ends normally (multiprocessing's exit hooks).
                multiprocessing.util.Finalize(None, worker.shutdown, exitpriority=10)
        return worker

    def _publish(self, data: Any) -> None:
        outbox = getattr(self._local, "outbox", None)
        if outbox is None:
            raise RuntimeError("publish_func can only be called while the worker's process() is running")
        outbox.append(data)

    def __call__(self, task: tuple) -> list:
        args, kwargs = task
        worker = self._worker()
        outbox: list = []
        self._local.outbox = outbox
        try:
            if self._profiling:
                self._profile().runcall(worker.process, *args, **kwargs)
            else:
                worker.process(*args, **kwargs)
        finally:
            self._local.outbox = None
        if self._serializer is not None:
            return [self._serializer.serialize(value) for value in outbox]
        return outbox

    def _profile(self) -> cProfile.Profile:
        profile = getattr(self._local, "profile", None)
        if profile is None:
            profile = self._local.profile = cProfile.Profile()
            with self._lock:
                self.profiles.append(profile)
        return profile

    def print_profiles(self) -> None:
        """Prints the merged profile of all worker threads, by cumulative time."""
        if self.profiles:
            stats = pstats.Stats(*self.profiles)
            stats.sort_stats("cumulative").print_stats()


class _PoolFacade:
    """The original pools' interface over one engine pool (see the module docstring).

    ``make_reader(reader_pool_type=<instance>)`` reads ``engine_kind``, ``workers_count`` and
    ``results_queue_size`` of an instance to build its own engine pool; the instance itself is not started then.
    Results of one item are returned in the order they were published; ``ordered`` pools return items in
    ventilation order, the others as they complete.
    """

    engine_kind = ""

    def __init__(self, workers_count: int, results_queue_size: int = 50, ordered: bool = False) -> None:
        self.workers_count = workers_count
        self.results_queue_size = results_queue_size
        self._ordered = ordered
        self._engine: Any = None
        self._engine_to_join: Any = None
        self._runner: _WorkerRunner | None = None
        self._ventilator: Any = None
        self._state = "new"
        self._pending: collections.deque = collections.deque()
        self._seq_lock = threading.Lock()
        self._engine_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._ventilated = 0
        self._processed = 0
        self._next_out = 0
        self._held: dict[int, list] = {}
        self._ready: collections.deque = collections.deque()

    # -- what a subclass provides -------------------------------------------------------------------------------

    def _make_engine(self) -> Any:
        raise NotImplementedError

    def _decode(self, outputs: list) -> list:
        return outputs

    # -- the public interface -----------------------------------------------------------------------------------

    def _start(self, runner: _WorkerRunner, ventilator: Any) -> None:
        if self._state != "new":
            raise RuntimeError(f"{type(self).__name__} cannot be started twice or reused after stop(); "
                               "create a new pool")
        engine = self._make_engine()
        engine.start(runner)
        self._runner, self._engine, self._state = runner, engine, "started"
        self._engine_to_join = engine
        if ventilator is not None:
            self._ventilator = ventilator
            ventilator.start()

    def ventilate(self, *args: Any, **kargs: Any) -> None:
        """Queues one work item: a worker will call ``process(*args, **kargs)``. Ignored after ``stop()``."""
        if self._state == "new":
            raise RuntimeError(f"{type(self).__name__}.start() must be called before ventilate()")
        if self._state == "stopped":
            return
        with self._seq_lock:
            self._pending.append((self._ventilated, args, kargs))
            self._ventilated += 1
        self._wakeup.set()
        if self._engine_lock.acquire(blocking=False):
            try:
                self._submit_pending()
            finally:
                self._engine_lock.release()

    def _submit_pending(self) -> None:
        while self._pending and self._state == "started":
            seq, args, kargs = self._pending.popleft()
            self._engine.submit(seq, (args, kargs), f"ventilated item {seq}")

    def get_results(self) -> Any:
        """The next value a worker published. Blocks until one is available; re-raises a worker's exception
        (after stopping the pool); raises :class:`EmptyResultError` when every ventilated item is consumed and the
        ventilator (if any) has completed."""
        if self._state == "new":
            raise RuntimeError(f"{type(self).__name__}.start() must be called before get_results()")
        while not self._ready:
            self._wakeup.clear()
            ventilation_done = self._ventilator is None or self._ventilator.completed()
            with self._engine_lock:
                self._submit_pending()
                busy = self._state == "started" and self._engine.in_flight() > 0
                if busy:
                    seq, ok, value = self._get_from_engine()
            if busy:
                self._take(seq, ok, value)
            elif ventilation_done and not self._pending:
                raise EmptyResultError()
            else:
                self._wakeup.wait(_VENTILATION_POLL_S)
        return self._ready.popleft()

    def _get_from_engine(self) -> tuple:
        try:
            return self._engine.get()
        except Exception:  # a worker process died or timed out: the pool cannot go on
            self.stop()
            self.join()
            raise

    def _take(self, seq: int, ok: bool, value: Any) -> None:
        self._processed += 1
        if self._ventilator is not None:
            self._ventilator.processed_item()
        if not ok:
            self.stop()
            self.join()
            raise value
        outputs = self._decode(value)
        if not self._ordered:
            self._ready.extend(outputs)
            return
        self._held[seq] = outputs
        while self._next_out in self._held:
            self._ready.extend(self._held.pop(self._next_out))
            self._next_out += 1

    def stop(self) -> None:
        """Stops the ventilator and the workers (does not wait for them: see :meth:`join`)."""
        if self._ventilator is not None:
            self._ventilator.stop()
        if self._state == "started":
            self._state = "stopped"
            self._pending.clear()
            self._engine.stop()

    def join(self) -> None:
        """Waits (a short grace period) for the workers to end. Stops the pool first if :meth:`stop` was not
        called (the original would wait forever then). Idempotent."""
        self.stop()
        engine, self._engine_to_join = self._engine_to_join, None
        if engine is not None:
            engine.join()

    def results_qsize(self) -> int:
        """Number of published values received from the workers and not yet returned by ``get_results``."""
        return len(self._ready) + sum(len(outputs) for outputs in self._held.values())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(workers_count={self.workers_count}, engine_kind={self.engine_kind!r}, "
                f"state={self._state!r})")
