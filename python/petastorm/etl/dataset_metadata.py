"""Petastorm dataset metadata: writing it around a Spark job, reading the schema and the row-group listing back.

Keys kept in ``_common_metadata`` (see docs/format.md):

- ``petastorm.unischema.json.v1``: the schema as JSON (preferred by readers);
- ``dataset-toolkit.unischema.v1``: the schema pickled, for readers of the original format;
- ``dataset-toolkit.num_row_groups_per_file.v1``: JSON ``{relative file path: row-group count}``.
"""
from __future__ import annotations

import io
import json
import logging
import pickle
import posixpath
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from petastorm.errors import PetastormMetadataError
from petastorm.etl.legacy import depickle_legacy_package_name_compatible
from petastorm.etl.legacy_pickle import check_loaded_unischema, safe_loads
from petastorm.fs_utils import FilesystemResolver, UrlOrUrls, get_dataset_path, get_filesystem_and_path_or_paths
from petastorm.parquet_store import ParquetStore, RowGroupPiece, is_data_file, partition_keys_of
from petastorm.unischema import Unischema, unischema_from_json, unischema_to_json

__all__ = [
    "PetastormMetadataError", "PetastormMetadataGenerationError", "UNISCHEMA_KEY", "UNISCHEMA_JSON_KEY",
    "ROW_GROUPS_PER_FILE_KEY", "legacy_dumps", "materialize_dataset", "write_dataset_metadata",
    "add_to_dataset_metadata", "get_schema", "get_schema_from_dataset_url", "infer_or_load_unischema",
    "load_row_groups", "listed_row_groups", "footer_row_groups", "count_row_groups",
    # Re-exported as the original module did.
    "FilesystemResolver", "Unischema", "depickle_legacy_package_name_compatible", "get_dataset_path",
    "get_filesystem_and_path_or_paths",
]

logger = logging.getLogger(__name__)

UNISCHEMA_KEY = b"dataset-toolkit.unischema.v1"
UNISCHEMA_JSON_KEY = b"petastorm.unischema.json.v1"
ROW_GROUPS_PER_FILE_KEY = b"dataset-toolkit.num_row_groups_per_file.v1"

# Pickle protocol of the legacy schema key: what Python 3 writers of the original format used.
LEGACY_PICKLE_PROTOCOL = 4

# Hadoop settings changed for the duration of a materialize_dataset block.
_PARQUET_BLOCK_SIZE = "parquet.block.size"
_SUMMARY_LEVEL = "parquet.summary.metadata.level"
_SUMMARY_ENABLED = "parquet.enable.summary-metadata"
# parquet-mr checks the buffered size (for pages and row groups) after this many rows at the earliest (default 100).
_ROW_CHECK_MIN = "parquet.page.size.row.check.min"

_REGENERATE_HINT = ("Write the dataset inside materialize_dataset(...) or regenerate the metadata of an existing "
                    "dataset with petastorm-generate-metadata.")


class _LegacyPickler(pickle.Pickler):
    """Pickles numpy scalar types by names that numpy 1.x also has (numpy 2 names ``bool_`` ``numpy.bool``)."""

    def reducer_override(self, obj: Any) -> Any:
        if obj is np.bool_:
            return "bool_"
        return NotImplemented


def legacy_dumps(obj: Any) -> bytes:
    """Pickles metadata for readers of the original format (numpy 1.x or 2.x)."""
    buffer = io.BytesIO()
    _LegacyPickler(buffer, protocol=LEGACY_PICKLE_PROTOCOL).dump(obj)
    return buffer.getvalue()


class PetastormMetadataGenerationError(Exception):
    """The dataset was written but its Petastorm metadata could not be generated."""


def _hadoop_settings(row_group_size_mb: int | None, use_summary_metadata: bool) -> dict[str, str]:
    settings = {
        _SUMMARY_LEVEL: "ALL" if use_summary_metadata else "NONE",
        _SUMMARY_ENABLED: "true" if use_summary_metadata else "false",
    }
    # Check the size after a few rows, so that row groups of large rows (images, tensors) stay near the target.
    settings[_ROW_CHECK_MIN] = "3"
    if row_group_size_mb:
        settings[_PARQUET_BLOCK_SIZE] = str(int(row_group_size_mb * 1024 * 1024))
    return settings


