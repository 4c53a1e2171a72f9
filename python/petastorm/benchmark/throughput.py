"""``petastorm-throughput``: open a reader on a dataset and measure how many samples per second it delivers.

Same command line as the original's ``petastorm/benchmark/cli.py``::

    petastorm-throughput file:///tmp/ds --field-regex 'image.*' 'id' -w 4 -p thread -m 200 -n 1000 -d python

A *cycle* is one ``next()`` on the reader (one row for ``make_reader``; with ``--batch-reader`` one row group
of ``make_batch_reader``, and the rate is then counted in rows). The measurement runs in a fresh process by
default so that the reported memory belongs to the reader alone.

Read methods live in :data:`READ_METHODS` (``python``, and ``tf``/``tf_dataset`` through
``petastorm.tf_utils``); :func:`register_read_method` adds or replaces one.
"""
from __future__ import annotations, division

import argparse
import copy
import logging
import os
import resource
import sys
import time
import warnings
from collections import namedtuple
from enum import Enum
from typing import Any, Callable

from petastorm._lazy import lazy_module

logger = logging.getLogger(__name__)

__all__ = ["BenchmarkResult", "MemoryInfo", "WorkerPoolType", "ReadMethod", "READ_METHODS", "register_read_method",
           "reader_throughput", "main"]

# Also importable from here, as in the original module: DummyPool, PickleSerializer, ProcessPool, ThreadPool,
# get_schema_from_dataset_url, make_reader, match_unischema_fields, tf_tensors (TensorFlow loads only when used).
# They load on first use, so that ``petastorm-throughput --help`` imports neither the reader engine nor numpy.
_LAZY = {"make_reader": "petastorm.reader",
         "make_batch_reader": "petastorm.reader",
         "get_schema_from_dataset_url": "petastorm.etl.dataset_metadata",
         "PickleSerializer": "petastorm.reader_impl.pickle_serializer",
         "tf_tensors": "petastorm.tf_utils",
         "match_unischema_fields": "petastorm.unischema",
         "DummyPool": "petastorm.workers_pool.dummy_pool",
         "ProcessPool": "petastorm.workers_pool.process_pool",
         "ThreadPool": "petastorm.workers_pool.thread_pool",
         "ProcessPoolExecutor": "concurrent.futures",
         "multiprocessing": "multiprocessing"}
__getattr__, __dir__ = lazy_module(__name__, _LAZY)

_DESCRIPTION = """\
Open a reader on a dataset and measure how many samples per second it delivers.
Same command line as the original's petastorm/benchmark/cli.py, e.g.:

    petastorm-throughput file:///tmp/ds --field-regex 'image.*' 'id' \\
        -w 4 -p thread -m 200 -n 1000 -d python

A cycle is one next() on the reader: one row for make_reader or, with
--batch-reader, one row group of make_batch_reader (the rate is then counted
in rows). The measurement runs in a fresh process by default, so that the
reported memory belongs to the reader alone (--no-spawn measures in this one).

Read methods (-d): 'python', and 'tf' / 'tf_dataset' through
petastorm.tf_utils (needs TensorFlow). More can be added from Python with
petastorm.benchmark.throughput.register_read_method().
"""

BenchmarkResult = namedtuple("BenchmarkResult", ["time_mean", "samples_per_second", "memory_info", "cpu"])
BenchmarkResult.__doc__ = """``time_mean``: seconds per cycle; ``samples_per_second``: rows per second;
``memory_info``: :class:`MemoryInfo` of the measuring process; ``cpu``: CPU time of the process (all its threads)
during the measurement, in percent of one core (worker processes of a process pool are not included)."""

MemoryInfo = namedtuple("MemoryInfo", ["rss", "peak_rss"])
MemoryInfo.__doc__ = "Resident set size now and at its peak, in bytes (from /proc/self/status, else getrusage)."

