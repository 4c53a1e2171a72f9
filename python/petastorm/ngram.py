"""NGram: read runs of consecutive rows (by a timestamp field) as one sample, with ``make_reader``.

Semantics of the original (0.13.1): ``fields`` maps timestep offsets (ints, e.g. ``{-1: [...], 0: [...], 1: [...]}``)
to the fields (``UnischemaField`` objects or full-match regular expressions) wanted at that timestep. An n-gram is
``length = max(offset) - min(offset) + 1`` consecutive rows of one row group; it is kept when each timestamp differs
from the previous by at most ``delta_threshold``; with ``timestamp_overlap=False`` an n-gram may not start at or
before the timestamp where the previous kept n-gram ended. The data of a row group must be sorted by the timestamp
field. Each sample is a dict ``{offset: namedtuple of that timestep's fields}``.
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

from petastorm.unischema import Unischema, UnischemaField, match_unischema_fields, string_types  # noqa: F401

__all__ = ["NGram"]


class NGram:
    """Defines n-gram reading: see the module documentation."""

    def __init__(self, fields: dict, delta_threshold: Any, timestamp_field: Any, timestamp_overlap: bool = True):
        self._fields = fields
        self._delta_threshold = delta_threshold
        self._timestamp_field = timestamp_field
        self.timestamp_overlap = timestamp_overlap
        self._validate_ngram(fields, delta_threshold, timestamp_field, timestamp_overlap)

    @property
    def length(self) -> int:
        return max(self._fields.keys()) - min(self._fields.keys()) + 1

    @property
    def fields(self) -> dict:
        return self._fields

    @property
    def delta_threshold(self) -> Any:
        return self._delta_threshold

    @property
    def timestamp_field(self) -> Any:
        return self._timestamp_field

    @property
    def _timestamp_name(self) -> str:
        return self._timestamp_field if isinstance(self._timestamp_field, str) else self._timestamp_field.name

    @staticmethod
    def _validate_ngram(fields: Any, delta_threshold: Any, timestamp_field: Any, timestamp_overlap: Any) -> None:
        if fields is None or not isinstance(fields, dict) or not fields:
            raise ValueError("Fields must be set and must be a non-empty dictionary.")
        for key, value in fields.items():
            if not isinstance(key, int) or isinstance(key, bool):
                raise ValueError(f"NGram timestep keys must be ints, got {key!r}")
            if not isinstance(value, (list, tuple)):
                raise ValueError("Each field value must be a list of unischema fields/regular expression(s)")
            for field in value:
                if not isinstance(field, (UnischemaField, str)):
                    raise ValueError("All field values must be of type UnischemaField/regular expression.")
        if delta_threshold is None or not isinstance(delta_threshold, numbers.Number):
            raise ValueError("delta_threshold must be a number.")
        if timestamp_field is None or not isinstance(timestamp_field, (UnischemaField, str)):
            raise ValueError("timestamp_field must be set and must be of type UnischemaField or a field name.")
        if not isinstance(timestamp_overlap, bool):
            raise ValueError("timestamp_overlap must be set and must be of type bool")

    def resolve_regex_field_names(self, schema: Unischema) -> None:
        """Replaces regular expressions (in ``fields`` and ``timestamp_field``) by the matching schema fields."""
        self._fields = {key: self.convert_fields(schema, value) for key, value in self._fields.items()}
        if isinstance(self._timestamp_field, str):
            matched = self.convert_fields(schema, [self._timestamp_field])
            if len(matched) != 1:
                raise ValueError(f"timestamp_field {self._timestamp_field!r} must match exactly one field of the "
                                 f"schema, it matches {[f.name for f in matched]}")
            self._timestamp_field = matched[0]

    @staticmethod
    def convert_fields(unischema: Unischema, field_list: Sequence[Any]) -> list[UnischemaField]:
        """The schema fields named by ``field_list`` (fields and/or full-match regular expressions)."""
        regexes = [f for f in field_list if isinstance(f, str)]
        fields = [f for f in field_list if isinstance(f, UnischemaField)]
        matched = match_unischema_fields(unischema, regexes) if regexes else []
        names = {f.name for f in fields}
        return fields + [f for f in matched if f.name not in names]

    def get_field_names_at_timestep(self, timestep: int) -> list[str]:
        if timestep not in self._fields:
            return []
        return [f if isinstance(f, str) else f.name for f in self._fields[timestep]]

    def get_schema_at_timestep(self, schema: Unischema, timestep: int) -> Unischema:
        names = set(self.get_field_names_at_timestep(timestep))
        return schema.create_schema_view([f for name, f in schema.fields.items() if name in names])

    def get_field_names_at_all_timesteps(self) -> list[str]:
        names: list[str] = []
        for key in sorted(self._fields):
            for name in self.get_field_names_at_timestep(key):
                if name not in names:
                    names.append(name)
        return names

    def _check_sorted(self, timestamps: np.ndarray) -> None:
        if len(timestamps) >= self.length and self.length > 1 and (np.diff(timestamps) < 0).any():
            raise NotImplementedError(f"NGram assumes that the data is sorted by the {self._timestamp_name} field, "
                                      f"which is not the case")

    def ngram_starts(self, timestamps: Any) -> np.ndarray:
        """Row positions where kept n-grams start, for the timestamps of one row group (vectorised)."""
        ts = np.asarray(timestamps)
        n, length = len(ts), self.length
        if n < length:
            return np.zeros(0, dtype=np.int64)
        self._check_sorted(ts)
        candidates = np.arange(n - length + 1)
        if length > 1:
            bad = (np.diff(ts) > self._delta_threshold).astype(np.int64)
            bad_before = np.concatenate([[0], np.cumsum(bad)])
            candidates = candidates[(bad_before[candidates + length - 1] - bad_before[candidates]) == 0]
        if self.timestamp_overlap or not len(candidates):
            return candidates.astype(np.int64)
        kept = []
        previous_end = None
        for start in candidates.tolist():
            if previous_end is not None and ts[start] <= previous_end:
                continue
            kept.append(start)
            previous_end = ts[start + length - 1]
        return np.asarray(kept, dtype=np.int64)

    def form_ngram(self, data: list[dict], schema: Unischema) -> list[dict]:
        """The original's row-dict form: n-grams (``{offset: {field: value}}``) from a list of row dicts."""
        if not data:
            return []
        starts = self.ngram_starts([row[self._timestamp_name] for row in data])
        base_key = min(self._fields)
        result = []
        for start in starts.tolist():
            item = {}
            for step in range(self.length):
                names = set(self.get_field_names_at_timestep(base_key + step))
                row = data[start + step]
                item[base_key + step] = {k: v for k, v in row.items() if k in names}
            result.append(item)
        return result

    def make_namedtuple(self, schema: Unischema, ngram_as_dicts: dict) -> dict:
        """``{offset: namedtuple}`` from ``{offset: {field: value}}``."""
        return {key: self.get_schema_at_timestep(schema, key).make_namedtuple(**value)
                for key, value in ngram_as_dicts.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NGram) and self._fields == other._fields and \
            self._delta_threshold == other._delta_threshold and \
            self._timestamp_name == other._timestamp_name and self.timestamp_overlap == other.timestamp_overlap

    def __hash__(self) -> int:
        return hash((self._timestamp_name, self._delta_threshold, self.timestamp_overlap))
