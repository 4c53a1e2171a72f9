"""petastorm.jax_utils: numpy batches (JAX is not installed here; the JAX path is optional)."""
import sys
import types

import numpy as np
import pytest

from adapter_datasets import write_tensor_dataset
from petastorm import make_batch_reader, make_reader
from petastorm.jax_utils import jax_available, make_jax_iterator, make_numpy_iterator


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    return write_tensor_dataset(tmp_path_factory.mktemp("jax") / "ds", rows=60)


def test_numpy_batches_shapes_dtypes_values(url):
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        batches = list(make_numpy_iterator(reader, batch_size=16))
    assert [len(b["id"]) for b in batches] == [16, 16, 16, 12]
    assert batches[0]["x"].shape == (16, 3, 4) and batches[0]["x"].dtype == np.float32
    ids = np.concatenate([b["id"] for b in batches])
    np.testing.assert_array_equal(ids, np.arange(60))
    for batch in batches:
        np.testing.assert_array_equal(batch["x"][:, 2, 3], batch["id"].astype(np.float32))
        np.testing.assert_array_equal(batch["y"], batch["id"] % 5)


def test_row_reader_fields_epochs_drop_last(url):
    with make_reader(url, shuffle_row_groups=False, num_epochs=2) as reader:
        batches = list(make_numpy_iterator(reader, batch_size=25, drop_last=True, fields=["x"]))
    assert [b["x"].shape for b in batches] == [(25, 3, 4)] * 4 and set(batches[0]) == {"x"}
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        assert [len(b["id"]) for b in make_numpy_iterator(reader)] == [10] * 6


def test_nulls_are_reported(tmp_path):
    url = write_tensor_dataset(tmp_path / "nulls", rows=20, nullable_y=True)
    with make_reader(url, shuffle_row_groups=False) as reader:
        with pytest.raises(ValueError, match="'y'.*null"):
            list(make_numpy_iterator(reader, batch_size=8))


def test_jax_iterator_without_jax_yields_numpy(url):
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        batches = list(make_jax_iterator(reader, batch_size=30, device_put=None if not jax_available() else False))
    assert all(isinstance(b["x"], np.ndarray) for b in batches) and len(batches) == 2


def test_jax_iterator_device_put_with_a_stand_in_module(url, monkeypatch):
    calls = []
    fake = types.ModuleType("jax")
    fake.device_put = lambda value, device=None: calls.append(device) or ("on-device", value.shape)
    monkeypatch.setitem(sys.modules, "jax", fake)
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        batches = list(make_jax_iterator(reader, batch_size=20, device_put=True, device="dev0", prefetch=1))
    assert len(batches) == 3 and batches[0]["x"] == ("on-device", (20, 3, 4))
    assert calls == ["dev0"] * 9
