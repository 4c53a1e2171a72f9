"""The original's generic worker pools, serializers, worker modules and benchmark names (petastorm 0.13.1 API),
run for real on the engine's pools."""
import collections
import inspect
import json
import os
import queue
import pickle
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from petastorm.workers_pool import EmptyResultError, TimeoutWaitingForResultError, VentilatedItemProcessedMessage
from petastorm.workers_pool.dummy_pool import DummyPool
from petastorm.workers_pool.process_pool import ProcessPool
from petastorm.workers_pool.thread_pool import ThreadPool
from petastorm.workers_pool.ventilator import ConcurrentVentilator
from petastorm.workers_pool.worker_base import WorkerBase

SURFACE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "petastorm-0.13.1-surface.json")


class TwoResultsWorker(WorkerBase):
    """Publishes two results per item: 10 * value and 10 * value + 1."""

    def process(self, value, delay=0.0):
        time.sleep(delay)
        self.publish_func(10 * value)
        self.publish_func(10 * value + 1)


class IdentityWorker(WorkerBase):
    def process(self, value):
        self.publish_func((self.worker_id, self.args, value))


class FailingWorker(WorkerBase):
    def process(self, value):
        if value == 3:
            raise ValueError("cannot process item 3")
        self.publish_func(value)


class ShutdownMarkerWorker(WorkerBase):
    def process(self, value):
        self.publish_func(value)

    def shutdown(self):
        with open(os.path.join(self.args, f"shutdown-{self.worker_id}-{os.getpid()}"), "w") as f:
            f.write("done")


class TableWorker(WorkerBase):
    def process(self, value):
        self.publish_func(pa.table({"x": [value, value + 1], "s": ["a", "b"]}))


POOLS = {
    "thread": lambda: ThreadPool(3),
    "process": lambda: ProcessPool(2),
    "dummy": lambda: DummyPool(),
}


def _drain(pool):
    results = []
    while True:
        try:
            results.append(pool.get_results())
        except EmptyResultError:
            return results


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_pool_with_concurrent_ventilator(kind):
    pool = POOLS[kind]()
    items = [{"value": i} for i in range(12)]
    ventilator = ConcurrentVentilator(pool.ventilate, items, iterations=3, randomize_item_order=True,
                                      random_seed=7, max_ventilation_queue_size=4)
    pool.start(TwoResultsWorker, ventilator=ventilator)
    try:
        results = _drain(pool)
        expected = [10 * i + k for i in range(12) for k in (0, 1)] * 3
        assert collections.Counter(results) == collections.Counter(expected)
        with pytest.raises(EmptyResultError):
            pool.get_results()
        assert ventilator.completed()
    finally:
        pool.stop()
        pool.join()


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_worker_exception_propagates(kind):
    pool = POOLS[kind]()
    pool.start(FailingWorker)
    for value in range(6):
        pool.ventilate(value)
    with pytest.raises(ValueError, match="cannot process item 3"):
        _drain(pool)
    pool.join()


@pytest.mark.parametrize("kind", sorted(POOLS))
def test_worker_ids_args_and_manual_ventilation(kind):
    pool = POOLS[kind]()
    pool.start(IdentityWorker, {"setting": 1})
    try:
        for value in range(8):
            pool.ventilate(value)
        results = [pool.get_results() for _ in range(8)]
        with pytest.raises(EmptyResultError):
            pool.get_results()
        assert sorted(value for _, _, value in results) == list(range(8))
        assert all(args == {"setting": 1} for _, args, _ in results)
        assert {worker_id for worker_id, _, _ in results} <= set(range(pool.workers_count))
        pool.ventilate(100)  # ventilating again makes results available again
        assert pool.get_results()[2] == 100
    finally:
        pool.stop()
        pool.join()


def test_thread_pool_returns_results_in_ventilation_order_unless_shuffled():
    delays = [0.03, 0.0, 0.02, 0.0, 0.01, 0.0]
    pool = ThreadPool(3)
    pool.start(TwoResultsWorker)
    for i, delay in enumerate(delays):
        pool.ventilate(i, delay=delay)
    assert _drain(pool) == [10 * i + k for i in range(len(delays)) for k in (0, 1)]
    pool.stop()
    pool.join()
    unordered = ThreadPool(2, shuffle_rows=True)
    unordered.start(TwoResultsWorker)
    for i, delay in enumerate(delays):
        unordered.ventilate(i, delay=delay)
    assert sorted(_drain(unordered)) == sorted(10 * i + k for i in range(len(delays)) for k in (0, 1))
    unordered.stop()
    unordered.join()


