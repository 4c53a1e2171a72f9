"""The row paths fed from the engine's decoded chunks (``make_reader`` -> tf.data, ``petastorm.pytorch.DataLoader``,
``BatchedDataLoader``) against a plain row-by-row reference iteration of a reader made with the same arguments:
element for element (values, dtypes, order under a seed, epochs, shards, drop partitions, shuffle buffers,
transforms, resume), and the engine's ``column_chunks`` itself."""
import numpy as np
import pytest

from adapter_datasets import NUMERIC_FIELDS, write_adapter_dataset
from petastorm import make_batch_reader, make_reader
from petastorm.transform import TransformSpec

TF_FIELDS = [f for f in ("id", "label", "u16", "u32", "flag", "name", "price", "ts", "matrix", "image")]

READER_ARGS = {
    "ordered": dict(shuffle_row_groups=False),
    "shuffled": dict(seed=7, shuffle_rows=True, num_epochs=2),
    "shard": dict(seed=3, cur_shard=1, shard_count=2, shuffle_rows=True),
    "drop_partitions": dict(seed=5, shuffle_row_drop_partitions=2, shuffle_rows=True),
    "buffer": dict(seed=11, shuffle_buffer_size=25, num_epochs=2),
    "dummy_pool": dict(seed=2, reader_pool_type="dummy", shuffle_rows=True),
}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    return write_adapter_dataset(tmp_path_factory.mktemp("fast") / "ds", rows=53, rows_per_group=6, files=3)


def _reference_rows(url, fields, **args):
    with make_reader(url, schema_fields=fields, **args) as reader:
        return list(reader)


def _plus_one(row):
    return dict(row, matrix=row["matrix"] + 1, label=np.int64(row["label"]) * 10)


@pytest.mark.parametrize("case", sorted(READER_ARGS))
def test_column_chunks_are_the_rows_in_order(url, case):
    args = READER_ARGS[case]
    expected = _reference_rows(url, NUMERIC_FIELDS, **args)
    with make_reader(url, schema_fields=NUMERIC_FIELDS, **args) as reader:
        chunks = list(reader.column_chunks())
        assert reader.last_row_consumed
        assert reader.diagnostics["rows_emitted"] == len(expected)
    assert len(chunks) > 1
    for name in NUMERIC_FIELDS:
        joined = np.concatenate([chunk[name] for chunk in chunks])
        assert joined.dtype == np.asarray(getattr(expected[0], name)).dtype
        np.testing.assert_array_equal(joined, np.stack([getattr(row, name) for row in expected]))


def test_column_chunks_with_a_transform_function_and_resume(url):
    spec = TransformSpec(_plus_one, edit_fields=[("label", np.int64, (), False)])
    fields = ["id", "label", "matrix"]
    args = dict(seed=9, shuffle_rows=True, transform_spec=spec)
    expected = _reference_rows(url, fields, **args)
    with make_reader(url, schema_fields=fields, **args) as reader:
        head = [next(reader) for _ in range(8)]
        state = reader.state_dict()
    with make_reader(url, schema_fields=fields, resume_from=state, **args) as reader:
        chunks = list(reader.column_chunks())
    ids = [row.id for row in head] + np.concatenate([c["id"] for c in chunks]).tolist()
    assert ids == [row.id for row in expected]
    matrices = np.concatenate([c["matrix"] for c in chunks])
    np.testing.assert_array_equal(matrices, np.stack([row.matrix for row in expected[8:]]))
    assert np.concatenate([c["label"] for c in chunks]).dtype == np.int64


def test_a_pass_is_read_one_way(url):
    with make_reader(url, schema_fields=["id"]) as reader:
        next(reader)
        with pytest.raises(RuntimeError, match="row by row"):
            next(reader.column_chunks())
    with make_batch_reader(url, schema_fields=["id"]) as reader:
        with pytest.raises(ValueError, match="make_reader"):
            next(reader.column_chunks())


@pytest.mark.parametrize("case", ["ordered", "shuffled", "shard", "buffer"])
def test_tf_dataset_of_a_row_reader_equals_the_row_by_row_elements(url, case):
    tf = pytest.importorskip("tensorflow")
    from petastorm.tf_utils import _field_targets, _sanitize_tuple, make_petastorm_dataset

    args = READER_ARGS[case]
    with make_reader(url, schema_fields=TF_FIELDS, **args) as reader:
        targets = _field_targets(reader.schema)
        expected = [_sanitize_tuple(row, targets) for row in reader]
    with make_reader(url, schema_fields=TF_FIELDS, **args) as reader:
        dataset = make_petastorm_dataset(reader)
        assert dataset.element_spec.matrix.shape == (2, 3) and dataset.element_spec.u16.dtype == tf.int32
        elements = list(dataset)
    assert len(elements) == len(expected)
    for got, want in zip(elements, expected):
        for name in TF_FIELDS:
            value = getattr(want, name)  # what tf.data makes of the row-by-row value
            np.testing.assert_array_equal(getattr(got, name).numpy(), value.encode() if isinstance(value, str) else value)


