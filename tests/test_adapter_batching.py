"""Re-cutting row groups into batches (petastorm._batching), the recycled batch arrays, and the torch loader's
shuffling buffer: batches spanning row groups, views vs copies, buffer reuse only when free, every row exactly once."""
import sys

import numpy as np
import pytest

from petastorm._batching import BatchBuffers, rebatch_columns


def _groups(sizes, start=0):
    """Column dicts of the given row counts: id = consecutive ints, x = strided (n, 2, 3) views whose cells are id."""
    groups = []
    for size in sizes:
        ids = np.arange(start, start + size)
        padded = np.zeros((size, 8), np.float32)  # 6 values + 2 "header" values per row, as NPY cells in place
        padded[:, 2:] = ids[:, None]
        x = padded[:, 2:].reshape(size, 2, 3)
        assert size < 2 or not x.flags.c_contiguous
        groups.append({"id": ids, "x": x})
        start += size
    return groups


@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("sizes,batch_size", [([3, 5, 1, 1, 10, 2], 4), ([10, 10, 10], 4), ([1] * 9, 4),
                                              ([10, 0, 7], 16), ([4, 4], 4), ([2, 30], 7)])
def test_rebatch_spanning_row_groups(sizes, batch_size, use_buffers):
    total = sum(sizes)
    buffers = BatchBuffers() if use_buffers else None
    batches = list(rebatch_columns(_groups(sizes), batch_size, buffers=buffers))
    expected_sizes = [batch_size] * (total // batch_size) + ([total % batch_size] if total % batch_size else [])
    assert [len(b["id"]) for b in batches] == expected_sizes
    np.testing.assert_array_equal(np.concatenate([b["id"] for b in batches]), np.arange(total))
    for b in batches:
        np.testing.assert_array_equal(b["x"], np.broadcast_to(b["id"][:, None, None].astype(np.float32),
                                                               (len(b["id"]), 2, 3)))
    dropped = list(rebatch_columns(_groups(sizes), batch_size, drop_last=True, buffers=buffers))
    assert [len(b["id"]) for b in dropped] == [batch_size] * (total // batch_size)


def test_batches_inside_a_row_group_are_views_and_spanning_batches_copy_only_their_rows():
    groups = _groups([10, 10])
    batches = list(rebatch_columns(groups, 4))
    # rows 0-3, 4-7 lie in group 0; 8-11 spans; 12-15, 16-19 lie in group 1
    assert np.shares_memory(batches[0]["x"], groups[0]["x"]) and np.shares_memory(batches[1]["x"], groups[0]["x"])
    assert not np.shares_memory(batches[2]["x"], groups[0]["x"])
    assert not np.shares_memory(batches[2]["x"], groups[1]["x"])
    assert len(batches[2]["x"]) == 4 and batches[2]["x"].flags.c_contiguous
    assert np.shares_memory(batches[3]["x"], groups[1]["x"]) and np.shares_memory(batches[4]["x"], groups[1]["x"])


def test_batch_buffers_are_aligned_contiguous_copies():
    buffers = BatchBuffers()
    x = _groups([5])[0]["x"]
    copy = buffers.contiguous(x)
    assert copy.flags.c_contiguous and copy.flags.writeable and copy.ctypes.data % 64 == 0
    np.testing.assert_array_equal(copy, x)
    contiguous = np.arange(6)
    assert buffers.contiguous(contiguous) is contiguous
    strings = np.array(["a", "b", "c"])[::2]
    assert buffers.contiguous(strings) is strings  # only numeric arrays are pooled


def test_batch_buffers_reuse_only_unreferenced_arrays():
    buffers = BatchBuffers(max_blocks=4)
    a = buffers.empty((4, 3), np.float32)
    address = a.ctypes.data
    del a
    b = buffers.empty((4, 3), np.float32)
    assert b.ctypes.data == address  # free again: reused
    c = buffers.empty((4, 3), np.float32)
    assert c.ctypes.data != address  # b is alive
    view_of_view = b[1:][1:]  # numpy collapses .base to the block: still counted
    del b
    d = buffers.empty((4, 3), np.float32)
    assert d.ctypes.data not in (address, c.ctypes.data)
    del view_of_view
    e = buffers.empty((4, 3), np.float32)
    assert e.ctypes.data == address
    assert buffers.empty((2, 3), np.float32).shape == (2, 3)  # other shapes have their own blocks


def test_batch_buffers_cap_and_torch_references():
    torch = pytest.importorskip("torch")
    buffers = BatchBuffers(max_blocks=2)
    held = [torch.from_numpy(buffers.empty((3,), np.int64)) for _ in range(4)]
    addresses = {t.data_ptr() for t in held}
    assert len(addresses) == 4  # all distinct while the tensors live; only 2 are pooled
    for t in held:
        t.fill_(7)
    reused = buffers.empty((3,), np.int64)
    assert reused.ctypes.data not in addresses
    assert all((t == 7).all() for t in held)
    held = None
    assert buffers.empty((3,), np.int64).ctypes.data in addresses or sys.implementation.name != "cpython"


# -- the torch shuffling buffer ----------------------------------------------------------------------------------

@pytest.mark.parametrize("capacity,batch_size", [(1, 1), (5, 7), (30, 16), (1000, 16), (2, 64)])
@pytest.mark.parametrize("as_tensors", [False, True])
def test_shuffling_buffer_every_row_exactly_once(capacity, batch_size, as_tensors):
    torch = pytest.importorskip("torch")
    from petastorm.pytorch import _BatchedRandomShufflingBuffer

    def run(seed):
        min_after = capacity - 1
        buffer = _BatchedRandomShufflingBuffer(min_after + batch_size, min_after, batch_size, seed)
        out = []
        for group in _groups([10, 3, 25, 1, 40, 7]):
            columns = [group["id"], group["x"]]
            if as_tensors:
                columns = [torch.from_numpy(np.ascontiguousarray(c)) for c in columns]
            buffer.add_many(columns)
            while buffer.can_retrieve():
                out.append(buffer.retrieve())
        buffer.finish()
        while buffer.can_retrieve():
            out.append(buffer.retrieve())
        return out

    batches = run(seed=3)
    ids = torch.cat([b[0] for b in batches]).tolist()
    assert sorted(ids) == list(range(86))
    assert all(len(b[0]) == batch_size for b in batches[:-1]) and 0 < len(batches[-1][0]) <= batch_size
    for ids_batch, x_batch in batches:  # columns stay aligned row by row
        assert x_batch.is_contiguous() and x_batch.shape[1:] == (2, 3)
        torch.testing.assert_close(x_batch[:, 1, 2], ids_batch.float())
    if capacity >= 30:
        assert ids != sorted(ids)
    assert torch.cat([b[0] for b in run(seed=3)]).tolist() == ids  # a seed reproduces the order
