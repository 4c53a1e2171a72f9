"""petastorm.tf_utils on real TensorFlow: types, static shapes, values, epochs, shuffling, sharding, nulls, Keras fit,
TF1 graph tensors and NGram-shaped readers."""
import collections
import decimal
import warnings

import numpy as np
import pytest

from adapter_datasets import EPOCH, expected_row, write_adapter_dataset, write_tensor_dataset
from petastorm import make_batch_reader, make_reader
from petastorm.predicates import in_lambda

ROWS = 50


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf_module

    return tf_module


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    return write_adapter_dataset(tmp_path_factory.mktemp("tf") / "ds", rows=ROWS)


@pytest.fixture(scope="module")
def tensor_url(tmp_path_factory):
    return write_tensor_dataset(tmp_path_factory.mktemp("tf_tensor") / "ds", rows=60)


def _ns(dt):
    return int((np.datetime64(dt, "ns") - np.datetime64("1970-01-01", "ns")).astype(np.int64))


def test_row_dataset_types_shapes_and_values(tf, url):
    from petastorm.tf_utils import make_petastorm_dataset

    with make_reader(url, shuffle_row_groups=False) as reader:
        dataset = make_petastorm_dataset(reader)
        spec = dataset.element_spec
        assert spec.u16.dtype == tf.int32 and spec.u32.dtype == tf.int64
        assert spec.price.dtype == tf.string and spec.name.dtype == tf.string and spec.ts.dtype == tf.int64
        assert spec.flag.dtype == tf.bool and spec.image.dtype == tf.uint8
        assert spec.matrix.shape.as_list() == [2, 3] and spec.image.shape.as_list() == [4, 5, 3]
        assert spec.ragged.shape.as_list() == [None] and spec.id.shape.as_list() == []
        rows = list(dataset)
    assert len(rows) == ROWS
    for row in rows:
        expected = expected_row(int(row.id))
        assert int(row.label) == expected["label"]
        assert int(row.u16) == expected["u16"] and int(row.u32) == expected["u32"]
        assert bool(row.flag) == expected["flag"]
        assert row.name.numpy().decode() == expected["name"]
        assert decimal.Decimal(row.price.numpy().decode()) == expected["price"]
        assert int(row.ts) == _ns(expected["ts"])
        np.testing.assert_array_equal(row.matrix.numpy(), expected["matrix"])
        np.testing.assert_array_equal(row.image.numpy(), expected["image"])
        np.testing.assert_array_equal(row.ragged.numpy(), expected["ragged"])
    assert sorted(int(r.id) for r in rows) == list(range(ROWS))


def test_batched_reader_one_element_per_row_group(tf, url):
    from petastorm.tf_utils import make_petastorm_dataset

    with make_batch_reader(url, shuffle_row_groups=False, schema_fields=["id", "matrix", "u16", "ts"]) as reader:
        dataset = make_petastorm_dataset(reader)
        assert dataset.element_spec.matrix.shape.as_list() == [None, 2, 3]
        batches = list(dataset)
    assert [len(b.id) for b in batches] == [10, 10, 5, 10, 10, 5]
    assert batches[0].u16.dtype == tf.int32
    np.testing.assert_array_equal(batches[0].ts.numpy(), [_ns(EPOCH) + i * 10**9 for i in range(10)])
    np.testing.assert_array_equal(np.concatenate([b.id.numpy() for b in batches]), np.arange(ROWS))


def test_batched_fast_path_batch_size(tf, url):
    from petastorm.tf_utils import make_petastorm_dataset

    fields = ["id", "matrix", "image", "name", "price"]
    with make_batch_reader(url, shuffle_row_groups=False, schema_fields=fields) as reader:
        batches = list(make_petastorm_dataset(reader, batch_size=16))
    assert [len(b.id) for b in batches] == [16, 16, 16, 2]
    ids = np.concatenate([b.id.numpy() for b in batches])
    np.testing.assert_array_equal(ids, np.arange(ROWS))
    images = np.concatenate([b.image.numpy() for b in batches])
    for i in (0, 17, 49):
        np.testing.assert_array_equal(images[i], expected_row(i)["image"])
    assert batches[1].name.numpy()[0] == b"row-16" and batches[1].price.numpy()[0] == b"16.5"
    with make_batch_reader(url, shuffle_row_groups=False, schema_fields=["id"]) as reader:
        assert [len(b.id) for b in make_petastorm_dataset(reader, batch_size=16, drop_last=True)] == [16, 16, 16]