def test_tf_batches_of_a_row_reader(url):
    tf = pytest.importorskip("tensorflow")
    from petastorm.tf_utils import make_petastorm_dataset

    expected = _reference_rows(url, NUMERIC_FIELDS, shuffle_row_groups=False)
    images = np.stack([row.image for row in expected])
    with make_reader(url, schema_fields=NUMERIC_FIELDS, shuffle_row_groups=False, num_epochs=2) as reader:
        rows = make_petastorm_dataset(reader)
        batched = rows.batch(8)
        assert batched.element_spec.image.shape.as_list() == [None, 4, 5, 3]
        batches = list(batched)
    assert [len(b.id) for b in batches] == [8] * 13 + [2]  # 106 rows: batches span chunks and epochs
    np.testing.assert_array_equal(np.concatenate([b.image.numpy() for b in batches]), np.concatenate([images] * 2))
    with make_reader(url, schema_fields=NUMERIC_FIELDS, shuffle_row_groups=False) as reader:
        dropped = make_petastorm_dataset(reader).batch(8, drop_remainder=True)
        assert dropped.element_spec.matrix.shape.as_list() == [8, 2, 3]
        assert [len(b.id) for b in dropped] == [8] * 6
    with make_reader(url, schema_fields=NUMERIC_FIELDS, shuffle_row_groups=False) as reader:
        direct = list(make_petastorm_dataset(reader, batch_size=10, drop_last=True))
        assert [b.id.numpy().tolist() for b in direct] == [list(range(i, i + 10)) for i in range(0, 50, 10)]
    with make_reader(url, schema_fields=NUMERIC_FIELDS, seed=1, shuffle_row_groups=False) as reader:
        shuffled = list(make_petastorm_dataset(reader).shuffle(16, seed=2).batch(8, num_parallel_calls=2))
        ids = np.concatenate([b.id.numpy() for b in shuffled])
        assert sorted(ids.tolist()) == list(range(53)) and shuffled[0].u16.dtype == tf.int32


def _collated_reference(rows, batch_size):
    from petastorm.pytorch import _sanitize_pytorch_types, decimal_friendly_collate

    dicts = []
    for row in rows:
        values = row._asdict()
        _sanitize_pytorch_types(values)
        dicts.append(values)
    return [decimal_friendly_collate(dicts[i:i + batch_size]) for i in range(0, len(dicts), batch_size)]


@pytest.mark.parametrize("case", ["ordered", "shuffled", "shard", "drop_partitions"])
def test_torch_dataloader_of_a_row_reader_collates_the_same_batches(url, case):
    pytest.importorskip("torch")
    from petastorm.pytorch import DataLoader

    args = READER_ARGS[case]
    expected = _collated_reference(_reference_rows(url, NUMERIC_FIELDS, **args), 7)
    with make_reader(url, schema_fields=NUMERIC_FIELDS, **args) as reader:
        batches = list(DataLoader(reader, batch_size=7))
    assert len(batches) == len(expected)
    for got, want in zip(batches, expected):
        assert list(got) == list(want)
        for name in NUMERIC_FIELDS:
            assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape
            assert bool((got[name] == want[name]).all())


def test_torch_dataloader_of_a_batch_reader_and_a_shuffle_buffer(url):
    pytest.importorskip("torch")
    from petastorm.pytorch import BatchedDataLoader, DataLoader

    expected = _collated_reference(_reference_rows(url, NUMERIC_FIELDS, shuffle_row_groups=False), 10)
    with make_batch_reader(url, schema_fields=NUMERIC_FIELDS, shuffle_row_groups=False) as reader:
        batches = list(DataLoader(reader, batch_size=10))
    assert [b["id"].tolist() for b in batches] == [b["id"].tolist() for b in expected]
    assert batches[0]["u16"].dtype == expected[0]["u16"].dtype
    for loader_class in (DataLoader, BatchedDataLoader):
        with make_reader(url, schema_fields=NUMERIC_FIELDS, seed=1) as reader:
            shuffled = list(loader_class(reader, batch_size=10, shuffling_queue_capacity=20, seed=4))
        ids = np.concatenate([b["id"].numpy() for b in shuffled])
        assert sorted(ids.tolist()) == list(range(53)) and ids.tolist() != sorted(ids.tolist())
        assert [len(b["id"]) for b in shuffled][:5] == [10] * 5


def test_a_user_collate_fn_still_gets_row_dicts(url):
    pytest.importorskip("torch")
    from petastorm.pytorch import DataLoader

    seen = []

    def collate(rows):
        seen.append(rows)
        return len(rows)

    with make_reader(url, schema_fields=["id", "matrix"], shuffle_row_groups=False) as reader:
        sizes = list(DataLoader(reader, batch_size=20, collate_fn=collate))
    assert sizes == [20, 20, 13] and isinstance(seen[0][0], dict) and seen[0][0]["id"] == 0
