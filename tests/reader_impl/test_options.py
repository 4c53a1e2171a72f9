"""petastorm.reader_impl.options: ReaderOptions normalises the public arguments and names what is wrong."""
import dataclasses
import multiprocessing
import re

import pytest

from petastorm.ngram import NGram
from petastorm.reader_impl.options import DEFAULT_WORKER_TIMEOUT_S, POOL_TYPES, ReaderOptions, pool_settings
from petastorm.transform import TransformSpec
from petastorm.workers_pool.dummy_pool import DummyPool
from petastorm.workers_pool.thread_pool import ThreadPool


def _ngram():
    return NGram({0: ["a"], 1: ["a"]}, delta_threshold=1, timestamp_field="a")


def test_defaults():
    options = ReaderOptions(batched=False)
    assert (options.reader_pool_type, options.workers_count, options.results_queue_size) == ("thread", 10, 50)
    assert options.worker_timeout == DEFAULT_WORKER_TIMEOUT_S and options.ngram is None
    assert options.cache_args == ("null", None, None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers_count = 2


@pytest.mark.parametrize("kind", ["threads", "Thread", None, 3])
def test_unknown_pool_type_lists_the_known_ones(kind):
    with pytest.raises(ValueError, match=rf"Unknown reader_pool_type {re.escape(repr(kind))}; expected one of "
                                         r"\('thread', 'process', 'dummy'\) or a pool object"):
        ReaderOptions(batched=False, reader_pool_type=kind)
    assert POOL_TYPES == ("thread", "process", "dummy")


@pytest.mark.parametrize("name", ["workers_count", "results_queue_size"])
@pytest.mark.parametrize("value", [0, -1, True, 2.0, "4", None])
def test_counts_must_be_positive_ints(name, value):
    with pytest.raises(ValueError, match=f"^{name} must be a positive int, got {re.escape(repr(value))}$"):
        ReaderOptions(batched=False, **{name: value})


@pytest.mark.parametrize("fields", ["id", 5, "^id$"])
def test_schema_fields_must_be_an_iterable_or_an_ngram(fields):
    with pytest.raises(ValueError, match="schema_fields must be None, an NGram, or an iterable of UnischemaField "
                                         rf"objects and/or regular expressions, got {re.escape(repr(fields))}"):
        ReaderOptions(batched=False, schema_fields=fields)


def test_schema_fields_that_are_accepted():
    assert ReaderOptions(batched=True, schema_fields=["id", "na.*"]).schema_fields == ["id", "na.*"]
    assert ReaderOptions(batched=True, schema_fields=("id",)).schema_fields == ("id",)
    ngram = _ngram()
    assert ReaderOptions(batched=False, schema_fields=ngram).ngram is ngram


def test_ngram_only_in_make_reader_and_without_a_transform():
    with pytest.raises(ValueError, match="NGram is not supported by make_batch_reader; use make_reader"):
        ReaderOptions(batched=True, schema_fields=_ngram())
    with pytest.raises(NotImplementedError, match="transform_spec is not supported together with an NGram"):
        ReaderOptions(batched=False, schema_fields=_ngram(), transform_spec=TransformSpec(lambda row: row))


@pytest.mark.parametrize("cache_type", ["disk", "local_disk", ""])
def test_unknown_cache_type_lists_the_known_ones(cache_type):
    with pytest.raises(ValueError, match=rf"Unknown cache_type {re.escape(repr(cache_type))}; expected None, "
                                         r"'null' or 'local-disk'"):
        ReaderOptions(batched=False, cache_type=cache_type)


@pytest.mark.parametrize("cache_type", [None, "null", "local-disk"])
def test_known_cache_types(cache_type):
    options = ReaderOptions(batched=False, cache_type=cache_type, cache_location="/tmp/c", cache_size_limit=10)
    assert options.cache_args == (cache_type, "/tmp/c", 10, None, None)


@pytest.mark.parametrize("timeout", [0, -1.5, True, "60"])
def test_worker_timeout_must_be_a_positive_number_or_none(timeout):
    with pytest.raises(ValueError, match=rf"^worker_timeout must be a positive number of seconds or None, "
                                         rf"got {re.escape(repr(timeout))}$"):
        ReaderOptions(batched=False, worker_timeout=timeout)


@pytest.mark.parametrize("timeout", [None, 0.25, 30])
def test_worker_timeouts_that_are_accepted(timeout):
    assert ReaderOptions(batched=False, worker_timeout=timeout).worker_timeout == timeout


def test_a_pool_object_sets_the_pool_kind_and_its_settings():
    options = ReaderOptions.from_arguments(True, reader_pool_type=ThreadPool(3, results_queue_size=7),
                                           workers_count=10, results_queue_size=50)
    assert (options.batched, options.reader_pool_type, options.workers_count, options.results_queue_size) == \
        (True, "thread", 3, 7)
    assert pool_settings(DummyPool(), 4, 9)[0] == "dummy"
    assert pool_settings("process", 4, 9) == ("process", 4, 9)


def test_from_arguments_validates_too():
    with pytest.raises(ValueError, match="workers_count must be a positive int, got 0"):
        ReaderOptions.from_arguments(False, workers_count=0)
    with pytest.raises(TypeError, match="no_such_option"):
        ReaderOptions.from_arguments(False, no_such_option=1)


def _process_pool_error(queue):
    try:
        ReaderOptions(batched=False, reader_pool_type="process")
        queue.put(None)
    except ValueError as e:
        queue.put(str(e))


def test_a_process_pool_is_refused_inside_a_daemonic_process():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_process_pool_error, args=(queue,), daemon=True)
    child.start()
    message = queue.get(timeout=30)
    child.join(timeout=30)
    assert message is not None and "cannot start worker processes here: this is a daemonic process" in message
    assert "Use reader_pool_type='thread'" in message
    assert ReaderOptions(batched=False, reader_pool_type="process").reader_pool_type == "process"
