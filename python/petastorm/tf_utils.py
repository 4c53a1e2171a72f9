"""TensorFlow adapters: a ``tf.data.Dataset`` over a Petastorm reader (TF2), and graph tensors (TF1-style code).

TensorFlow is imported when a function here is first called, not when this module is imported.

Types are mapped as in Petastorm 0.13.1: ``uint16`` becomes ``int32``, ``uint32`` becomes ``int64``,
``Decimal`` becomes a string (normalised, e.g. ``'1.5'``), ``datetime64``/dates become ``int64`` nanoseconds since
the Unix epoch, and ``str``/``bytes`` become ``tf.string`` (unicode strings arrive as UTF-8 bytes). TensorFlow has
no null: a null value raises an error naming the field (filter such rows with a predicate first).
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator

import numpy as np

from petastorm._batching import BatchBuffers, rebatch_columns
from petastorm._tf_types import (_NUMPY_TO_TF_NAMES, _date_to_nsec, _datetime_to_ns,  # noqa: F401 - moved names
                                 _field_targets, _null_error, _NullValueError, _numpy_to_tf_dtype, _sanitize_tuple,
                                 _sanitize_value, _signature, _tf, date_to_nsec_from_epoch)

__all__ = ["make_petastorm_dataset", "tf_tensors", "RANDOM_SHUFFLING_QUEUE_SIZE", "date_to_nsec_from_epoch",
           "make_namedtuple_tf_ngram"]

# Name of the op reporting the size of the shuffling queue created by tf_tensors (for diagnostics).
RANDOM_SHUFFLING_QUEUE_SIZE = "random_shuffling_queue_size"

_RESET_READER_WARN = (
    "Iterating a make_petastorm_dataset dataset again resets the reader, which is slow: set the reader's "
    "num_epochs, or use tf.data's cache() before repeat()."
)


def _ngram_timesteps(ngram: Any) -> list:
    return sorted(ngram.fields.keys())


def _ngram_signature(schema: Any, ngram: Any) -> dict:
    return {t: _signature(ngram.get_schema_at_timestep(schema=schema, timestep=t), False)
            for t in _ngram_timesteps(ngram)}


def _reset_if_consumed(reader: Any) -> None:
    if getattr(reader, "last_row_consumed", False):
        warnings.warn(_RESET_READER_WARN, UserWarning)
        reader.reset()


def make_petastorm_dataset(reader: Any, batch_size: int | None = None, drop_last: bool = False) -> Any:
    """A ``tf.data.Dataset`` yielding the reader's items as namedtuples of tensors (TF2, eager or ``tf.function``).

    * ``make_reader`` readers: one element per row, with static shapes from the schema (``None`` for variable
      dimensions). When every field has a fixed shape, the rows enter tf.data as the engine's decoded chunks
      and are split in TensorFlow; a following ``.batch(n)`` (or ``batch_size=n``) re-cuts the chunks in
      TensorFlow (``rebatch``): no Python runs per row.
    * ``make_batch_reader`` readers (the fast path): by default one element per row group, each tensor shaped
      ``(rows, *field_shape)``, as in the original. With ``batch_size`` the row groups are re-cut in numpy into
      batches of exactly ``batch_size`` rows (the last one smaller unless ``drop_last``), which is much faster
      than ``.unbatch().batch(n)`` in TensorFlow.
    * NGram readers: one element per n-gram, a dict ``{timestep: namedtuple}``.

    Autotuning is off (``docs/adapters.md`` says how to turn it back on). Passes: the reader's ``num_epochs``
    (``None``: infinite cardinality); iterating again resets the reader (with a warning). Prefer the reader's
    ``predicate``, ``cur_shard``/``shard_count`` and ``shuffle_*`` options to ``filter``/``shard``/``shuffle`` on
    the dataset: they skip data before it is decoded.

    :param reader: a :class:`petastorm.reader.Reader`.
    :param batch_size: only for batch readers: rows per element.
    :param drop_last: with ``batch_size``, drop a last partial batch.
    """
    tf = _tf()
    schema = reader.schema
    if getattr(reader, "ngram", None):
        return _finished(_ngram_dataset(reader), reader)
    targets = _field_targets(schema)
    batched = bool(reader.batched_output)
    signature = _signature(schema, batched)
    if not batched and _columnar_rows(reader):
        return _rows_from_chunks(reader, targets, batch_size, drop_last)
    if batch_size is not None and not batched:
        dataset = tf.data.Dataset.from_generator(lambda: _rows(reader, targets), output_signature=signature)
        return _finished(dataset.batch(batch_size, drop_remainder=drop_last), reader)
    if batch_size is not None:
        return _finished(_rebatched_dataset(reader, targets, batch_size, drop_last), reader)
    return _finished(tf.data.Dataset.from_generator(lambda: _rows(reader, targets), output_signature=signature),
                     reader)


def _ngram_dataset(reader: Any) -> Any:
    """One element per n-gram: a dict ``{timestep: namedtuple}``."""
    schema, ngram = reader.schema, reader.ngram
    targets = {t: _field_targets(ngram.get_schema_at_timestep(schema=schema, timestep=t))
               for t in _ngram_timesteps(ngram)}

    def ngram_generator() -> Iterator[dict]:
        _reset_if_consumed(reader)
        for item in reader:
            yield {t: _sanitize_tuple(item[t], targets[t]) for t in targets}

    return _tf().data.Dataset.from_generator(ngram_generator, output_signature=_ngram_signature(schema, ngram))


def _rebatched_dataset(reader: Any, targets: dict[str, str], batch_size: int, drop_last: bool) -> Any:
    """A batch reader's row groups re-cut in numpy into batches of ``batch_size`` rows."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    row_type = reader.schema._get_namedtuple()

    def batch_generator() -> Iterator[tuple]:
        _reset_if_consumed(reader)
        columns = (dict(zip(item._fields, _sanitize_tuple(item, targets))) for item in reader)
        # Batches inside a row group are views (strided for fixed-shape NPY cells read in place): each is copied
        # once into a recycled 64-byte aligned array, which TensorFlow wraps without copying it again (it holds
        # the array until the tensor is freed; only then is the array reused). Batches spanning row groups are
        # joined into such arrays too.
        buffers = BatchBuffers()
        for batch in rebatch_columns(columns, batch_size, drop_last, buffers):
            yield row_type(*(buffers.contiguous(batch[name]) for name in row_type._fields))

    return _tf().data.Dataset.from_generator(batch_generator, output_signature=_signature(reader.schema, True))


