"""petastorm._batching: re-cutting dicts of columns into fixed-size batches, and rows into columns.

(Spanning batches over strided views and the recycled buffers are in tests/test_adapter_batching.py.)"""
import numpy as np
import pytest

import collections

from petastorm._batching import item_columns, item_rows, rebatch_columns, rows_to_columns


def _columns(start, stop):
    ids = np.arange(start, stop)
    return {"id": ids, "name": np.array([f"r{i}" for i in ids], dtype=object), "v": np.stack([ids, -ids], axis=1)}


def _ids(batches):
    return [batch["id"].tolist() for batch in batches]


def test_batches_have_batch_size_rows_and_the_rest_last():
    batches = list(rebatch_columns([_columns(0, 3), _columns(3, 10)], 4))
    assert _ids(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert _ids(rebatch_columns([_columns(0, 3), _columns(3, 10)], 4, drop_last=True)) == [[0, 1, 2, 3],
                                                                                              [4, 5, 6, 7]]


def test_every_column_is_cut_alike():
    for batch in rebatch_columns([_columns(0, 2), _columns(2, 3), _columns(3, 9)], 4):
        assert list(batch) == ["id", "name", "v"]
        assert batch["name"].tolist() == [f"r{i}" for i in batch["id"]]
        assert batch["name"].dtype == object
        assert batch["v"].tolist() == [[i, -i] for i in batch["id"]]


def test_an_exact_multiple_has_no_partial_batch():
    assert _ids(rebatch_columns([_columns(0, 6), _columns(6, 8)], 2)) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_a_batch_larger_than_the_input_is_the_whole_input_unless_dropped():
    assert _ids(rebatch_columns([_columns(0, 2), _columns(2, 5)], 100)) == [[0, 1, 2, 3, 4]]
    assert list(rebatch_columns([_columns(0, 2), _columns(2, 5)], 100, drop_last=True)) == []


def test_empty_inputs_yield_nothing_and_are_skipped():
    assert list(rebatch_columns([], 3)) == []
    assert list(rebatch_columns([{}, _columns(0, 0)], 3)) == []
    assert _ids(rebatch_columns([_columns(0, 2), _columns(2, 2), _columns(2, 3)], 3)) == [[0, 1, 2]]


def test_batch_size_one():
    assert _ids(rebatch_columns([_columns(0, 3)], 1)) == [[0], [1], [2]]


@pytest.mark.parametrize("batch_size", [0, -2])
def test_batch_size_must_be_positive(batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be positive, got {batch_size}"):
        list(rebatch_columns([_columns(0, 3)], batch_size))


def test_cells_of_different_shapes_name_the_field():
    parts = [{"x": np.zeros((2, 3))}, {"x": np.zeros((2, 4))}]
    with pytest.raises(ValueError, match="Field 'x': batches with different cell shapes cannot be joined"):
        list(rebatch_columns(parts, 3))


def test_torch_columns_are_joined_as_tensors():
    torch = pytest.importorskip("torch")
    parts = [{"t": torch.arange(0, 3)}, {"t": torch.arange(3, 5)}]
    batches = list(rebatch_columns(parts, 4))
    assert all(isinstance(batch["t"], torch.Tensor) for batch in batches)
    assert [batch["t"].tolist() for batch in batches] == [[0, 1, 2, 3], [4]]


def test_rows_to_columns_stacks_scalars_and_arrays():
    columns = rows_to_columns([{"a": 1, "b": np.zeros(2), "s": "x"}, {"a": 2, "b": np.ones(2), "s": "yy"}])
    assert list(columns) == ["a", "b", "s"]
    assert columns["a"].tolist() == [1, 2] and columns["a"].shape == (2,)
    assert columns["b"].tolist() == [[0.0, 0.0], [1.0, 1.0]] and columns["b"].shape == (2, 2)
    assert columns["s"].tolist() == ["x", "yy"]


def test_rows_to_columns_keeps_nones_and_ragged_cells_as_objects():
    with_none = rows_to_columns([{"a": None}, {"a": 3}])["a"]
    assert with_none.dtype == object and with_none.tolist() == [None, 3]
    ragged = rows_to_columns([{"a": np.zeros(2)}, {"a": np.ones(3)}])["a"]
    assert ragged.dtype == object and ragged.shape == (2,)
    assert ragged[0].tolist() == [0.0, 0.0] and ragged[1].tolist() == [1.0, 1.0, 1.0]
    assert rows_to_columns([]) == {}


Item = collections.namedtuple("Item", ["id", "image", "note"])


class _Reader:
    def __init__(self, batched_output):
        self.batched_output = batched_output


def test_item_columns_of_a_row_and_of_a_batch():
    row = Item(np.int64(3), np.ones((2, 2), np.uint8), None)
    columns = item_columns(_Reader(False), row)
    assert columns["id"].tolist() == [3] and columns["image"].shape == (1, 2, 2)
    assert columns["note"].dtype == object and columns["note"].tolist() == [None]
    batch = Item(np.arange(4), np.zeros((4, 2, 2)), np.array(["a", "b", "c", "d"]))
    columns = item_columns(_Reader(True), batch)
    assert columns["id"] is batch.id and columns["image"].shape == (4, 2, 2)


def test_item_rows_and_prepare():
    def widen(columns):
        columns["id"] = columns["id"].astype(np.int64)

    batch = Item(np.arange(3, dtype=np.int16), np.zeros((3, 2)), np.array(["a", "b", "c"]))
    rows = list(item_rows(_Reader(True), batch, widen))
    assert [r["id"] for r in rows] == [0, 1, 2] and rows[0]["id"].dtype == np.int64
    assert [r["note"] for r in rows] == ["a", "b", "c"] and rows[2]["image"].shape == (2,)
    row = Item(np.int16(5), None, "x")
    assert list(item_rows(_Reader(False), row)) == [{"id": 5, "image": None, "note": "x"}]