@contextmanager
def _hadoop_conf_overrides(spark: Any, settings: dict[str, str]) -> Iterator[None]:
    """Sets Hadoop configuration values for the session's jobs and restores the previous ones (also when the body
    raises). They are set as session confs, which Spark copies into the Hadoop configuration of every job the
    session runs (over the SparkContext's), so this works on classic and Spark Connect sessions alike."""
    conf = spark.conf
    previous = {key: conf.get(key, None) for key in settings}
    try:
        for key, value in settings.items():
            conf.set(key, value)
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                conf.unset(key)
            else:
                conf.set(key, value)


@contextmanager
def materialize_dataset(spark: Any, dataset_url: str, schema: Unischema, row_group_size_mb: int | None = None,
                        use_summary_metadata: bool = False,
                        filesystem_factory: Callable[[], Any] | None = None) -> Iterator[None]:
    """Context manager around the Spark job that writes a Petastorm dataset.

    Inside the block the session's Hadoop configuration (set through ``spark.conf``, so a classic or a Spark
    Connect session) asks parquet-mr for row groups of ``row_group_size_mb`` and for (or against) the
    ``_metadata`` summary file; the previous values are restored afterwards, whether or not the block raised.
    When the block succeeds, ``_common_metadata`` gets the schema (JSON and legacy pickle) and the
    row-group count of every file.

    >>> with materialize_dataset(spark, 'file:///tmp/ds', MySchema, 64):
    ...     df.write.mode('overwrite').parquet('file:///tmp/ds')

    :param filesystem_factory: optional zero-argument callable returning the (pyarrow or fsspec) filesystem to
        write the metadata with; by default it is derived from the URL.
    """
    with _hadoop_conf_overrides(spark, _hadoop_settings(row_group_size_mb, use_summary_metadata)):
        yield
    filesystem = filesystem_factory() if filesystem_factory is not None else None
    write_dataset_metadata(dataset_url, schema, filesystem=filesystem)


def count_row_groups(store: ParquetStore, paths: Sequence[str]) -> list[int]:
    """The row-group count of each data file of ``paths``, from the footers (the store keeps them): those not read
    yet are read one after the other on a local disk (threads only add lock hand-offs there: 1,000 footers took
    150 ms with 16 threads, 30 ms in one), in parallel on remote stores, where each read waits on the network."""
    missing = [path for path in paths if store.cached_footer(path) is None]
    if not store.is_local and len(missing) > 1:
        with ThreadPoolExecutor(max_workers=min(16, len(missing))) as pool:
            list(pool.map(store.footer, missing))
    return [store.footer(path).num_row_groups for path in paths]


def _count_row_groups(store: ParquetStore) -> dict[str, int]:
    """Row groups per data file, from the footers."""
    return dict(zip(store.data_files, count_row_groups(store, store.data_files)))


def footer_row_groups(store: ParquetStore) -> list[RowGroupPiece]:
    """Every row group of the data files in sorted order, from their footers (all read now)."""
    return _pieces(list(_count_row_groups(store).items()))


def write_dataset_metadata(dataset_url: str, schema: Unischema, storage_options: dict | None = None,
                           filesystem: Any = None) -> None:
    """Writes (or rewrites) the Petastorm keys of ``_common_metadata`` for an existing Parquet directory.

    The footer metadata the dataset already had (from ``_common_metadata``, else ``_metadata``, else the first
    data file: Spark's row metadata, for example) is kept.
    """
    if not isinstance(schema, Unischema):
        raise TypeError(f"schema must be a petastorm.unischema.Unischema, got {type(schema).__name__}")
    store = ParquetStore.open(dataset_url, storage_options=storage_options, filesystem=filesystem)
    if not store.is_directory:
        raise PetastormMetadataGenerationError(f"{dataset_url} is a file; Petastorm metadata needs a directory")
    add_to_dataset_metadata(store, {
        UNISCHEMA_JSON_KEY: unischema_to_json(schema).encode("utf-8"),
        UNISCHEMA_KEY: legacy_dumps(schema),
        ROW_GROUPS_PER_FILE_KEY: json.dumps(_count_row_groups(store)).encode("utf-8"),
    })