def _finished(dataset: Any, reader: Any) -> Any:
    """``dataset`` with tf.data's autotuning off and, for a reader without an end (``num_epochs=None``), infinite
    cardinality, so that consumers that check it (``tf_keras``, ``take``/``repeat`` planning) know.

    The reader already reads ahead on its own threads; with the autotuner on, a generator-fed pipeline ran at one
    of two speeds at random, the slower about 35 % below the other (measured: 92,000 against 130,000-150,000
    rows/s of (3, 32, 32) float32 on 2 cores). Re-enable it downstream with ``dataset.with_options(options)``
    where ``options.autotune.enabled = True``."""
    tf = _tf()
    plan = getattr(reader, "plan", None)
    if getattr(reader, "num_epochs", 1) is None and getattr(plan, "segments", True):  # an empty plan ends at once
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _columnar_rows(reader: Any) -> bool:
    """True when a row reader's rows can reach tf.data as column chunks: the engine's reader (not a stand-in)
    and every field of a fixed shape, so that a chunk is a rectangular tensor per field."""
    return hasattr(reader, "column_chunks") and all(None not in tuple(f.shape or ())
                                                    for f in reader.schema.fields.values())


def _rows_from_chunks(reader: Any, targets: dict[str, str], batch_size: int | None, drop_last: bool) -> Any:
    """The rows of a row reader as a dataset: the engine's decoded column chunks enter tf.data whole and are split
    into rows in TensorFlow's C++ (``unbatch``), never per row in Python. Elements, order, dtypes and static shapes
    are those of the row-by-row generator. ``batch(n)`` on the result (and ``batch_size`` here) re-cuts the chunks
    with ``rebatch``, which equals ``unbatch().batch(n)`` and is about twice as fast."""
    tf = _tf()
    row_type = reader.schema._get_namedtuple()

    def chunks() -> Iterator[tuple]:
        _reset_if_consumed(reader)
        buffers = BatchBuffers()  # strided chunk views copied once, into arrays TensorFlow wraps without a copy
        for columns in reader.column_chunks():
            yield row_type(*(buffers.contiguous(v) for v in _sanitize_tuple(row_type(**columns), targets)))

    chunk_dataset = _finished(tf.data.Dataset.from_generator(chunks, output_signature=_signature(reader.schema, True)),
                              reader)
    if batch_size is not None:
        return chunk_dataset.rebatch(batch_size, drop_remainder=drop_last)
    return _rows_dataset(chunk_dataset)