def test_epochs_and_reiteration(tf, tensor_url):
    from petastorm.tf_utils import make_petastorm_dataset

    with make_batch_reader(tensor_url, num_epochs=3, shuffle_row_groups=False) as reader:
        ids = np.concatenate([b.id.numpy() for b in make_petastorm_dataset(reader, batch_size=25)])
    assert len(ids) == 180 and np.bincount(ids).tolist() == [3] * 60
    with make_reader(tensor_url, num_epochs=1) as reader:
        dataset = make_petastorm_dataset(reader)
        assert len(list(dataset)) == 60
        with pytest.warns(UserWarning, match="resets the reader"):
            assert len(list(dataset)) == 60


def test_shuffling_and_sharding(tf, tensor_url):
    from petastorm.tf_utils import make_petastorm_dataset

    def ids(**kwargs):
        with make_batch_reader(tensor_url, **kwargs) as reader:
            return np.concatenate([b.id.numpy() for b in make_petastorm_dataset(reader)]).tolist()

    ordered = ids(shuffle_row_groups=False)
    assert ordered == list(range(60))
    shuffled = ids(shuffle_row_groups=True, shuffle_rows=True, seed=3)
    assert sorted(shuffled) == ordered and shuffled != ordered
    shards = [ids(shuffle_row_groups=False, cur_shard=s, shard_count=3) for s in range(3)]
    assert sorted(sum(shards, [])) == ordered
    assert all(set(a).isdisjoint(b) for i, a in enumerate(shards) for b in shards[i + 1:])


def test_nulls_are_reported_with_the_field_name(tf, tmp_path):
    from petastorm.tf_utils import make_petastorm_dataset

    url = write_tensor_dataset(tmp_path / "nulls", rows=20, nullable_y=True)
    with make_reader(url, shuffle_row_groups=False) as reader:
        with pytest.raises(Exception, match="'y'.*null"):
            list(make_petastorm_dataset(reader))
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        with pytest.raises(Exception, match="'y'.*null"):
            list(make_petastorm_dataset(reader))
    not_null = in_lambda(["y"], lambda y: y is not None)
    with make_reader(url, shuffle_row_groups=False, predicate=not_null) as reader:
        assert len(list(make_petastorm_dataset(reader))) == 19


