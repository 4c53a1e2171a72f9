"""The row shuffling buffers (reader_impl/shuffling_buffer) and the batched column buffers
(reader_impl/pytorch_shuffling_buffer): when items may be added and taken, every item out exactly once, seeds."""
import numpy as np
import pytest

from petastorm.reader_impl.shuffling_buffer import (UNBOUNDED_EXTRA_CAPACITY, NoopShufflingBuffer,
                                                    RandomShufflingBuffer)


def _drain(buffer, chunks):
    """Adds ``chunks`` whenever the buffer accepts them, taking items (or batches) out while it allows; then
    finishes it. Returns what came out in retrieval order and the sizes seen just after each retrieve before
    :meth:`finish`."""
    out, sizes = [], []
    for chunk in chunks:
        while not buffer.can_add():
            out.append(buffer.retrieve())
            sizes.append(buffer.size)
        buffer.add_many(chunk)
        while buffer.can_retrieve():
            out.append(buffer.retrieve())
            sizes.append(buffer.size)
    buffer.finish()
    while buffer.can_retrieve():
        out.append(buffer.retrieve())
    return out, sizes


def _chunks(sizes):
    chunks, start = [], 0
    for size in sizes:
        chunks.append(list(range(start, start + size)))
        start += size
    return chunks


# -- RandomShufflingBuffer ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("capacity,min_after", [(1, 0), (5, 1), (10, 5), (50, 49), (100, 10)])
def test_every_item_comes_out_once_and_retrieval_keeps_min_after_retrieve(capacity, min_after):
    buffer = RandomShufflingBuffer(capacity, min_after, extra_capacity=UNBOUNDED_EXTRA_CAPACITY, seed=1)
    out, sizes = _drain(buffer, _chunks([7, 1, 30, 2, 13, 40]))
    assert sorted(out) == list(range(93)) and buffer.size == 0
    # before finish(), an item is taken only while at least min_after_retrieve are held (so after it, one fewer)
    assert all(size >= min_after - 1 for size in sizes)


def test_can_add_below_capacity_and_can_retrieve_at_min_after_retrieve():
    buffer = RandomShufflingBuffer(4, 3, extra_capacity=2, seed=0)
    buffer.add_many([0, 1])
    assert (buffer.size, buffer.can_add(), buffer.can_retrieve()) == (2, True, False)
    buffer.add_many([2])
    assert (buffer.size, buffer.can_add(), buffer.can_retrieve()) == (3, True, True)
    buffer.add_many([3, 4, 5])  # capacity 4 + extra 2
    assert (buffer.size, buffer.can_add(), buffer.can_retrieve()) == (6, False, True)
    for expected_size in (5, 4, 3, 2):
        buffer.retrieve()
        assert buffer.size == expected_size
    assert buffer.can_add() and not buffer.can_retrieve()
    buffer.finish()
    assert not buffer.can_add() and buffer.can_retrieve()
    buffer.retrieve()
    buffer.retrieve()
    assert buffer.size == 0 and not buffer.can_retrieve()


def test_min_after_retrieve_zero_still_needs_an_item():
    buffer = RandomShufflingBuffer(3, 0, seed=0)
    assert not buffer.can_retrieve()
    buffer.add_many(["a"])
    assert buffer.retrieve() == "a" and not buffer.can_retrieve()


def test_a_seed_fixes_the_order_and_every_item_can_come_first():
    def order(seed):
        return _drain(RandomShufflingBuffer(20, 10, seed=seed), _chunks([20, 20]))[0]

    assert order(5) == order(5) and order(5) != order(6)
    assert order(5) != list(range(40))
    firsts = {order(seed)[0] for seed in range(300)}
    assert firsts == set(range(20))  # the first item is drawn among all 20 held


def test_items_are_opaque_objects():
    rows = [{"id": i} for i in range(6)]
    buffer = RandomShufflingBuffer(10, 1, seed=2)
    buffer.add_many(rows)
    buffer.finish()
    out = [buffer.retrieve() for _ in range(6)]
    assert sorted(out, key=lambda row: row["id"]) == rows and all(any(o is r for r in rows) for o in out)


