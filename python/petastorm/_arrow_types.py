"""Inference of UnischemaFields from Arrow schemas (for plain Parquet datasets)."""
from __future__ import annotations

import decimal
import warnings
from typing import Any, List, Optional, Set

import numpy as np
import pyarrow as pa


def _scalar_numpy_type(t: pa.DataType) -> Optional[Any]:
    """The numpy scalar class (or decimal.Decimal) for an Arrow scalar type; None if unsupported."""
    if pa.types.is_dictionary(t):
        return _scalar_numpy_type(t.value_type)
    if pa.types.is_boolean(t):
        return np.bool_
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.dtype(t.to_pandas_dtype()).type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return np.str_
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or pa.types.is_binary_view(t)):
        return np.bytes_
    if pa.types.is_decimal(t):
        return decimal.Decimal
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return np.datetime64
    if pa.types.is_duration(t):
        return np.timedelta64
    return None


def _field_from_arrow(field: pa.Field) -> Optional[Any]:
    from petastorm.unischema import UnischemaField

    t, shape = field.type, ()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        t, shape = t.value_type, (None,)
    elif pa.types.is_fixed_size_list(t):
        t, shape = t.value_type, (t.list_size,)
    numpy_type = _scalar_numpy_type(t)
    if numpy_type is None:
        return None
    return UnischemaField(field.name, numpy_type, shape, None, field.nullable)


def _partition_names(dataset: Any) -> Set[str]:
    partitioning = getattr(dataset, "partitioning", None)
    schema = getattr(partitioning, "schema", None)
    return set(schema.names) if schema is not None else set()


def unischema_fields_from_arrow(dataset_or_schema: Any, omit_unsupported_fields: bool = True) -> List[Any]:
    """UnischemaFields for the columns of an Arrow schema (or of ``dataset.schema``), in column order.

    Columns of nested or otherwise unsupported types are skipped with one warning naming them, or, with
    ``omit_unsupported_fields=False``, make this raise ValueError.
    """
    from petastorm.unischema import UnischemaField

    schema = dataset_or_schema if isinstance(dataset_or_schema, pa.Schema) else getattr(dataset_or_schema, "schema",
                                                                                        None)
    if not isinstance(schema, pa.Schema):
        raise TypeError(f"Expected a pyarrow.Schema or a dataset with one, got {type(dataset_or_schema).__name__}")
    partitions = _partition_names(dataset_or_schema)
    fields, unsupported = [], []
    for arrow_field in schema:
        if arrow_field.name in partitions:
            numpy_type = np.int64 if pa.types.is_integer(arrow_field.type) else np.str_
            fields.append(UnischemaField(arrow_field.name, numpy_type, (), None, False))
            continue
        field = _field_from_arrow(arrow_field)
        if field is None:
            unsupported.append(f"{arrow_field.name} ({arrow_field.type})")
        else:
            fields.append(field)
    if unsupported:
        message = "Unsupported column types, cannot infer a Unischema for: " + ", ".join(unsupported)
        if not omit_unsupported_fields:
            raise ValueError(message)
        warnings.warn(message + ". These columns are omitted.")
    return fields
