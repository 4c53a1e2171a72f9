"""User transformations applied to rows (``make_reader``) or row-group DataFrames (``make_batch_reader``)."""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

from petastorm.unischema import Unischema, UnischemaField


def edit_field(name: str, numpy_dtype: Any, shape: tuple, nullable: bool = False) -> tuple:
    """A ``(name, numpy_dtype, shape, nullable)`` tuple for ``TransformSpec(edit_fields=...)``."""
    return name, numpy_dtype, shape, nullable


def _edit_tuple(item: Any) -> tuple:
    """``(name, numpy_dtype, shape, nullable)`` from a 4-tuple or a :class:`UnischemaField` (its codec is dropped:
    a transform outputs decoded values)."""
    if isinstance(item, UnischemaField):
        return item.name, item.numpy_dtype, item.shape, item.nullable
    if isinstance(item, (tuple, list)) and len(item) == 4:
        return tuple(item)
    raise ValueError(f"edit_fields items must be (name, numpy_dtype, shape, nullable) tuples or UnischemaField "
                     f"objects, got {item!r}")


class TransformSpec:
    """A transformation and the schema change it makes.

    :param func: optional callable; takes a decoded row dict (``make_reader``) or a pandas DataFrame
        (``make_batch_reader``) and returns the transformed one.
    :param edit_fields: ``(name, numpy_dtype, shape, nullable)`` tuples (or ``UnischemaField`` objects) of fields the
        function adds or changes.
    :param removed_fields: names of fields removed from the output.
    :param selected_fields: names of the fields to output, in this order (exclusive with ``removed_fields``).
    """

    def __init__(self, func: Callable[[Any], Any] | None = None, edit_fields: Sequence[tuple] | None = None,
                 removed_fields: Sequence[str] | None = None, selected_fields: Sequence[str] | None = None):
        if removed_fields is not None and selected_fields is not None:
            raise ValueError("TransformSpec takes either removed_fields or selected_fields, not both")
        self.func = func
        self.edit_fields = [_edit_tuple(item) for item in edit_fields or []]
        self.removed_fields = list(removed_fields or [])
        self.selected_fields = list(selected_fields) if selected_fields is not None else None


def transform_schema(schema: Unischema, transform_spec: TransformSpec) -> Unischema:
    """The schema of the rows ``transform_spec`` produces from rows of ``schema``."""
    removed = set(transform_spec.removed_fields)
    unknown = removed - set(schema.fields)
    if unknown:
        warnings.warn(f"removed_fields names fields that are not in the schema; ignored: {sorted(unknown)}")
    excluded = {f[0] for f in transform_spec.edit_fields} | removed
    fields = [field for name, field in schema.fields.items() if name not in excluded]
    fields += [UnischemaField(name=name, numpy_dtype=dtype, shape=shape, codec=None, nullable=nullable)
               for name, dtype, shape, nullable in transform_spec.edit_fields]
    selected = transform_spec.selected_fields
    if selected is not None:
        unknown = set(selected) - {f.name for f in fields}
        if unknown:
            warnings.warn(f"selected_fields names fields that are not in the schema; ignored: {sorted(unknown)}")
        fields = sorted((f for f in fields if f.name in selected), key=lambda f: selected.index(f.name))
    return Unischema(schema._name + "_transformed", fields)
