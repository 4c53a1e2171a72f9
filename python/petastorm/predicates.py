"""Row predicates for the readers.

``make_reader`` passes ``do_include`` one decoded row (a dict). ``make_batch_reader`` calls ``do_include_batch``
with a pandas DataFrame of the predicate's fields for a whole row group and expects a boolean mask back: the
predicates here evaluate it vectorised where they can; the default (for user predicates) first tries
``do_include(frame)`` as the original batch reader did and, if that does not give one boolean per row, calls
``do_include`` row by row.
"""
from __future__ import annotations

import abc
import collections.abc
import hashlib
import sys
from typing import Any, Callable, Iterable, Sequence

import numpy as np


def _as_mask(result: Any, num_rows: int) -> np.ndarray | None:
    """``result`` as a boolean mask of ``num_rows`` values, or None when it is not one."""
    if isinstance(result, (bool, np.bool_)) or result is None:
        return None
    try:
        mask = np.asarray(result)
    except Exception:
        return None
    if mask.shape != (num_rows,) or mask.dtype.kind not in "bui":
        return None
    return mask.astype(bool)


def _row_by_row(predicate: "PredicateBase", frame: Any) -> np.ndarray:
    columns = {name: frame[name].tolist() for name in frame.columns}
    names = list(columns)
    return np.fromiter((bool(predicate.do_include(dict(zip(names, values))))
                        for values in zip(*columns.values())), dtype=bool, count=len(frame))


class PredicateBase(abc.ABC):
    """A filter over rows, declaring the fields it reads."""

    @abc.abstractmethod
    def get_fields(self) -> set[str]:
        """Names of the fields ``do_include`` reads."""

    @abc.abstractmethod
    def do_include(self, values: Any) -> Any:
        """Whether to keep the row (or, for a DataFrame, which rows)."""

    def do_include_batch(self, frame: Any) -> np.ndarray:
        """A boolean mask over the rows of a pandas DataFrame holding (at least) this predicate's fields."""
        if len(frame) == 0:
            return np.zeros(0, dtype=bool)
        try:
            mask = _as_mask(self.do_include(frame), len(frame))
        except Exception:
            mask = None
        return mask if mask is not None else _row_by_row(self, frame)


def _string_to_bucket(string: str, bucket_num: int) -> int:
    return int(hashlib.md5(string.encode("utf-8")).hexdigest(), 16) % bucket_num


class in_set(PredicateBase):
    """Keeps rows whose ``predicate_field`` value is in ``inclusion_values``."""

    def __init__(self, inclusion_values: Iterable[Any], predicate_field: str):
        self._inclusion_values = set(inclusion_values)
        self._predicate_field = predicate_field

    def get_fields(self) -> set[str]:
        return {self._predicate_field}

    def do_include(self, values: Any) -> Any:
        return values[self._predicate_field] in self._inclusion_values

    def do_include_batch(self, frame: Any) -> np.ndarray:
        column = frame[self._predicate_field]
        try:
            return np.asarray(column.isin(list(self._inclusion_values)), dtype=bool)
        except TypeError:
            return _row_by_row(self, frame)


class in_intersection(PredicateBase):
    """Keeps rows whose ``_predicate_field`` (an iterable) holds at least one of ``inclusion_values``. The
    parameter has the original's name; ``predicate_field=`` is accepted too."""

    def __init__(self, inclusion_values: Iterable[Any], _predicate_field: str | None = None, *,
                 predicate_field: str | None = None):
        if (_predicate_field is None) == (predicate_field is None):
            raise ValueError("in_intersection needs the field name once: in_intersection(values, 'field')")
        self._inclusion_values = list(inclusion_values)
        self._predicate_field = _predicate_field if _predicate_field is not None else predicate_field

    def get_fields(self) -> set[str]:
        return {self._predicate_field}

    def do_include(self, values: Any) -> bool:
        value = values[self._predicate_field]
        if not isinstance(value, collections.abc.Iterable):
            raise ValueError(f"Predicate field '{self._predicate_field}' must be iterable, got {type(value).__name__}")
        return bool(np.isin(np.asarray(list(value)), self._inclusion_values).any())

    def do_include_batch(self, frame: Any) -> np.ndarray:
        return _row_by_row(self, frame)