def test_stop_join_with_endless_ventilator_and_no_reuse():
    pool = ThreadPool(2)
    ventilator = ConcurrentVentilator(pool.ventilate, [{"value": i} for i in range(5)], iterations=None)
    pool.start(TwoResultsWorker, ventilator=ventilator)
    assert len([pool.get_results() for _ in range(40)]) == 40
    stopper = threading.Thread(target=lambda: (pool.stop(), pool.join()))
    stopper.start()
    stopper.join(timeout=60)
    assert not stopper.is_alive(), "stop() + join() did not return with an endless ventilator"
    assert ventilator.completed()
    pool.ventilate(1)  # ignored after stop
    with pytest.raises(EmptyResultError):
        _drain_one = pool.get_results()  # noqa: F841
    with pytest.raises(RuntimeError, match="cannot be started twice"):
        pool.start(TwoResultsWorker)


def test_process_pool_calls_shutdown_and_reports_diagnostics(tmp_path):
    pool = ProcessPool(2)
    pool.start(ShutdownMarkerWorker, str(tmp_path))
    for value in range(4):
        pool.ventilate(value)
    assert sorted(_drain(pool)) == [0, 1, 2, 3]
    assert pool.diagnostics == {"items_consumed": 4, "items_produced": 4, "items_inprocess": 0,
                                "zmq_copy_buffers": True}
    pool.stop()
    pool.join()
    markers = os.listdir(tmp_path)
    assert markers and all(name.startswith(("shutdown-0-", "shutdown-1-")) for name in markers)


def test_process_pool_unpicklable_args_and_custom_serializer():
    from petastorm.reader_impl.arrow_table_serializer import ArrowTableSerializer

    with pytest.raises(pickle.PicklingError, match="must be picklable"):
        ProcessPool(1).start(IdentityWorker, threading.Lock())
    pool = ProcessPool(1, serializer=ArrowTableSerializer())
    pool.start(TableWorker)
    try:
        pool.ventilate(5)
        table = pool.get_results()
        assert isinstance(table, pa.Table) and table.to_pydict() == {"x": [5, 6], "s": ["a", "b"]}
    finally:
        pool.stop()
        pool.join()


def test_pool_attributes_for_make_reader():
    assert (ThreadPool(4, results_queue_size=7).engine_kind, ThreadPool(4).workers_count,
            ThreadPool(4, results_queue_size=7).results_queue_size) == ("thread", 4, 7)
    assert (ProcessPool(3).engine_kind, ProcessPool(3).workers_count, ProcessPool(3).results_queue_size) == \
        ("process", 3, 50)
    assert (DummyPool().engine_kind, DummyPool(5).workers_count, DummyPool().results_queue_size) == ("dummy", 1, 50)
    assert ThreadPool(2).diagnostics == {"output_queue_size": 0} and DummyPool().diagnostics == {}
    assert issubclass(EmptyResultError, RuntimeError) and issubclass(TimeoutWaitingForResultError, RuntimeError)
    assert VentilatedItemProcessedMessage() is not None


def test_ventilator_validation_and_seeded_order():
    with pytest.raises(ValueError, match="iterations"):
        ConcurrentVentilator(print, [{}], iterations=0)
    with pytest.raises(ValueError, match="list of dicts"):
        ConcurrentVentilator(print, [1, 2])

    def order(seed):
        ventilated = queue.Queue()
        ventilator = ConcurrentVentilator(lambda value: ventilated.put(value), [{"value": i} for i in range(20)],
                                          iterations=2, randomize_item_order=True, random_seed=seed)
        ventilator.start()
        seen = []
        for _ in range(40):
            seen.append(ventilated.get(timeout=60))
            ventilator.processed_item()
        ventilator.stop()
        assert ventilator.completed() and ventilated.empty()
        return seen

    first = order(3)
    assert first == order(3) and sorted(first) == sorted(list(range(20)) * 2) and first[:20] != list(range(20))
    assert ConcurrentVentilator(print, []).completed()


def test_serializers_round_trip():
    from petastorm.reader_impl.arrow_table_serializer import ArrowTableSerializer
    from petastorm.reader_impl.pickle_serializer import PickleSerializer

    value = {"a": np.arange(5), "b": ["x", None]}
    restored = PickleSerializer().deserialize(PickleSerializer().serialize(value))
    assert restored["b"] == ["x", None] and np.array_equal(restored["a"], value["a"])
    table = pa.table({"i": [1, 2, 3], "l": [[1.0], [2.0], [3.0]], "s": ["a", "b", None]})
    serializer = ArrowTableSerializer()
    assert serializer.deserialize(serializer.serialize(table)).equals(table)
    assert serializer.deserialize(serializer.serialize(table).to_pybytes()).equals(table)


def _schema():
    from petastorm.unischema import Unischema, UnischemaField

    return Unischema("S", [UnischemaField("i", np.int64, (), None, False),
                           UnischemaField("s", np.str_, (), None, False),
                           UnischemaField("m", np.float32, (2, 2), None, False)])


