"""Random rows that follow a Unischema, for tests and examples (the original's ``petastorm.generator``)."""
from __future__ import annotations

import decimal
from typing import Any

import numpy as np
from numpy.random import rand

from petastorm.unischema import Unischema

__all__ = ["generate_datapoint", "LIST_SIZE", "rand"]

# Length given to each variable (``None``) dimension of a field's shape.
LIST_SIZE = 13


def _random_value(numpy_dtype: Any, shape: tuple) -> Any:
    """A random value of ``numpy_dtype`` and ``shape``: integers over the whole range of the type, floats in
    [0, 1), booleans either way, strings spelling a float in [0, 1), Decimals from a float in [0, 1)."""
    if numpy_dtype is decimal.Decimal:
        if shape == ():
            return decimal.Decimal(str(rand()))
        return np.vectorize(lambda x: decimal.Decimal(str(x)), otypes=[object])(rand(*shape))
    if isinstance(numpy_dtype, type) and issubclass(numpy_dtype, np.integer):
        info = np.iinfo(numpy_dtype)
        return np.asarray(np.random.randint(info.min, info.max + 1, size=shape, dtype=numpy_dtype))
    if numpy_dtype is np.bool_:
        return np.asarray(rand(*shape) < 0.5)
    return np.array(rand(*shape), dtype=numpy_dtype)


def generate_datapoint(schema: Unischema) -> dict:
    """A random row of ``schema``: a dict of field name to a numpy array of the field's type and shape.

    Variable dimensions get ``LIST_SIZE`` elements; scalar fields are 0-d arrays (Decimal fields are
    ``decimal.Decimal`` values). Values come from numpy's global random generator (``np.random.seed`` makes them
    reproducible).
    """
    return {name: _random_value(field.numpy_dtype, tuple(LIST_SIZE if d is None else d for d in field.shape))
            for name, field in schema.fields.items()}