@pytest.mark.slow
def test_keras_fit_consumes_dataset(tf, tensor_url):
    import keras

    from petastorm.tf_utils import make_petastorm_dataset

    keras.utils.set_random_seed(0)
    with make_batch_reader(tensor_url, num_epochs=None, shuffle_row_groups=False) as reader:
        dataset = make_petastorm_dataset(reader, batch_size=20).map(lambda b: (b.x, b.y % 2))
        model = keras.Sequential([keras.Input((3, 4)), keras.layers.Flatten(), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(dataset, steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_tf_tensors_graph_mode(tf, tensor_url):
    from petastorm.tf_utils import tf_tensors

    v1 = tf.compat.v1
    with tf.Graph().as_default():
        with make_reader(tensor_url, shuffle_row_groups=False) as reader:
            tensors = tf_tensors(reader)
            assert tensors.x.shape.as_list() == [3, 4] and tensors.x.dtype == tf.float32
            with v1.Session() as session:
                rows = [session.run(tensors) for _ in range(5)]
    assert [int(r.id) for r in rows] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(rows[3].x, np.full((3, 4), 3, np.float32))


def test_tf_tensors_shuffling_queue(tf, tensor_url):
    from petastorm.tf_utils import RANDOM_SHUFFLING_QUEUE_SIZE, tf_tensors

    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        with make_reader(tensor_url, shuffle_row_groups=False, num_epochs=None) as reader:
            tensors = tf_tensors(reader, shuffling_queue_capacity=20, min_after_dequeue=10)
            assert tensors.x.shape.as_list() == [3, 4]
            graph.get_operation_by_name(RANDOM_SHUFFLING_QUEUE_SIZE)
            with v1.Session() as session:
                coordinator = v1.train.Coordinator()
                threads = v1.train.start_queue_runners(sess=session, coord=coordinator)
                ids = [int(session.run(tensors.id)) for _ in range(30)]
                coordinator.request_stop()
                reader.stop()
                coordinator.join(threads, stop_grace_period_secs=5, ignore_live_threads=True)
    assert ids != sorted(ids) and all(0 <= i < 60 for i in ids)
    with make_batch_reader(tensor_url) as reader:
        with pytest.raises(ValueError, match="batched_output"):
            tf_tensors(reader, shuffling_queue_capacity=10)


class _FakeNGram:
    """The part of the NGram interface the adapters use: ``fields`` by timestep and per-timestep schemas."""

    def __init__(self, fields):
        self.fields = fields

    def get_schema_at_timestep(self, schema, timestep):
        return schema.create_schema_view([f for f in self.fields[timestep]])


class _FakeNGramReader:
    def __init__(self, schema, ngram, items):
        self.schema, self.ngram, self.batched_output = schema, ngram, False
        self._items, self.last_row_consumed = iter(items), False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._items)
        except StopIteration:
            self.last_row_consumed = True
            raise


def test_ngram_elements_are_dicts_by_timestep(tf):
    from adapter_datasets import TensorSchema

    from petastorm.tf_utils import make_petastorm_dataset, tf_tensors

    ngram = _FakeNGram({0: [TensorSchema.id, TensorSchema.x], 1: [TensorSchema.id]})
    view0 = ngram.get_schema_at_timestep(TensorSchema, 0)._get_namedtuple()
    view1 = ngram.get_schema_at_timestep(TensorSchema, 1)._get_namedtuple()
    items = [{0: view0(id=np.int64(i), x=np.full((3, 4), i, np.float32)), 1: view1(id=np.int64(i + 1))}
             for i in range(3)]
    dataset = make_petastorm_dataset(_FakeNGramReader(TensorSchema, ngram, items))
    out = list(dataset)
    assert [int(e[1].id) for e in out] == [1, 2, 3]
    assert dataset.element_spec[0].x.shape.as_list() == [3, 4]
    with tf.Graph().as_default():
        tensors = tf_tensors(_FakeNGramReader(TensorSchema, ngram, items))
        with tf.compat.v1.Session() as session:
            first = session.run(tensors)
    assert int(first[0].id) == 0 and int(first[1].id) == 1


def test_unknown_type_is_an_error(tf):
    from petastorm.tf_utils import _numpy_to_tf_dtype

    with pytest.raises(ValueError, match="'f'.*complex"):
        _numpy_to_tf_dtype(np.complex64, "f")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _numpy_to_tf_dtype(np.str_, "s") == tf.string
    assert collections  # keep the import for readers of this file


def test_batched_fast_path_batches_span_row_groups(tf, tmp_path):
    from petastorm.tf_utils import make_petastorm_dataset

    url = write_tensor_dataset(tmp_path / "ds", rows=53, rows_per_group=7)
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        dataset = make_petastorm_dataset(reader, batch_size=16)
        assert dataset.element_spec.x.shape.as_list() == [None, 3, 4]
        batches = list(dataset.prefetch(4))  # all held at once: recycled arrays must not be reused meanwhile
    assert [len(b.id) for b in batches] == [16, 16, 16, 5]
    np.testing.assert_array_equal(np.concatenate([b.id.numpy() for b in batches]), np.arange(53))
    for b in batches:
        np.testing.assert_array_equal(b.x.numpy(), np.broadcast_to(b.id.numpy()[:, None, None], (len(b.id), 3, 4)))
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        seen = []
        for b in make_petastorm_dataset(reader, batch_size=16, drop_last=True).prefetch(2):  # one at a time
            np.testing.assert_array_equal(b.x.numpy()[:, 2, 3], b.id.numpy().astype(np.float32))
            seen.extend(b.id.numpy().tolist())
    assert seen == list(range(48))


def test_autotuning_is_off_and_can_be_turned_back_on(tf, url):
    from petastorm.tf_utils import make_petastorm_dataset

    with make_batch_reader(url, schema_fields=["id"]) as reader:
        dataset = make_petastorm_dataset(reader, batch_size=16)
        assert dataset.options().autotune.enabled is False
        assert dataset.map(lambda b: b.id).options().autotune.enabled is False  # the pipeline built on it too
        options = tf.data.Options()
        options.autotune.enabled = True
        tuned = dataset.with_options(options)
        assert tuned.options().autotune.enabled is True
        assert sum(len(ids) for ids in tuned.map(lambda b: b.id)) == ROWS