def test_convert_arrow_table_to_numpy_dict():
    from petastorm.arrow_reader_worker import convert_arrow_table_to_numpy_dict

    table = pa.table({"i": pa.array([1, 2], pa.int64()), "s": ["ab", "c"],
                      "m": pa.array([[1, 2, 3, 4], [5, 6, 7, 8]], pa.list_(pa.float32()))})
    result = convert_arrow_table_to_numpy_dict(table, _schema())
    assert list(result) == ["i", "s", "m"]
    assert result["i"].dtype == np.int64 and result["i"].tolist() == [1, 2]
    assert result["s"].dtype.kind == "U" and result["s"].tolist() == ["ab", "c"]
    assert result["m"].shape == (2, 2, 2) and result["m"][1, 1, 0] == 7
    ragged = pa.table({"m": pa.array([[1.0], [2.0, 3.0]], pa.list_(pa.float32()))})
    with pytest.raises(RuntimeError, match="same length"):
        convert_arrow_table_to_numpy_dict(ragged, _schema())


def test_results_queue_readers_and_unavailable_workers():
    from petastorm.arrow_reader_worker import ArrowReaderWorker, ArrowReaderWorkerResultsQueueReader
    from petastorm.py_dict_reader_worker import PyDictReaderWorker, PyDictReaderWorkerResultsQueueReader
    from petastorm.unischema import Unischema, UnischemaField

    class RowsWorker(WorkerBase):
        def process(self, value):
            self.publish_func([{"i": value, "s": "x", "m": np.zeros((2, 2))}, {"i": value + 1, "s": "y",
                                                                                  "m": np.ones((2, 2))}])

    pool = DummyPool()
    pool.start(RowsWorker)
    pool.ventilate(1)
    reader = PyDictReaderWorker.new_results_queue_reader()
    assert not reader.batched_output
    assert [reader.read_next(pool, _schema(), None).i for _ in range(2)] == [1, 2]
    with pytest.raises(StopIteration):
        reader.read_next(pool, _schema(), None)

    pool = DummyPool()
    pool.start(TableWorker)
    pool.ventilate(4)
    table_schema = Unischema("T", [UnischemaField("x", np.int64, (), None, False),
                                   UnischemaField("s", np.str_, (), None, False)])
    batch = ArrowReaderWorkerResultsQueueReader().read_next(pool, table_schema, None)
    assert batch.x.tolist() == [4, 5] and batch.s.tolist() == ["a", "b"]
    assert ArrowReaderWorker.new_results_queue_reader().batched_output
    with pytest.raises(NotImplementedError, match="make_batch_reader"):
        ArrowReaderWorker(0, print, None)
    with pytest.raises(NotImplementedError, match="make_reader"):
        PyDictReaderWorker(0, print, None)
    assert issubclass(PyDictReaderWorkerResultsQueueReader, object)


def test_exec_in_new_process(tmp_path):
    from petastorm.workers_pool.exec_in_new_process import exec_in_new_process

    target = tmp_path / "out.txt"

    def write(path, text, suffix=""):
        with open(path, "w") as f:
            f.write(text + suffix)

    process = exec_in_new_process(write, str(target), "hello", suffix="!")
    assert process.wait(timeout=60) == 0
    assert target.read_text() == "hello!"
    assert not [name for name in os.listdir(tmp_path) if name.endswith("runnable")]


def test_benchmark_names_and_reader_throughput_signature():
    from petastorm.benchmark import cli, dummy_reader, throughput

    for name in ("DummyPool", "PickleSerializer", "ProcessPool", "ThreadPool", "division",
                 "get_schema_from_dataset_url", "make_reader", "match_unischema_fields", "tf_tensors",
                 "BenchmarkResult", "ReadMethod", "WorkerPoolType", "logger", "reader_throughput"):
        assert hasattr(throughput, name), name
    for name in ("main", "reader_throughput", "ReadMethod", "WorkerPoolType", "logger", "division",
                 "print_function"):
        assert hasattr(cli, name), name
    with open(SURFACE) as f:
        original = json.load(f)["petastorm.benchmark.throughput"]["names"]["reader_throughput"]["params"]
    params = list(inspect.signature(throughput.reader_throughput).parameters.values())
    assert [p.name for p in params[:len(original)]] == original
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[len(original):])
    assert str(throughput.WorkerPoolType.NONE) == "dummy" and throughput.WorkerPoolType("none") is \
        throughput.WorkerPoolType.NONE
    assert cli._parse_args(["file:///x", "-p", "dummy"]).pool_type is throughput.WorkerPoolType.NONE
    batch = next(iter(dummy_reader.DummyReader(batch=4, dim=3)))
    assert batch.test.shape == (4, 3) and batch.test.dtype == np.float32