def add_to_dataset_metadata(store: ParquetStore, entries: dict[bytes, bytes]) -> None:
    """Adds (or replaces) key/value entries of ``_common_metadata``, keeping the others."""
    base = store.common_metadata or store.summary_metadata or store.footer(store.data_files[0])
    base_schema = base.schema.to_arrow_schema()
    metadata = dict(base_schema.metadata or {})
    metadata.update(entries)
    store.write_common_metadata(base_schema.with_metadata(metadata))


def _as_store(dataset: Any) -> ParquetStore:
    if isinstance(dataset, ParquetStore):
        return dataset
    if isinstance(dataset, str):
        return ParquetStore.open(dataset)
    raise TypeError(f"Expected a ParquetStore or a dataset URL, got {type(dataset).__name__}")


def get_schema(dataset: ParquetStore | str) -> Unischema:
    """The Unischema stored in the dataset's ``_common_metadata``: the JSON form if present, else the legacy pickle
    (read as data under the allow-list).

    :raises PetastormMetadataError: no ``_common_metadata``, no schema key, or a schema that cannot be loaded.
    """
    store = _as_store(dataset)
    if store.common_metadata is None:
        raise _NoStoredSchemaError(f"Could not find _common_metadata in {store.root}. {_REGENERATE_HINT}")
    missing = (f"{store.full_path('_common_metadata')} has no Unischema (neither {UNISCHEMA_JSON_KEY.decode()} nor "
               f"{UNISCHEMA_KEY.decode()}). {_REGENERATE_HINT}")
    schema = load_json_or_pickle(store, UNISCHEMA_JSON_KEY, unischema_from_json,
                                 UNISCHEMA_KEY, "Unischema", missing, _NoStoredSchemaError)
    check_loaded_unischema(schema, f"{UNISCHEMA_KEY.decode()} of {store.root}")
    return schema


def load_json_or_pickle(store: ParquetStore, json_key: bytes, from_json: Callable[[str], Any], pickle_key: bytes,
                        what: str, missing: str, missing_error: type = PetastormMetadataError) -> Any:
    """A metadata value of ``_common_metadata``: ``json_key`` parsed by ``from_json`` when present, else
    ``pickle_key`` read as data under the allow-list; ``missing_error(missing)`` when neither is there,
    ``PetastormMetadataError`` naming the key when it cannot be read."""
    metadata = store.key_value_metadata()
    if json_key in metadata:
        try:
            return from_json(metadata[json_key].decode("utf-8"))
        except Exception as e:
            raise PetastormMetadataError(
                f"Invalid {json_key.decode()} in {store.full_path('_common_metadata')}: {e}") from e
    if pickle_key not in metadata:
        raise missing_error(missing)
    try:
        return safe_loads(metadata[pickle_key])
    except Exception as e:
        raise PetastormMetadataError(
            f"Could not load the pickled {what} ({pickle_key.decode()}) of {store.root}: {e}") from e


def get_schema_from_dataset_url(dataset_url_or_urls: UrlOrUrls, hdfs_driver: str = "libhdfs3",
                                storage_options: dict | None = None, filesystem: Any = None) -> Unischema:
    """The Unischema stored in the dataset at ``dataset_url_or_urls`` (see :func:`get_schema`)."""
    return get_schema(ParquetStore.open(dataset_url_or_urls, hdfs_driver, storage_options, filesystem))