def _rows_dataset(chunk_dataset: Any) -> Any:
    """``chunk_dataset.unbatch()``, as a dataset whose ``batch`` re-cuts the chunks (``rebatch``); the plain
    ``unbatch`` dataset where this TensorFlow lacks the class to build that on."""
    rows = chunk_dataset.unbatch()
    try:
        from tensorflow.python.data.ops.dataset_ops import UnaryUnchangedStructureDataset
    except ImportError:  # pragma: no cover - a TensorFlow without it
        return rows

    class RowsOfChunks(UnaryUnchangedStructureDataset):
        """Rows split from chunks of rows; ``batch(n)`` without parallel options is ``chunks.rebatch(n)``."""

        def __init__(self) -> None:
            super().__init__(rows, rows._variant_tensor)

        def batch(self, batch_size: Any, drop_remainder: bool = False, num_parallel_calls: Any = None,
                  deterministic: Any = None, name: Any = None) -> Any:
            if num_parallel_calls is None and deterministic is None:
                return chunk_dataset.rebatch(batch_size, drop_remainder=drop_remainder, name=name)
            return rows.batch(batch_size, drop_remainder, num_parallel_calls, deterministic, name)

    return RowsOfChunks()


def _rows(reader: Any, targets: dict[str, str]) -> Iterator[tuple]:
    _reset_if_consumed(reader)
    for item in reader:
        yield _sanitize_tuple(item, targets)


def _set_static_shapes(schema: Any, tensors: dict, batched: bool) -> None:
    for name, tensor in tensors.items():
        shape = tuple(schema.fields[name].shape or ())
        tensor.set_shape(((None,) if batched else ()) + shape)


def tf_tensors(reader: Any, shuffling_queue_capacity: int = 0, min_after_dequeue: int = 0) -> Any:
    """Graph tensors fed from the reader, for TF1-style code (``tf.compat.v1``, graph mode, ``Session.run``).

    Returns a namedtuple of tensors (one row, or one row group for a batch reader), or for an NGram reader a dict
    ``{timestep: namedtuple}``. With ``shuffling_queue_capacity > 0`` rows pass through a
    ``tf.compat.v1.RandomShuffleQueue`` (with ``min_after_dequeue``) fed by a queue runner: start it with
    ``tf.compat.v1.train.start_queue_runners``. Running the tensors after the reader is exhausted raises
    ``OutOfRangeError`` (without a queue) as the underlying ``py_func`` raises ``StopIteration``.
    """
    tf = _tf()
    v1 = tf.compat.v1
    if reader.batched_output and shuffling_queue_capacity > 0:
        raise ValueError("shuffling_queue_capacity can not be used with a reader that produces batched_output: each "
                         "batch is a Parquet row group; shuffle rows with the reader's shuffle_rows instead")
    if tf.executing_eagerly():
        raise RuntimeError("tf_tensors builds TF1 graph tensors, but TensorFlow is in eager mode (the TF2 default), "
                           "where Session.run would find an empty graph. Call "
                           "tf.compat.v1.disable_eager_execution() at the start of the program (or build inside "
                           "`with tf.Graph().as_default():`), or use make_petastorm_dataset(reader) in TF2 code")
    schema = reader.schema
    ngram = getattr(reader, "ngram", None)
    if ngram:
        steps = _ngram_timesteps(ngram)
        schemas = {t: ngram.get_schema_at_timestep(schema=schema, timestep=t) for t in steps}
        names = [(t, name) for t in steps for name in schemas[t].fields]
        dtypes = [_numpy_to_tf_dtype(schemas[t].fields[n].numpy_dtype, n) for t, n in names]
        targets = {t: _field_targets(schemas[t]) for t in steps}

        def next_ngram(_: Any) -> list:
            item = next(reader)
            return [_as_numpy(v) for t in steps for v in _sanitize_tuple(item[t], targets[t])]

        flat = v1.py_func(next_ngram, [tf.constant(1)], dtypes, stateful=True)
        if shuffling_queue_capacity > 0:
            flat = _shuffling_queue(shuffling_queue_capacity, min_after_dequeue, dtypes, flat)
        result, i = {}, 0
        for t in steps:
            count = len(schemas[t].fields)
            tensors = dict(zip(schemas[t].fields, flat[i:i + count]))
            i += count
            _set_static_shapes(schemas[t], tensors, False)
            result[t] = schemas[t]._get_namedtuple()(**tensors)
        return result

    targets = _field_targets(schema)
    dtypes = [_numpy_to_tf_dtype(f.numpy_dtype, name) for name, f in schema.fields.items()]

    def next_sample(_: Any) -> list:
        return [_as_numpy(v) for v in _sanitize_tuple(next(reader), targets)]

    flat = v1.py_func(next_sample, [tf.constant(1)], dtypes, stateful=True)
    if shuffling_queue_capacity > 0:
        flat = _shuffling_queue(shuffling_queue_capacity, min_after_dequeue, dtypes, flat)
    tensors = dict(zip(schema.fields, flat))
    _set_static_shapes(schema, tensors, reader.batched_output)
    return schema._get_namedtuple()(**tensors)


