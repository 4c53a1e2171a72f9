"""The ``process`` pool: worker processes started with ``forkserver`` (``spawn`` where there is none), with the
pool interface of :mod:`petastorm.reader_impl.pools`.

Each worker gets its work function once (cloudpickle) and small task tuples; results come back as pickle protocol 5
with out-of-band buffers: numpy arrays travel as raw bytes received straight into writable buffers, without an
extra pickle copy. A worker that dies (killed, segfault, OOM) raises :class:`~petastorm.reader_impl.pools.WorkerDiedError`
at once: its sentinel wakes the wait.
"""
from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection as mp_connection
import pickle
import signal
import threading
import time
from typing import Any, Callable

from petastorm.reader_impl.pools import (_JOIN_GRACE_S, PoolStoppedError, WorkerDiedError, WorkerTimeoutError,
                                         _check_interval, _RemoteTraceback)

try:
    import cloudpickle
except ImportError:  # pragma: no cover - pyspark always ships a copy
    from pyspark import cloudpickle  # type: ignore[no-redef]

__all__ = ["ProcessPool"]


def _send_result(conn: Any, seq: int, ok: bool, value: Any) -> None:
    buffers: list = []
    try:
        main = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as e:  # an unpicklable result or exception
        if ok:
            ok, value = False, (RuntimeError(f"The reader worker's result could not be pickled: {e!r}"), "")
        else:
            value = (RuntimeError(f"{type(value[0]).__name__}: {value[0]}"), value[1])
        buffers = []
        main = pickle.dumps(value, protocol=5)
    raws = [b.raw() for b in buffers]
    conn.send_bytes(pickle.dumps((seq, ok, [r.nbytes for r in raws]), protocol=5))
    conn.send_bytes(main)
    for raw in raws:
        conn.send_bytes(raw)


def _recv_result(conn: Any) -> tuple[int, bool, Any]:
    seq, ok, sizes = pickle.loads(conn.recv_bytes())
    main = conn.recv_bytes()
    buffers = []
    for size in sizes:
        buffer = bytearray(size)
        if size:
            conn.recv_bytes_into(buffer)
        else:
            conn.recv_bytes()
        buffers.append(buffer)
    value = pickle.loads(main, buffers=buffers)
    if not ok:
        value, text = value
        value.__cause__ = _RemoteTraceback(text)
    return seq, ok, value