# If --min-after-dequeue is not given it is this fraction of --shuffling-queue-size (as in the original).
DEFAULT_MIN_AFTER_DEQUEUE_TO_QUEUE_SIZE_RATIO = 0.8


class WorkerPoolType(Enum):
    """The reader's worker pool: threads, processes or none (read in the calling thread; value ``'dummy'`` as in
    the original, ``'none'`` is accepted too)."""

    THREAD = "thread"
    PROCESS = "process"
    NONE = "dummy"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> "WorkerPoolType | None":
        return cls.NONE if value == "none" else None

    @property
    def reader_pool_type(self) -> str:
        """The ``reader_pool_type`` argument of ``make_reader``."""
        return self.value


class ReadMethod(Enum):
    """How samples are pulled: ``next(reader)`` in Python, or through TensorFlow."""

    PYTHON = "python"
    TF = "tf"
    TF_DATASET = "tf_dataset"

    def __str__(self) -> str:
        return self.value


def memory_info() -> MemoryInfo:
    """RSS and peak RSS of this process in bytes."""
    try:
        values = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, amount, _unit = line.split()
                    values[name[:-1]] = int(amount) * 1024
        return MemoryInfo(values["VmRSS"], values["VmHWM"])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak *= 1 if sys.platform == "darwin" else 1024
        return MemoryInfo(peak, peak)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sample_size(sample: Any, batched: bool) -> int:
    if not batched:
        return 1
    first = sample[0] if isinstance(sample, tuple) else next(iter(sample.values()))
    return len(first)


def _time_cycles(cycles: int, work: Callable[[], int], diagnostics: Callable[[], Any] | None = None,
                 report_period: float = 1.0) -> tuple[float, int]:
    """Runs ``work`` (returning the rows it got) ``cycles`` times; returns (seconds, rows)."""
    start = last_report = time.perf_counter()
    rows = last_rows = 0
    for _ in range(cycles):
        rows += work()
        now = time.perf_counter()
        if now - last_report > report_period:
            message = (f"{(rows - last_rows) / (now - last_report):.2f} (mean: {rows / (now - start):.2f}) "
                       "rows/sec")
            if diagnostics is not None:
                message += f" diags: {diagnostics()}"
            logger.debug(message)
            last_report, last_rows = now, rows
    return time.perf_counter() - start, rows


def _measure(warmup_cycles: int, measure_cycles: int, work: Callable[[], int],
             diagnostics: Callable[[], Any] | None = None) -> BenchmarkResult:
    _time_cycles(warmup_cycles, work, diagnostics)
    logger.info("Done warmup")
    cpu_before = _cpu_seconds()
    duration, rows = _time_cycles(measure_cycles, work, diagnostics)
    cpu = 100.0 * (_cpu_seconds() - cpu_before) / duration if duration > 0 else 0.0
    result = BenchmarkResult(time_mean=duration / max(measure_cycles, 1),
                             samples_per_second=rows / duration if duration > 0 else float("inf"),
                             memory_info=memory_info(), cpu=cpu)
    logger.info("Done measuring: %s", result)
    return result


def _python_method(reader: Any, warmup: int, measure: int, shuffling_queue_size: int,
                   min_after_dequeue: int) -> BenchmarkResult:
    batched = reader.batched_output
    return _measure(warmup, measure, lambda: _sample_size(next(reader), batched), lambda: reader.diagnostics)


def _tf_dataset_method(reader: Any, warmup: int, measure: int, shuffling_queue_size: int,
                       min_after_dequeue: int) -> BenchmarkResult:
    try:
        from petastorm.tf_utils import make_petastorm_dataset
    except ImportError as e:
        raise NotImplementedError(f"The tf read methods need petastorm.tf_utils and TensorFlow: {e}") from e
    dataset = make_petastorm_dataset(reader)
    if shuffling_queue_size:
        dataset = dataset.shuffle(shuffling_queue_size)
    iterator = iter(dataset)
    batched = reader.batched_output

    def work() -> int:
        sample = next(iterator)
        return _sample_size(tuple(sample) if not isinstance(sample, dict) else sample, batched)

    return _measure(warmup, measure, work, lambda: reader.diagnostics)


