"""petastorm.pytorch on real torch: loaders (types, values, epochs, shuffling, nulls), the in-memory loader, and the
IterableDataset under torch's DataLoader with 2 workers (every row exactly once)."""
import decimal

import numpy as np
import pytest
import torch

from adapter_datasets import NUMERIC_FIELDS, expected_row, write_adapter_dataset, write_tensor_dataset
from petastorm import make_batch_reader, make_reader
from petastorm.pytorch import (BatchedDataLoader, DataLoader, InMemBatchedDataLoader, PetastormIterableDataset,
                               decimal_friendly_collate)

ROWS = 60


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    return write_adapter_dataset(tmp_path_factory.mktemp("torch") / "ds", rows=50)


@pytest.fixture(scope="module")
def tensor_url(tmp_path_factory):
    return write_tensor_dataset(tmp_path_factory.mktemp("torch_tensor") / "ds", rows=ROWS)


def _ids(batches):
    return torch.cat([b["id"] for b in batches]).tolist()


def test_dataloader_rows_types_and_values(url):
    fields = ["id", "label", "u16", "u32", "flag", "name", "price", "ts", "matrix", "image"]  # "ragged" can't stack
    with DataLoader(make_reader(url, shuffle_row_groups=False, schema_fields=fields), batch_size=8) as loader:
        batches = list(loader)
    assert [len(b["id"]) for b in batches] == [8] * 6 + [2]
    first = batches[0]
    assert first["u16"].dtype == torch.int32 and first["u32"].dtype == torch.int64
    assert first["flag"].dtype == torch.uint8 and first["image"].shape == (8, 4, 5, 3)
    assert isinstance(first["price"], list) and first["price"][1] == decimal.Decimal("1.50")
    assert first["name"][2] == "row-2" and first["ts"].dtype == torch.int64
    assert first["ts"][1].item() - first["ts"][0].item() == 10**9
    assert first["u16"][3].item() == 60003 and first["u32"][3].item() == 4_000_000_003
    np.testing.assert_array_equal(first["matrix"][5].numpy(), expected_row(5)["matrix"])
    assert _ids(batches) == list(range(50))


def test_dataloader_batch_reader_and_shuffling(tensor_url):
    with DataLoader(make_batch_reader(tensor_url, shuffle_row_groups=False), batch_size=7) as loader:
        batches = list(loader)
    assert _ids(batches) == list(range(ROWS)) and batches[0]["x"].shape == (7, 3, 4)
    reader = make_batch_reader(tensor_url, shuffle_row_groups=False)
    with DataLoader(reader, batch_size=7, shuffling_queue_capacity=25, seed=1) as loader:
        shuffled = _ids(list(loader))
    assert sorted(shuffled) == list(range(ROWS)) and shuffled != list(range(ROWS))


def test_dataloader_second_pass_resets_reader(tensor_url):
    loader = DataLoader(make_reader(tensor_url, shuffle_row_groups=False, num_epochs=2), batch_size=10)
    assert len(_ids(list(loader))) == 2 * ROWS
    assert len(_ids(list(loader))) == 2 * ROWS
    iterator = iter(loader)
    next(iterator)
    with pytest.raises(RuntimeError, match="full pass"):
        next(iter(loader))


@pytest.mark.parametrize("reader_factory", [make_reader, make_batch_reader])
def test_batched_dataloader(tensor_url, reader_factory):
    with BatchedDataLoader(reader_factory(tensor_url, shuffle_row_groups=False), batch_size=16) as loader:
        batches = list(loader)
    assert [len(b["id"]) for b in batches] == [16, 16, 16, 12]
    assert batches[0]["x"].dtype == torch.float32 and batches[0]["x"].shape == (16, 3, 4)
    assert _ids(batches) == list(range(ROWS))
    torch.testing.assert_close(batches[1]["x"][0], torch.full((3, 4), 16.0))


def test_batched_dataloader_shuffling_and_transform(tensor_url):
    reader = make_batch_reader(tensor_url, shuffle_row_groups=False, num_epochs=2)
    loader = BatchedDataLoader(reader, batch_size=8, shuffling_queue_capacity=30, seed=0,
                               transform_fn=lambda column: torch.as_tensor(np.array(column)) * 1)
    ids = _ids(list(loader))
    assert sorted(ids) == sorted(list(range(ROWS)) * 2) and ids != sorted(ids)
    batches = list(loader)  # second pass: the reader is reset
    assert len(_ids(batches)) == 2 * ROWS
    for batch in batches:
        torch.testing.assert_close(batch["x"][:, 0, 0], batch["id"].float())


def test_batched_dataloader_rejects_strings(url):
    with BatchedDataLoader(make_batch_reader(url, schema_fields=["id", "name"])) as loader:
        with pytest.raises(TypeError, match="name"):
            list(loader)


def test_nulls_raise_naming_the_field(tmp_path):
    url = write_tensor_dataset(tmp_path / "nulls", rows=20, nullable_y=True)
    with DataLoader(make_reader(url, shuffle_row_groups=False), batch_size=4) as loader:
        with pytest.raises(TypeError, match="nullable fields. Found None in y"):
            list(loader)


def test_inmem_batched_dataloader(tensor_url):
    reader = make_batch_reader(tensor_url, shuffle_row_groups=False, num_epochs=None)
    loader = InMemBatchedDataLoader(reader, batch_size=16, num_epochs=3, rows_capacity=40, shuffle=True, seed=5)
    assert reader.stopped
    batches = list(loader)
    ids = _ids(batches)
    assert len(ids) == 120 and sorted(set(ids)) == list(range(40))
    assert ids[:40] != ids[40:80]  # a new permutation each epoch
    with pytest.raises(RuntimeError, match="once"):
        list(loader)
    plain = InMemBatchedDataLoader(make_reader(tensor_url, shuffle_row_groups=False), batch_size=25,
                                   rows_capacity=1000)
    assert [len(b["id"]) for b in plain] == [25, 25, 10]