def infer_or_load_unischema(dataset: ParquetStore | str) -> Unischema:
    """The stored Unischema if there is one, else (no ``_common_metadata`` or no schema key) one inferred from the
    Parquet schema (partition columns first).

    :raises PetastormMetadataError: a schema key is there but cannot be read or is refused: reading on with an
        inferred schema would hand out tensors as raw bytes. Reading the files as plain Parquet (a list of their
        URLs) is the explicit way to ignore the stored schema.
    """
    store = _as_store(dataset)
    try:
        return get_schema(store)
    except _NoStoredSchemaError:
        logger.info("No Unischema stored in %s; inferring one from the Parquet schema", store.root)
        return Unischema.from_arrow_schema(store.arrow_schema())
    except PetastormMetadataError as e:
        raise PetastormMetadataError(f"{e}. To read the data without the stored schema (tensor columns as raw "
                                     f"bytes), open its files as plain Parquet: make_batch_reader([<file URLs>])"
                                     ) from e


class _NoStoredSchemaError(PetastormMetadataError):
    """The dataset stores no Unischema (as opposed to one that cannot be read)."""


def _listed_counts(store: ParquetStore, counts: Any, source: str) -> list[tuple[str, int]]:
    """``(path, row-group count)`` pairs named by the metadata, sorted, each checked: a relative path inside the
    dataset that the listing holds as a regular data file, and a count that is a non-negative int."""
    where = f"{source} of {store.full_path('_common_metadata' if source != '_metadata' else '_metadata')}"
    if not isinstance(counts, dict):
        raise PetastormMetadataError(f"{where} is not a JSON object of data file: row-group count")
    listed = set(store.data_files)
    for path, count in counts.items():
        if not isinstance(path, str) or path.startswith("/") or posixpath.normpath(path) != path or \
                path.split("/")[0] == ".." or not is_data_file(path):
            raise PetastormMetadataError(f"{where} names {path!r}, which is not a data file path inside the "
                                         f"dataset {store.root}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PetastormMetadataError(f"{where} gives {path} the row-group count {count!r}; expected a "
                                         f"non-negative integer")
        if path not in listed:
            raise PetastormMetadataError(f"{where} names {store.full_path(path)}, which is not a data file of the "
                                         f"dataset (missing, a dangling link or not a regular file); no row of it "
                                         f"can be read. {_REGENERATE_HINT}")
    return sorted(counts.items())


def _pieces(files_and_counts: list[tuple[str, int]]) -> list[RowGroupPiece]:
    return [RowGroupPiece(path, row_group, partition_keys_of(path))
            for path, count in files_and_counts for row_group in range(count)]


def listed_row_groups(dataset: ParquetStore | str) -> list[RowGroupPiece] | None:
    """Every row group of the dataset as listed by its metadata (``_metadata``, else the ``num_row_groups_per_file``
    key with the paths sorted); a row group's position in this list is its *piece index*. None when the metadata
    lists none (plain Parquet): then only the data files' footers tell."""
    store = _as_store(dataset)
    summary = store.summary_metadata
    if summary is not None and summary.num_row_groups > 0:
        counts: dict[str, int] = {}
        for i in range(summary.num_row_groups):
            path = summary.row_group(i).column(0).file_path
            counts[path] = counts.get(path, 0) + 1
        return _pieces(_listed_counts(store, counts, "_metadata"))

    metadata = store.key_value_metadata()
    if ROW_GROUPS_PER_FILE_KEY in metadata:
        try:
            counts = json.loads(metadata[ROW_GROUPS_PER_FILE_KEY].decode("utf-8"))
        except ValueError as e:
            raise PetastormMetadataError(
                f"Invalid {ROW_GROUPS_PER_FILE_KEY.decode()} in {store.full_path('_common_metadata')}: {e}") from e
        return _pieces(_listed_counts(store, counts, ROW_GROUPS_PER_FILE_KEY.decode()))
    if metadata:
        logger.warning("%s has no row-group listing; row groups are counted from the data files' footers. %s",
                       store.full_path("_common_metadata"), _REGENERATE_HINT)
    return None


def load_row_groups(dataset: ParquetStore | str) -> list[RowGroupPiece]:
    """Lists every row group of the dataset; a row group's position in this list is its *piece index*.

    The listing of :func:`listed_row_groups`, else (no listing in the metadata) the footers of the data files in
    sorted order.
    """
    store = _as_store(dataset)
    listed = listed_row_groups(store)
    return listed if listed is not None else footer_row_groups(store)