READ_METHODS: dict[str, Callable[..., BenchmarkResult]] = {
    ReadMethod.PYTHON.value: _python_method,
    ReadMethod.TF.value: _tf_dataset_method,
    ReadMethod.TF_DATASET.value: _tf_dataset_method,
}


def register_read_method(name: str, method: Callable[..., BenchmarkResult]) -> None:
    """Adds or replaces a read method: ``method(reader, warmup_cycles, measure_cycles, shuffling_queue_size,
    min_after_dequeue) -> BenchmarkResult``."""
    READ_METHODS[str(name)] = method


def reader_throughput(dataset_url: str, field_regex: Any = None, warmup_cycles_count: int = 300,
                      measure_cycles_count: int = 1000, pool_type: WorkerPoolType = WorkerPoolType.THREAD,
                      loaders_count: int = 3, profile_threads: bool = False,
                      read_method: ReadMethod = ReadMethod.PYTHON, shuffling_queue_size: int = 500,
                      min_after_dequeue: int = 400, reader_extra_args: dict | None = None,
                      spawn_new_process: bool = True, *, pyarrow_serialize: bool = False,
                      batch_reader: bool = False) -> BenchmarkResult:
    """Opens a reader on ``dataset_url`` (``num_epochs=None``) and measures its throughput.

    :param field_regex: regular expressions (whole-name matches) of the fields to read; None reads all.
    :param warmup_cycles_count: cycles read before measuring.
    :param measure_cycles_count: cycles measured.
    :param pool_type: a :class:`WorkerPoolType` (or its string value).
    :param loaders_count: ``workers_count`` of the reader.
    :param profile_threads, pyarrow_serialize: accepted for compatibility; no effect.
    :param read_method: a :class:`ReadMethod` (or a name registered with :func:`register_read_method`).
    :param reader_extra_args: more keyword arguments for the reader.
    :param spawn_new_process: measure in a fresh process (so memory figures are the reader's own).
    :param batch_reader: use ``make_batch_reader`` instead of ``make_reader``.

    The parameters up to ``spawn_new_process`` are the original's, in its order; ``pyarrow_serialize`` and
    ``batch_reader`` are keyword-only additions.
    """
    arguments = copy.deepcopy(locals())
    pool_type = WorkerPoolType(str(pool_type))
    read_method_name = str(read_method)
    if read_method_name not in READ_METHODS:
        raise ValueError(f"Unknown read method {read_method_name!r}; known: {sorted(READ_METHODS)}")
    if spawn_new_process:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from petastorm.benchmark import throughput  # by its module name, also when run as __main__

        arguments["spawn_new_process"] = False
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as executor:
            return executor.submit(throughput.reader_throughput, **arguments).result()

    extra = dict(reader_extra_args or {})
    if field_regex and "schema_fields" not in extra:
        extra["schema_fields"] = [field_regex] if isinstance(field_regex, str) else list(field_regex)
    logger.info("Arguments: %s", locals())
    from petastorm.reader import make_batch_reader, make_reader

    factory = make_batch_reader if batch_reader else make_reader
    with factory(dataset_url, num_epochs=None, reader_pool_type=pool_type.reader_pool_type,
                 workers_count=loaders_count, **extra) as reader:
        return READ_METHODS[read_method_name](reader, warmup_cycles_count, measure_cycles_count,
                                              shuffling_queue_size, min_after_dequeue)


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="petastorm-throughput", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_path", type=str, help="URL of a Petastorm dataset (or any Parquet store with "
                                                       "--batch-reader)")
    parser.add_argument("--field-regex", type=str, nargs="+",
                        help="Regular expressions; only fields whose whole name matches one are read.")
    parser.add_argument("-w", "--workers-count", type=int, default=3, help="Reader workers (threads or processes).")
    parser.add_argument("-p", "--pool-type", type=WorkerPoolType, default=WorkerPoolType.THREAD,
                        choices=list(WorkerPoolType), help="Worker pool of the reader.")
    parser.add_argument("-m", "--warmup-cycles", type=int, default=200,
                        help="Cycles read before measuring (not counted).")
    parser.add_argument("-n", "--measure-cycles", type=int, default=1000, help="Cycles measured.")
    parser.add_argument("--profile-threads", dest="profile_threads", action="store_true",
                        help="Accepted for compatibility; no effect.")
    parser.add_argument("-d", "--read-method", type=str, default=ReadMethod.PYTHON.value,
                        help="'python': next(reader); 'tf' / 'tf_dataset': through a tf.data.Dataset "
                             "(petastorm.tf_utils). Default: python.")
    parser.add_argument("-q", "--shuffling-queue-size", type=int, default=500,
                        help="Size of the shuffling queue used by the tf read methods.")
    parser.add_argument("--min-after-dequeue", type=int, default=None,
                        help="Minimum number of elements in the shuffling queue before one is taken; default "
                             f"{100 * DEFAULT_MIN_AFTER_DEQUEUE_TO_QUEUE_SIZE_RATIO:.0f}%% of "
                             "--shuffling-queue-size.")
    parser.add_argument("--experimental-reader", action="store_true", default=False,
                        help="Accepted for compatibility (the original's ReaderV2 is gone); ignored.")
    parser.add_argument("--experimental-decoders-count", type=int, default=3,
                        help="Accepted for compatibility; ignored.")
    parser.add_argument("--batch-reader", action="store_true", default=False,
                        help="Measure make_batch_reader (a cycle is one batch, the rate counts rows).")
    parser.add_argument("--no-spawn", action="store_true", default=False,
                        help="Measure in this process instead of a fresh one.")
    parser.add_argument("-vv", action="store_true", default=False, help="Sets logging level to DEBUG.")
    parser.add_argument("-v", action="store_true", default=False, help="Sets logging level to INFO.")
    args = parser.parse_args(argv)
    if args.read_method not in READ_METHODS:
        parser.error(f"argument -d/--read-method: invalid choice {args.read_method!r} (choose from "
                     f"{', '.join(sorted(READ_METHODS))})")
    if not args.min_after_dequeue:
        args.min_after_dequeue = int(DEFAULT_MIN_AFTER_DEQUEUE_TO_QUEUE_SIZE_RATIO * args.shuffling_queue_size)
    return args


def _main(argv: list[str]) -> BenchmarkResult:
    logging.basicConfig()
    args = _parse_args(argv)
    if args.v:
        logging.getLogger().setLevel(logging.INFO)
    if args.vv:
        logging.getLogger().setLevel(logging.DEBUG)
    if args.experimental_reader:
        warnings.warn("--experimental-reader is ignored: there is one reader engine")
    results = reader_throughput(args.dataset_path, args.field_regex, warmup_cycles_count=args.warmup_cycles,
                                measure_cycles_count=args.measure_cycles, pool_type=args.pool_type,
                                loaders_count=args.workers_count, profile_threads=args.profile_threads,
                                read_method=args.read_method, shuffling_queue_size=args.shuffling_queue_size,
                                min_after_dequeue=args.min_after_dequeue, spawn_new_process=not args.no_spawn,
                                batch_reader=args.batch_reader)
    logger.info("Done")
    print(f"Average sample read rate: {results.samples_per_second:1.2f} samples/sec; "
          f"RAM {results.memory_info.rss / 2 ** 20:1.2f} MB (rss); CPU {results.cpu:1.2f}%")
    return results


def main() -> None:
    """Entry point of ``petastorm-throughput``."""
    _main(sys.argv[1:])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