class in_lambda(PredicateBase):
    """Keeps rows for which ``predicate_func(*field values[, state_arg])`` is true."""

    def __init__(self, predicate_fields: list[str], predicate_func: Callable[..., Any], state_arg: Any = None):
        if not isinstance(predicate_fields, list):
            raise ValueError("Predicate fields should be a list")
        self._predicate_fields = predicate_fields
        self._predicate_func = predicate_func
        self._state_arg = state_arg

    def get_fields(self) -> set[str]:
        return set(self._predicate_fields)

    def do_include(self, values: Any) -> Any:
        args = [values[field] for field in self._predicate_fields]
        if self._state_arg is not None:
            args.append(self._state_arg)
        return self._predicate_func(*args)

    def do_include_batch(self, frame: Any) -> np.ndarray:
        if len(frame) == 0:
            return np.zeros(0, dtype=bool)
        try:  # vectorised: the function gets whole pandas Series
            mask = _as_mask(self.do_include(frame), len(frame))
        except Exception:
            mask = None
        return mask if mask is not None else _row_by_row(self, frame)


class in_negate(PredicateBase):
    """Negates another predicate."""

    def __init__(self, predicate: PredicateBase):
        if not isinstance(predicate, PredicateBase):
            raise ValueError("Predicate is not derived from PredicateBase")
        self._predicate = predicate

    def get_fields(self) -> set[str]:
        return self._predicate.get_fields()

    def do_include(self, values: Any) -> bool:
        return not self._predicate.do_include(values)

    def do_include_batch(self, frame: Any) -> np.ndarray:
        return ~self._predicate.do_include_batch(frame)


class in_reduce(PredicateBase):
    """Combines predicates with ``reduce_func`` over their results (``all`` for and, ``any`` for or)."""

    def __init__(self, predicate_list: Sequence[PredicateBase], reduce_func: Callable[[list], Any]):
        if not all(isinstance(p, PredicateBase) for p in predicate_list):
            raise ValueError("Predicate is not derived from PredicateBase")
        self._predicate_list = list(predicate_list)
        self._reduce_func = reduce_func

    def get_fields(self) -> set[str]:
        return set().union(*(p.get_fields() for p in self._predicate_list))

    def do_include(self, values: Any) -> Any:
        return self._reduce_func([p.do_include(values) for p in self._predicate_list])

    def do_include_batch(self, frame: Any) -> np.ndarray:
        masks = [p.do_include_batch(frame) for p in self._predicate_list]
        if self._reduce_func is all:
            return np.logical_and.reduce(masks) if masks else np.ones(len(frame), dtype=bool)
        if self._reduce_func is any:
            return np.logical_or.reduce(masks) if masks else np.zeros(len(frame), dtype=bool)
        stacked = np.stack(masks, axis=1) if masks else np.zeros((len(frame), 0), dtype=bool)
        return np.fromiter((bool(self._reduce_func(list(row))) for row in stacked), dtype=bool, count=len(frame))


class in_pseudorandom_split(PredicateBase):
    """Deterministic split by the md5 hash of a string field: keeps subset ``subset_index`` of the fractions in
    ``fraction_list`` (e.g. ``[0.5, 0.2, 0.3]``). The split is approximate and always the same."""

    def __init__(self, fraction_list: Sequence[float], subset_index: int, predicate_field: str):
        if subset_index >= len(fraction_list):
            raise ValueError("subset_index is out of range")
        self._predicate_field = predicate_field
        borders = np.cumsum(fraction_list).tolist()
        low = borders[subset_index - 1] if subset_index else 0
        self._bucket_low = low * (sys.maxsize - 1)
        self._bucket_high = borders[subset_index] * (sys.maxsize - 1)

    def get_fields(self) -> set[str]:
        return {self._predicate_field}

    def do_include(self, values: Any) -> bool:
        if self._predicate_field not in values.keys():
            raise ValueError(f"Tested values do not have the split key: {self._predicate_field}")
        bucket = _string_to_bucket(values[self._predicate_field], sys.maxsize)
        return self._bucket_low <= bucket < self._bucket_high

    def do_include_batch(self, frame: Any) -> np.ndarray:
        if self._predicate_field not in frame.columns:
            raise ValueError(f"Tested values do not have the split key: {self._predicate_field}")
        buckets = [_string_to_bucket(value, sys.maxsize) for value in frame[self._predicate_field].tolist()]
        return np.fromiter((self._bucket_low <= b < self._bucket_high for b in buckets), dtype=bool,
                           count=len(buckets))