def _as_numpy(value: Any) -> Any:
    # py_func converts Python ints to int64 and floats to float64: keep numpy scalars as they are.
    return value if isinstance(value, (np.ndarray, np.generic, bytes)) else np.asarray(value)


def _shuffling_queue(capacity: int, min_after_dequeue: int, dtypes: list, tensors: list) -> list:
    v1 = _tf().compat.v1
    queue = v1.RandomShuffleQueue(capacity, min_after_dequeue, dtypes)
    queue.size(name=RANDOM_SHUFFLING_QUEUE_SIZE)
    v1.train.add_queue_runner(v1.train.QueueRunner(queue, [queue.enqueue(tensors)]))
    return queue.dequeue()


# -- the original's helpers, by their names -----------------------------------------------------------------------

def _numpy_to_tf_dtypes(numpy_dtype: Any) -> Any:
    """The TensorFlow dtype for a numpy scalar type (ValueError when there is none). Warns (``UnicodeWarning``)
    for ``np.str_``: TensorFlow strings are bytes."""
    if numpy_dtype is np.str_:
        warnings.warn("Tensorflow will convert all unicode strings back to bytes type. You may need to decode values.",
                      UnicodeWarning)
    return _numpy_to_tf_dtype(numpy_dtype)


def _sanitize_field_tf_types(sample: Any) -> Any:
    """A namedtuple of the same type with values TensorFlow takes: Decimal as a string, uint16/uint32 arrays as
    int32/int64, dates and datetime64 as int64 nanoseconds from the epoch, unicode as UTF-8 bytes. A None value
    raises (a ``RuntimeError`` that is also a ``ValueError``)."""
    return _sanitize_tuple(sample, dict.fromkeys(sample._fields))


def make_namedtuple_tf_ngram(unischema: Any, ngram: Any, *args: Any, **kargs: Any) -> dict:
    """``{timestep: namedtuple}`` for an n-gram from flat values: ``args`` hold the fields of each timestep in turn
    (in the order of the timestep's schema view), and ``kargs[str(timestep)]`` a dict of keyword values."""
    result = {}
    used = 0
    for timestep in range(min(ngram.fields), max(ngram.fields) + 1):
        view = ngram.get_schema_at_timestep(schema=unischema, timestep=timestep)
        count = len(view.fields)
        result[timestep] = view._get_namedtuple()(*args[used:used + count], **kargs.get(str(timestep), {}))
        used += count
    return result
