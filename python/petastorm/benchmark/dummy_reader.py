"""A stand-in reader that yields the same random batch forever, to measure the PyTorch data loaders alone.

Run ``python -m petastorm.benchmark.dummy_reader [device] [batch] [dim]`` (needs PyTorch): prints samples per
second of :class:`petastorm.pytorch.DataLoader` and :class:`petastorm.pytorch.BatchedDataLoader` over
:class:`DummyReader` for a few batch sizes.
"""
from __future__ import division, print_function

import sys
import time
from collections import namedtuple
from functools import partial
from typing import Any, Iterator

import numpy as np

__all__ = ["DummyReader", "main"]


class DummyReader:
    """A batched reader whose every batch is the same ``(batch, dim)`` float32 array in a field ``test``.

    :param batch: rows per batch.
    :param dim: values per row.
    """

    def __init__(self, batch: int = 1000, dim: int = 64) -> None:
        self.batch = batch
        self.dim = dim

    @property
    def is_batched_reader(self) -> bool:
        return True

    @property
    def batched_output(self) -> bool:
        return True

    def reset(self) -> None:
        """Nothing to rewind: the reader never ends."""

    def stop(self) -> None:
        pass

    def join(self) -> None:
        pass

    def __iter__(self) -> Iterator[Any]:
        row = namedtuple("row", ["test"])
        batch = row(np.random.rand(self.batch, self.dim).astype(np.float32))
        while True:
            yield batch


def _rate(loader: Any, batch_size: int, iterations: int) -> float:
    it = iter(loader)
    for _ in range(iterations):
        next(it)
    start = time.perf_counter()
    for _ in range(iterations):
        next(it)
    return iterations * batch_size / (time.perf_counter() - start)


def main(device: str = "cpu", batch: int = 1000, dim: int = 64, iterations: int = 100) -> None:
    """Prints the samples per second of the PyTorch loaders over a :class:`DummyReader`."""
    import torch

    from petastorm.pytorch import BatchedDataLoader, DataLoader

    reader = DummyReader(int(batch), int(dim))
    print("Testing DataLoader on cpu")
    for batch_size in (10, 100, 1000):
        loader = DataLoader(reader, shuffling_queue_capacity=batch_size * 10, batch_size=batch_size)
        print(f"Samples per second for batch {batch_size}: {_rate(loader, batch_size, iterations):.4g}")
    print("Testing BatchedDataLoader on", device)
    for batch_size in (10, 100, 1000, 100000):
        loader = BatchedDataLoader(reader, shuffling_queue_capacity=batch_size * 10, batch_size=batch_size,
                                   transform_fn=partial(torch.as_tensor, device=device))
        print(f"Samples per second for batch {batch_size}: {_rate(loader, batch_size, iterations):.4g}")


if __name__ == "__main__":
    main(*sys.argv[1:])
