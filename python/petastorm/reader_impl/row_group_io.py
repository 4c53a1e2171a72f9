"""Reading one row group into Arrow and decoding it: into row dicts (``make_reader``) or numpy columns
(``make_batch_reader``)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Collection, Sequence

import numpy as np
import pyarrow as pa

from petastorm.codecs import ScalarCodec, decode_column
from petastorm.errors import DecodeFieldError
from petastorm.parquet_store import ParquetStore, RowGroupPiece
from petastorm.unischema import Unischema


def read_row_group(store: ParquetStore, piece: RowGroupPiece, column_names: Sequence[str]) -> pa.Table:
    """Reads ``column_names`` of one row group; Hive partition columns come from the path as strings."""
    partition_values = dict(piece.partition_keys)
    parquet_file = store.open_parquet_file(piece.path)
    file_columns = set(parquet_file.schema_arrow.names)
    stored = [name for name in column_names if name not in partition_values]
    missing = [name for name in stored if name not in file_columns]
    if missing:
        raise ValueError(f"Columns {missing} requested but not found in {store.full_path(piece.path)} "
                         f"(it has {sorted(file_columns)})")
    table = parquet_file.read_row_group(piece.row_group, columns=stored)
    columns = []
    for name in column_names:
        if name in partition_values:
            columns.append(pa.array([partition_values[name]] * table.num_rows, pa.string()))
        else:
            columns.append(table.column(name))
    return pa.table(columns, names=list(column_names))


def row_drop_mask(num_rows: int, partition: int, num_partitions: int) -> np.ndarray:
    """Rows kept by drop partition ``partition`` of ``num_partitions`` (contiguous, near-equal slices)."""
    if num_partitions <= 1 or num_rows == 0:
        return np.ones(num_rows, dtype=bool)
    slice_size = num_rows / min(num_rows, num_partitions)
    return np.floor(np.arange(num_rows) / slice_size) == partition


def decode_value(field: Any, value: Any) -> Any:
    """Decodes one stored cell: by the field's codec, else cast to the field's numpy type; nulls stay None."""
    if value is None:
        return None
    try:
        if field.codec is not None:
            return field.codec.decode(field, value)
        if field.numpy_dtype is not None and issubclass(field.numpy_dtype, (np.generic, Decimal)):
            return field.numpy_dtype(value)
        return value
    except Exception as e:
        raise DecodeFieldError(f"Decoding field '{field.name}' failed: {e}") from e


def decode_rows(table: pa.Table, schema: Unischema) -> list[dict]:
    """Decodes every row of ``table`` into a dict of the fields of ``schema`` present in it."""
    fields = [schema.fields[name] for name in table.column_names if name in schema.fields]
    columns = [table.column(field.name).to_pylist() for field in fields]
    return [{field.name: decode_value(field, column[i]) for field, column in zip(fields, columns)}
            for i in range(table.num_rows)]


def _native_column_to_numpy(name: str, column: pa.ChunkedArray, field: Any) -> np.ndarray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pandas().to_numpy().astype(np.str_)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or \
            pa.types.is_fixed_size_list(column.type):
        values = column.to_pandas().to_numpy()
        if len(values) == 0:
            return values
        lengths = {len(v) if v is not None else None for v in values}
        if len(lengths) != 1 or None in lengths:
            raise ValueError(f"Field '{name}': list values must all have the same length to form a batch, "
                             f"got lengths {sorted(lengths, key=str)}")
        stacked = np.vstack(values.tolist())
        shape = tuple(field.shape) if field is not None else ()
        if len(shape) > 1 and None not in shape:
            stacked = stacked.reshape((len(values),) + shape)
        return stacked
    return column.to_pandas().to_numpy()


def decode_batch(table: pa.Table, schema: Unischema) -> dict[str, np.ndarray]:
    """Decodes a row group into numpy columns.

    Columns with a tensor or image codec are decoded by ``decode_column`` into stacked ``(N, *shape)`` arrays;
    native Parquet columns convert as in the original batch reader: strings to ``str_`` arrays, equal-length lists
    to a matrix, everything else through pandas.
    """
    result = {}
    for name in table.column_names:
        field = schema.fields.get(name)
        column = table.column(name)
        try:
            if field is not None and field.codec is not None and not isinstance(field.codec, ScalarCodec):
                result[name] = decode_column(field, column.combine_chunks())
            else:
                result[name] = _native_column_to_numpy(name, column, field)
        except DecodeFieldError:
            raise
        except Exception as e:
            raise DecodeFieldError(f"Decoding column '{name}' failed: {e}") from e
    return result


def columns_to_read(schema: Unischema, extra: Collection[str] = ()) -> list[str]:
    """Field names of ``schema`` followed by any ``extra`` names not among them."""
    names = list(schema.fields)
    return names + [name for name in extra if name not in schema.fields]