def _process_main(conn: Any, fn_bytes: bytes) -> None:
    """A worker process: runs tasks from ``conn`` until it receives None or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fn = pickle.loads(fn_bytes)
        setup_error = None
    except BaseException as e:  # noqa: B902
        fn, setup_error = None, e
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        seq, task = message
        try:
            if setup_error is not None:
                raise RuntimeError(f"The reader worker could not load its configuration: {setup_error!r}")
            ok, value = True, fn(task)
        except BaseException as e:  # noqa: B902
            from petastorm.reader_impl.loaders import format_remote_traceback

            ok, value = False, (e, format_remote_traceback(e))
        try:
            _send_result(conn, seq, ok, value)
        except (BrokenPipeError, EOFError, OSError):
            return


_START_LOCK = threading.Lock()


class _NoMainModule:
    """Hides ``__main__`` while a worker process starts, so the child does not re-run the user's main script
    (no ``if __name__ == '__main__'`` guard needed, and a fast start from the preloaded fork server). Functions
    defined in ``__main__`` still reach the workers: cloudpickle sends them by value."""

    def __enter__(self) -> None:
        import sys
        import types

        _START_LOCK.acquire()
        self._main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")

    def __exit__(self, *exc: Any) -> None:
        import sys

        if self._main is not None:
            sys.modules["__main__"] = self._main
        _START_LOCK.release()


def _start_method() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def _exit_description(process: Any) -> str:
    code = process.exitcode
    if code is None:
        return "it stopped responding"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessPool:
    """``workers_count`` worker processes (forkserver/spawn), one duplex pipe each."""

    kind = "process"

    def __init__(self, workers_count: int, worker_timeout: float | None = None):
        self.workers_count = workers_count
        self._timeout = worker_timeout
        self._processes: list = []
        self._conns: list = []
        self._idle: collections.deque = collections.deque()
        self._busy: dict[int, tuple[int, float, str]] = {}
        self._backlog: collections.deque = collections.deque()
        self._stopped = False

    def start(self, fn: Callable) -> None:
        ctx = multiprocessing.get_context(_start_method())
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["petastorm.reader_impl.loaders", "petastorm.codecs", "pyspark.sql.types",
                                         "cloudpickle", "cv2"])
        fn_bytes = cloudpickle.dumps(fn, protocol=5)
        for i in range(self.workers_count):
            parent, child = ctx.Pipe(duplex=True)
            process = ctx.Process(target=_process_main, args=(child, fn_bytes), daemon=True,
                                  name=f"petastorm-reader-worker-{i}")
            with _NoMainModule():
                process.start()
            child.close()
            self._processes.append(process)
            self._conns.append(parent)
            self._idle.append(i)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]

    def submit(self, seq: int, task: Any, describe: str) -> None:
        self._backlog.append((seq, task, describe))
        self._dispatch()

    def in_flight(self) -> int:
        return len(self._backlog) + len(self._busy)

    def discard_pending(self) -> None:
        self._backlog.clear()

    def _dispatch(self) -> None:
        while self._idle and self._backlog:
            worker = self._idle.popleft()
            seq, task, describe = self._backlog.popleft()
            try:
                self._conns[worker].send((seq, task))
            except (BrokenPipeError, OSError):
                self._raise_died(worker, describe)
            self._busy[worker] = (seq, time.monotonic(), describe)

    def _raise_died(self, worker: int, describe: str | None) -> None:
        if self._stopped:  # stop() ended the busy workers: the consumer is told so, as the thread pool tells it
            raise PoolStoppedError("The reader was stopped (stop() was called) while waiting for a row group")
        process = self._processes[worker]
        process.join(timeout=0.5)
        doing = f" while reading {describe}" if describe else ""
        raise WorkerDiedError(f"Reader worker process {process.pid} died ({_exit_description(process)}){doing}")

    def get(self) -> tuple[int, bool, Any]:
        if not self._busy and not self._backlog:
            raise RuntimeError("ProcessPool.get() called with no task in flight")
        interval = _check_interval(self._timeout)
        conn_worker = {id(self._conns[w]): w for w in range(len(self._conns))}
        sentinel_worker = {p.sentinel: w for w, p in enumerate(self._processes)}
        while True:
            waitables = [self._conns[w] for w in self._busy] + list(sentinel_worker)
            ready = mp_connection.wait(waitables, timeout=interval)
            for obj in ready:
                worker = conn_worker.get(id(obj))
                if worker is None:
                    continue
                describe = self._busy.get(worker, (None, None, None))[2]
                try:
                    out = _recv_result(obj)
                except (EOFError, OSError):
                    self._raise_died(worker, describe)
                self._busy.pop(worker, None)
                self._idle.append(worker)
                self._dispatch()
                return out
            for obj in ready:
                worker = sentinel_worker.get(obj)
                if worker is not None:
                    self._raise_died(worker, self._busy.get(worker, (None, None, None))[2])
            if self._timeout is not None:
                now = time.monotonic()
                for worker, (seq, started, describe) in self._busy.items():
                    if now - started > self._timeout:
                        raise WorkerTimeoutError(
                            f"Reader worker process {self._processes[worker].pid} spent more than "
                            f"{self._timeout} s on {describe}")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._backlog.clear()
        for worker, process in enumerate(self._processes):
            if worker in self._busy:
                process.terminate()  # busy: do not wait for the row group it is reading
                continue
            try:
                self._conns[worker].send(None)
            except (BrokenPipeError, OSError):
                pass

    def join(self) -> None:
        deadline = time.monotonic() + _JOIN_GRACE_S
        for process in self._processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=1.0)
        for conn in self._conns:
            try:
                conn.close()
            except OSError:  # pragma: no cover
                pass
        for process in self._processes:
            try:
                process.close()
            except ValueError:  # pragma: no cover - still running after kill
                pass
