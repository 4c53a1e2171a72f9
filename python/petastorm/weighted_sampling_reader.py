"""Mixing several readers: each sample comes from a reader chosen at random with given probabilities."""
from __future__ import annotations, division

from typing import Any, Sequence

import numpy as np

__all__ = ["WeightedSamplingReader"]


class WeightedSamplingReader:
    """Samples from ``readers`` with ``probabilities`` (normalised); iteration stops when the chosen reader is
    exhausted (as in the original). All readers must have the same fields, the same ``batched_output`` and the
    same ``ngram``.

    :param readers: readers made by ``make_reader`` or ``make_batch_reader``.
    :param probabilities: one non-negative weight per reader.
    :param seed: seeds the choice of reader (None: random).
    """

    def __init__(self, readers: Sequence[Any], probabilities: Sequence[float], seed: int | None = None):
        if len(readers) <= 1:
            raise ValueError("Two or more readers are needed")
        if len(readers) != len(probabilities):
            raise ValueError(f"{len(readers)} readers but {len(probabilities)} probabilities")
        weights = np.asarray(probabilities, dtype=float)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"probabilities must be non-negative and not all zero, got {list(probabilities)}")
        self._readers = list(readers)
        self._cum_prob = np.cumsum(weights / weights.sum())
        self._rng = np.random.default_rng(seed)
        first = self._readers[0]
        for other in self._readers[1:]:
            if list(other.schema.fields) != list(first.schema.fields):
                raise ValueError(f"All readers must have the same fields: {list(first.schema.fields)} != "
                                 f"{list(other.schema.fields)}")
            if other.batched_output != first.batched_output:
                raise ValueError("All readers must be of the same kind (batched_output differs)")
            if other.ngram != first.ngram:
                raise ValueError("All readers must have the same ngram")
        self.schema = first.schema
        self.ngram = first.ngram
        self.batched_output = first.batched_output

    def __iter__(self) -> "WeightedSamplingReader":
        return self

    def __next__(self) -> Any:
        index = int(np.searchsorted(self._cum_prob, self._rng.random(), side="right"))
        return next(self._readers[min(index, len(self._readers) - 1)])

    def next(self) -> Any:
        return self.__next__()

    @property
    def last_row_consumed(self) -> bool:
        return any(reader.last_row_consumed for reader in self._readers)

    def stop(self) -> None:
        for reader in self._readers:
            reader.stop()

    def join(self) -> None:
        for reader in self._readers:
            reader.join()

    def reset(self) -> None:
        for reader in self._readers:
            if reader.last_row_consumed:
                reader.reset()

    @property
    def diagnostics(self) -> dict:
        return {f"reader_{i}": reader.diagnostics for i, reader in enumerate(self._readers)}

    def __enter__(self) -> "WeightedSamplingReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        self.join()
