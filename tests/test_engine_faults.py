"""Faults turn into clear exceptions within seconds, and nothing is left running afterwards."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _engine_helpers import ROWS, assert_no_leaks, encode, write_engine_dataset

from petastorm import TransformSpec, make_batch_reader, make_reader
from petastorm.errors import DecodeFieldError
from petastorm.reader import WorkerDiedError, WorkerTimeoutError

LIMIT_S = 10


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    url = write_engine_dataset(tmp_path_factory.mktemp("faults") / "ds")
    with make_reader(url, reader_pool_type="process", workers_count=1) as reader:  # start the fork server
        next(reader)
    return url


def _damaged_copy(tmp_path, url, column, damage):
    """A copy of the dataset whose part-1 file has ``damage(cell)`` in row 2 of ``column``."""
    root = tmp_path / "ds"
    write_engine_dataset(root)
    path = root / "p=0" / "part-1.parquet"
    table = pq.read_table(path)
    cells = table.column(column).to_pylist()
    cells[2] = damage(cells[2])
    table = table.set_column(table.column_names.index(column), column, pa.array(cells, pa.binary()))
    pq.write_table(table, path, row_group_size=5)
    return f"file://{root}", str(path)


def _consume_expecting(reader_factory, error, *patterns, release=None):
    started = time.monotonic()
    with pytest.raises(error) as info:
        with reader_factory() as reader:
            for _ in reader:
                pass
    elapsed = time.monotonic() - started
    assert elapsed < LIMIT_S, f"took {elapsed:.1f} s"
    text = str(info.value)
    for pattern in patterns:
        assert pattern in text, f"{pattern!r} not in {text!r}"
    if release is not None:
        release()
    assert_no_leaks()
    return info.value


def _boom(row):
    if row["id"] == 33:
        raise ValueError("boom at 33")
    return row


def _boom_batch(frame):
    if (frame.id == 33).any():
        raise ValueError("boom at 33")
    return frame


@pytest.mark.parametrize("pool", ["thread", "process", "dummy"])
def test_worker_exception(url, pool):
    error = _consume_expecting(lambda: make_reader(url, reader_pool_type=pool, workers_count=2,
                                                   transform_spec=TransformSpec(_boom)),
                               ValueError, "boom at 33", "part-2.parquet", "row group 0")
    assert "Reading row group" in str(error)
    _consume_expecting(lambda: make_batch_reader(url, reader_pool_type=pool, workers_count=2,
                                                 transform_spec=TransformSpec(_boom_batch)),
                       ValueError, "boom at 33", "part-2.parquet")


def _kill_self(row):
    if row["id"] == 20:
        os.kill(os.getpid(), signal.SIGKILL)
    return row


def test_worker_process_killed_while_reading(url):
    _consume_expecting(lambda: make_reader(url, reader_pool_type="process", workers_count=2,
                                           transform_spec=TransformSpec(_kill_self)),
                       WorkerDiedError, "SIGKILL", "part-1.parquet")


def test_worker_process_killed_from_outside(url):
    started = time.monotonic()
    reader = make_reader(url, reader_pool_type="process", workers_count=2, results_queue_size=1)
    try:
        next(reader)
        os.kill(reader._pool.pids[0], signal.SIGKILL)
        with pytest.raises(WorkerDiedError, match="SIGKILL"):
            for _ in range(ROWS * 2):
                next(reader)
        with pytest.raises(WorkerDiedError):  # the reader stays failed
            next(reader)
    finally:
        reader.stop()
        reader.join()
    assert time.monotonic() - started < LIMIT_S
    assert_no_leaks()


def test_corrupt_parquet_file(url, tmp_path):
    root = tmp_path / "ds"
    write_engine_dataset(root)
    path = root / "p=1" / "part-2.parquet"
    path.write_bytes(b"not a parquet file at all" * 10)
    for pool in ("thread", "process"):
        _consume_expecting(lambda: make_reader(f"file://{root}", reader_pool_type=pool, workers_count=2),
                           Exception, str(path))


def test_truncated_npy_cell(url, tmp_path):
    bad_url, path = _damaged_copy(tmp_path, url, "vec", lambda cell: cell[:-5])
    for factory in (lambda: make_reader(bad_url, workers_count=2),
                    lambda: make_reader(bad_url, reader_pool_type="process", workers_count=2),
                    lambda: make_batch_reader(bad_url)):
        _consume_expecting(factory, DecodeFieldError, "'vec'", "truncated", path)


def test_corrupt_png_cell(url, tmp_path):
    bad_url, path = _damaged_copy(tmp_path, url, "img", lambda cell: cell[:20] + b"garbage" * 5)
    for factory in (lambda: make_reader(bad_url, workers_count=2), lambda: make_batch_reader(bad_url)):
        _consume_expecting(factory, DecodeFieldError, "'img'", path)
    good = encode("img", np.zeros((4, 4, 3), np.uint8))
    assert good[:8] == b"\x89PNG\r\n\x1a\n"


_RELEASE = threading.Event()


def _hang(row):
    if row["id"] == 10:
        _RELEASE.wait()  # hangs until the test releases it (a worker process is killed instead)
    return row


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_hung_worker_times_out(url, pool):
    _consume_expecting(lambda: make_reader(url, reader_pool_type=pool, workers_count=2, worker_timeout=3.0,
                                           transform_spec=TransformSpec(_hang)),
                       WorkerTimeoutError, "more than 3.0 s", "part-0.parquet", release=_RELEASE.set)
    _RELEASE.clear()


def test_stop_is_prompt_mid_epoch(url):
    for pool in ("thread", "process"):
        reader = make_reader(url, reader_pool_type=pool, workers_count=3, num_epochs=None)
        next(reader)
        started = time.monotonic()
        reader.stop()
        reader.join()
        assert time.monotonic() - started < 3
    assert_no_leaks()


_EXIT_SCRIPT = """
import sys, threading
from petastorm import TransformSpec, make_reader
never = threading.Event()
def hang(row):
    if row["id"] == 5:
        never.wait()
    return row
