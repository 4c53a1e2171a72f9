"""A reader-like object that makes rows from a schema, for tests of code that consumes readers."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

import numpy as np

from petastorm.unischema import Unischema

__all__ = ["ReaderMock", "schema_data_generator_example"]


class ReaderMock:
    """An endless reader of rows made by ``schema_data_generator(schema)``, one namedtuple of ``schema`` per row.

    It can stand in for a ``make_reader`` reader in :func:`petastorm.tf_utils.make_petastorm_dataset`,
    :func:`petastorm.tf_utils.tf_tensors` and :class:`petastorm.pytorch.DataLoader` (take as many rows or
    batches as needed: it never ends).

    :param schema: the Unischema of the rows.
    :param schema_data_generator: called with ``schema`` for each row; returns a dict of field name to value.
    :param ngram: must be None (ValueError otherwise: n-grams are not mocked).
    """

    def __init__(self, schema: Unischema, schema_data_generator: Callable[[Unischema], dict],
                 ngram: Any = None) -> None:
        if ngram is not None:
            raise ValueError("Sequence argument not supported for ReaderMock")
        self.schema = schema
        self.schema_data_generator = schema_data_generator
        self.ngram = ngram
        self.batched_output = False

    def fetch(self) -> tuple:
        """The next row: a namedtuple of the schema with the generator's values."""
        return self.schema.make_namedtuple(**self.schema_data_generator(self.schema))

    def __iter__(self) -> "ReaderMock":
        return self

    def __next__(self) -> tuple:
        return self.fetch()

    def next(self) -> tuple:
        """The next row (as ``next(reader)``)."""
        return self.__next__()

    def __enter__(self) -> "ReaderMock":
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        pass

    def stop(self) -> None:
        """Does nothing (there are no workers to stop)."""

    def join(self) -> None:
        """Does nothing (there are no workers to wait for)."""

    def reset(self) -> None:
        """Does nothing: the rows never run out, so there is nothing to start again."""


def schema_data_generator_example(schema: Unischema) -> dict:
    """A row of ``schema`` of zeros: ``Decimal('0.0')`` for Decimal fields, else ``np.zeros`` of the field's shape
    and type with 10 elements in each variable (``None``) dimension."""
    row = {}
    for field in schema.fields.values():
        if field.numpy_dtype is Decimal:
            row[field.name] = Decimal("0.0")
        else:
            shape = tuple(10 if dim is None else dim for dim in field.shape)
            row[field.name] = np.zeros(shape, dtype=field.numpy_dtype)
    return row