def test_decimal_friendly_collate():
    batch = [{"d": decimal.Decimal("1.5"), "s": "a", "x": np.ones(2)}, {"d": decimal.Decimal("2"), "s": "b",
                                                                         "x": np.zeros(2)}]
    out = decimal_friendly_collate(batch)
    assert out["d"] == [decimal.Decimal("1.5"), decimal.Decimal("2")] and out["s"] == ["a", "b"]
    assert out["x"].shape == (2, 2)
    numbers, strings = decimal_friendly_collate([(1, "a"), (2, "b")])
    assert numbers.tolist() == [1, 2] and list(strings) == ["a", "b"]


def test_iterable_dataset_single_process(tensor_url):
    dataset = PetastormIterableDataset(tensor_url, batch_size=16, shuffle_row_groups=False)
    batches = list(torch.utils.data.DataLoader(dataset, batch_size=None))
    assert [len(b["id"]) for b in batches] == [16, 16, 16, 12] and _ids(batches) == list(range(ROWS))
    rows = list(PetastormIterableDataset(tensor_url, batch_reader=False, shuffle_row_groups=False))
    assert [int(r["id"]) for r in rows] == list(range(ROWS))


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [None, 8])
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true but no accelerator")
def test_iterable_dataset_two_workers_every_row_once(tensor_url, batch_size):
    dataset = PetastormIterableDataset(tensor_url, batch_size=batch_size, seed=3, shuffle_rows=True)
    loader = torch.utils.data.DataLoader(dataset, num_workers=2, pin_memory=True,
                                         batch_size=None if batch_size else 8,
                                         multiprocessing_context="fork", persistent_workers=False)
    for _ in range(2):  # two epochs, each with every row exactly once
        batches = list(loader)
        ids = _ids(batches)
        assert sorted(ids) == list(range(ROWS))
        for batch in batches:
            torch.testing.assert_close(batch["x"][:, 1, 2], batch["id"].float())


def test_iterable_dataset_shards_by_rank_and_worker(tensor_url, monkeypatch):
    class Info:
        def __init__(self, worker):
            self.id, self.num_workers = worker, 2

    seen = []
    for rank in range(2):
        for worker in range(2):
            monkeypatch.setattr("petastorm._torch_iterable.get_worker_info", lambda w=worker: Info(w))
            dataset = PetastormIterableDataset(tensor_url, batch_size=100, cur_shard=rank, shard_count=2)
            assert dataset.shard() == (rank * 2 + worker, 4)
            seen.append(_ids(list(dataset)))
    assert sorted(sum(seen, [])) == list(range(ROWS))
    assert all(seen) and all(set(a).isdisjoint(b) for i, a in enumerate(seen) for b in seen[i + 1:])


def test_numeric_fields_of_adapter_dataset_batch(url):
    with BatchedDataLoader(make_batch_reader(url, schema_fields=NUMERIC_FIELDS, shuffle_row_groups=False),
                           batch_size=50) as loader:
        (batch,) = list(loader)
    assert batch["u16"].dtype == torch.int32 and batch["flag"].dtype == torch.uint8
    assert batch["image"].shape == (50, 4, 5, 3)


def test_batched_dataloader_batches_span_row_groups_and_stay_intact(tmp_path):
    url = write_tensor_dataset(tmp_path / "ds", rows=53, rows_per_group=7)
    with BatchedDataLoader(make_batch_reader(url, shuffle_row_groups=False), batch_size=16) as loader:
        batches = list(loader)  # all held at once: recycled batch arrays must not be reused while referenced
    assert [len(b["id"]) for b in batches] == [16, 16, 16, 5]
    assert _ids(batches) == list(range(53))
    for b in batches:
        assert b["x"].is_contiguous() and b["x"].shape[1:] == (3, 4) and b["x"].dtype == torch.float32
        torch.testing.assert_close(b["x"][:, 2, 3], b["id"].float())
    with BatchedDataLoader(make_batch_reader(url, shuffle_row_groups=False), batch_size=16) as loader:
        for b in loader:  # one at a time: the arrays are recycled
            torch.testing.assert_close(b["x"], b["id"].float()[:, None, None].expand(-1, 3, 4))
            b["x"].add_(1000)  # batches are writable and owned by the caller until dropped


@pytest.mark.parametrize("capacity,batch_size", [(1, 1), (10, 8), (100, 16)])
def test_batched_dataloader_shuffle_every_row_once_per_epoch(tmp_path, capacity, batch_size):
    url = write_tensor_dataset(tmp_path / "ds", rows=53, rows_per_group=7)
    loader = BatchedDataLoader(make_batch_reader(url, shuffle_row_groups=False), batch_size=batch_size,
                               shuffling_queue_capacity=capacity, seed=4)
    with loader:
        for _ in range(2):  # each pass (the reader is reset) is one epoch: every row exactly once
            batches = list(loader)
            ids = _ids(batches)
            assert sorted(ids) == list(range(53))
            assert all(len(b["id"]) == batch_size for b in batches[:-1])
            for b in batches:
                torch.testing.assert_close(b["x"][:, 1, 1], b["id"].float())
            if capacity > 1:
                assert ids != list(range(53))