def test_noop_buffer_is_first_in_first_out():
    buffer = NoopShufflingBuffer()
    out, _ = _drain(buffer, _chunks([3, 0, 5, 1]))
    assert out == list(range(9)) and buffer.can_add()


# -- the batched column buffers ----------------------------------------------------------------------------------

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def batched(torch):
    """The module of the batched buffers (it needs torch)."""
    from petastorm.reader_impl import pytorch_shuffling_buffer
    return pytorch_shuffling_buffer


def _column_chunks(sizes, as_tensors=False):
    """``[ids, cells]`` per chunk: consecutive ids and a (n, 2) column of ``[id, -id]``; tensors or numpy."""
    if as_tensors:
        import torch
    chunks, start = [], 0
    for size in sizes:
        ids = np.arange(start, start + size)
        cells = np.stack([ids, -ids], axis=1)
        chunks.append([torch.from_numpy(ids), torch.from_numpy(cells)] if as_tensors else [ids, cells])
        start += size
    return chunks


@pytest.mark.parametrize("as_tensors", [False, True])
@pytest.mark.parametrize("capacity,min_after,batch_size", [(4, 0, 1), (10, 3, 4), (12, 5, 8), (64, 20, 5)])
def test_batched_every_row_once_with_aligned_columns(torch, batched, as_tensors, capacity, min_after, batch_size):
    buffer = batched.BatchedRandomShufflingBuffer(capacity, min_after, UNBOUNDED_EXTRA_CAPACITY, batch_size, seed=4)
    batches, sizes = _drain(buffer, _column_chunks([9, 1, 17, 30, 3], as_tensors))
    ids = torch.cat([batch[0] for batch in batches])
    assert sorted(ids.tolist()) == list(range(60)) and buffer.size == 0
    assert [len(batch[0]) for batch in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert 1 <= len(batches[-1][0]) <= batch_size
    for batch in batches:
        assert isinstance(batch[0], torch.Tensor) and isinstance(batch[1], torch.Tensor)
        assert batch[1].tolist() == [[i, -i] for i in batch[0].tolist()]
    # before finish(), a batch is taken only while min_after_retrieve + batch_size - 1 rows are held
    assert all(size >= min_after - 1 for size in sizes)


def test_batched_can_retrieve_threshold_and_growth_past_capacity(batched):
    buffer = batched.BatchedRandomShufflingBuffer(4, 2, extra_capacity=20, batch_size=3, seed=0)
    buffer.add_many([np.arange(3)])
    assert buffer.can_add() and not buffer.can_retrieve()  # needs 2 + 3 - 1 = 4 rows
    buffer.add_many([np.arange(3, 4)])
    assert not buffer.can_add() and buffer.can_retrieve()
    assert len(buffer.retrieve()[0]) == 3 and buffer.size == 1 and buffer.can_add()
    buffer.add_many([np.arange(4, 20)])  # 17 rows: the 4-row buffers grow
    assert buffer.size == 17
    buffer.finish()
    out = []
    while buffer.can_retrieve():
        out += buffer.retrieve()[0].tolist()
    assert len(out) == 17 and buffer.size == 0


def test_batched_seed_fixes_the_order(torch, batched):
    def order(seed):
        buffer = batched.BatchedRandomShufflingBuffer(30, 10, UNBOUNDED_EXTRA_CAPACITY, 4, seed=seed)
        return torch.cat([b[0] for b in _drain(buffer, _column_chunks([30, 30]))[0]]).tolist()

    assert order(2) == order(2) and order(2) != order(3)
    assert order(2) != list(range(60))


@pytest.mark.parametrize("batch_size", [1, 3, 5])
def test_batched_noop_keeps_the_order(torch, batched, batch_size):
    batches, _ = _drain(batched.BatchedNoopShufflingBuffer(batch_size), _column_chunks([2, 5, 0, 4]))
    assert torch.cat([batch[0] for batch in batches]).tolist() == list(range(11))
    assert [len(batch[0]) for batch in batches] == [batch_size] * (11 // batch_size) + \
        ([11 % batch_size] if 11 % batch_size else [])
    assert all(batch[1].tolist() == [[i, -i] for i in batch[0].tolist()] for batch in batches)