for pool in ("process", "thread"):
    reader = make_reader(sys.argv[1], reader_pool_type=pool, workers_count=2, num_epochs=None, seed=0,
                         shuffle_row_groups=False, transform_spec=TransformSpec(hang) if pool == "thread" else None)
    next(reader)
print("read", flush=True)
"""


@pytest.mark.slow
def test_interpreter_exit_is_prompt_without_stop(url):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, url], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "read" in result.stdout
    assert time.monotonic() - started < 30


def test_thread_pool_join_from_one_of_its_own_workers():
    """A reader's finalizer runs on whichever thread the garbage collector does, possibly a worker."""
    from petastorm.reader_impl.pools import ThreadPool

    pool = ThreadPool(1)
    pool.start(lambda payload: (pool.join(), payload)[1])
    pool.submit(0, "x", "a task that joins its own pool")
    assert pool.get() == (0, True, "x")
    pool.stop()
    pool.join()


@pytest.mark.parametrize("pool", ["thread", "dummy"])
def test_threads_sharing_a_reader_each_get_other_rows(url, pool):
    """A thread pool of 10 pulling rows from one reader (with 5 workers), as the original allowed."""
    from concurrent.futures import ThreadPoolExecutor

    with make_reader(url, reader_pool_type=pool, workers_count=5, num_epochs=2, schema_fields=["id"]) as reader:
        def pull(_):
            got = []
            while True:
                try:
                    got.append(int(next(reader).id))
                except StopIteration:
                    return got

        with ThreadPoolExecutor(10) as threads:
            results = [f.result(timeout=LIMIT_S * 3) for f in [threads.submit(pull, i) for i in range(10)]]
    ids = sorted(i for part in results for i in part)
    assert ids == sorted(list(range(ROWS)) * 2)


_BLOCK = threading.Event()
_ENTERED = threading.Event()


def _block(row):
    if row["id"] == 10:
        _ENTERED.set()
        _BLOCK.wait()
    return row


def test_stop_wakes_a_consumer_blocked_on_a_hung_worker(url):
    reader = make_reader(url, workers_count=1, seed=0, shuffle_row_groups=False, worker_timeout=600,
                         transform_spec=TransformSpec(_block))
    outcome = []

    def consume():
        try:
            for _ in reader:
                pass
            outcome.append("ended")
        except RuntimeError as e:
            outcome.append(e)

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        assert _ENTERED.wait(LIMIT_S)
        started = time.monotonic()
        reader.stop()
        consumer.join(LIMIT_S)
        assert not consumer.is_alive() and time.monotonic() - started < 3
        assert isinstance(outcome[0], RuntimeError) and "stopped" in str(outcome[0])
    finally:
        _BLOCK.set()
        reader.join()
        _BLOCK.clear()
        _ENTERED.clear()


def test_stop_wakes_a_consumer_of_a_process_pool_as_of_a_thread_pool(url):
    """The process pool terminates its busy worker on stop(); the blocked consumer gets the same "stopped" error."""
    reader = make_reader(url, reader_pool_type="process", workers_count=1, seed=0, shuffle_row_groups=False,
                         worker_timeout=600, transform_spec=TransformSpec(_hang))  # row 10 hangs in the worker
    reading, outcome = threading.Event(), []

    def consume():
        try:
            for count, _ in enumerate(reader):
                if count == 5:
                    reading.set()
            outcome.append("ended")
        except RuntimeError as e:
            outcome.append(e)

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert reading.wait(LIMIT_S)
    reader.stop()
    consumer.join(LIMIT_S)
    reader.join()
    assert not consumer.is_alive() and isinstance(outcome[0], RuntimeError) and "stopped" in str(outcome[0])
