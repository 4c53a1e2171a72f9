"""``make_spark_converter``: materialise a Spark DataFrame once as a Petastorm dataset, then read it from TensorFlow
or PyTorch as often as needed.

How a DataFrame is materialised (through the ``petastorm`` Spark data source; see
:mod:`petastorm.spark._converter_write`):

* Floating-point precision: with ``dtype='float32'`` (default) double columns - also inside arrays, vectors and
  tensors - become float32; ``'float64'`` widens floats; ``None`` keeps every type.
* ``VectorUDT`` columns (``pyspark.ml`` and ``pyspark.mllib``) become arrays, read back as ``(N, size)`` arrays.
* ``TensorUDT`` columns and nested numeric arrays (``array<array<...>>``) become ``NdarrayCodec`` cells, read back
  as ``(N, *shape)`` arrays; one-level numeric arrays stay native Parquet lists, read back as ``(N, length)``.
* The directory gets ``_common_metadata`` with the Unischema, so readers know every shape.

Caching (:mod:`petastorm.spark._converter_cache`): the cache directory ``<parentCacheDirUrl>/petastorm-converter-<key>``
is named by a hash of the analyzed plan, the input files and the options, so the same DataFrame is written once -
also from another SparkSession, and from another process when the plan reads only files. Directories this process
created are deleted at interpreter exit (or by :meth:`SparkDatasetConverter.delete`); directories reused from
elsewhere and paths given by the user are never deleted.

On Spark Connect the server writes the dataset (it needs the petastorm jar); this process reads it, so both must see
the cache directory.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, List  # noqa: F401 - List: a name of the original module

from petastorm import make_batch_reader
from petastorm._extras import require
from petastorm.fs_utils import (FilesystemResolver, file_url_path, get_filesystem_and_path_or_paths,  # noqa: F401
                                normalize_dir_url)
from petastorm.spark._converter_cache import (  # noqa: F401 - names of this module before the split
    PARENT_CACHE_DIR_URL_CONF, CachedDataFrameMeta, _as_url, _delete_cache_data_atexit, _join, _materialize,
    _parent_cache_dir_url, _plan, _registry_lock, _remove_cache_metadata_and_data, _spark, cache_key, logger,
    normalize_dbfs_url, register_delete_dir_handler)
from petastorm.spark import _converter_cache as _cache

__all__ = ["SparkDatasetConverter", "make_spark_converter", "normalize_dbfs_url", "register_delete_dir_handler",
           "CachedDataFrameMeta", "TFDatasetContextManager", "TorchDatasetContextManager"]

DEFAULT_ROW_GROUP_SIZE_BYTES = 32 * 1024 * 1024
_COMPRESSION_CODECS = ("uncompressed", "bzip2", "gzip", "lz4", "snappy", "deflate", "zstd")


# ---------------------------------------------------------------------------------------------------------------
# The converter

def _data_files(python_url: str) -> tuple[list[str], int]:
    """Sorted data file URLs of the dataset directory and their total row count (from the footers)."""
    from petastorm.parquet_store import ParquetStore

    store = ParquetStore.open(python_url)
    files = list(store.data_files)
    rows = sum(store.footer(path).num_rows for path in files)
    return [_join(python_url, path) for path in files], rows


def _get_horovod_rank_and_size() -> tuple[int | None, int | None]:
    """(rank, size) from the Horovod/Open MPI/PMI environment variables; (None, None) when not set (or half set)."""
    for rank_var, size_var in (("HOROVOD_RANK", "HOROVOD_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                               ("PMI_RANK", "PMI_SIZE")):
        rank, size = os.environ.get(rank_var), os.environ.get(size_var)
        if rank is not None or size is not None:
            return (int(rank), int(size)) if rank is not None and size is not None else (None, None)
    return None, None


def _check_rank_and_size_consistent_with_horovod(petastorm_reader_kwargs: dict) -> bool:
    """False (with a warning) when ``cur_shard``/``shard_count`` differ from the Horovod rank and size."""
    kwargs = petastorm_reader_kwargs
    rank, size = _get_horovod_rank_and_size()
    if rank is not None and (kwargs.get("cur_shard") != rank or kwargs.get("shard_count") != size):
        logger.warning("cur_shard=%s and shard_count=%s differ from the Horovod rank %d and size %d: to train each "
                       "worker on its own shard, pass cur_shard=hvd.rank() and shard_count=hvd.size()",
                       kwargs.get("cur_shard"), kwargs.get("shard_count"), rank, size)
        return False
    return True


class SparkDatasetConverter:
    """One materialised DataFrame: make TensorFlow datasets and PyTorch data loaders from it (picklable).

    :ivar cache_dir_url: the dataset directory (as Python readers see it).
    :ivar file_urls: the Parquet data files, sorted.
    :ivar dataset_size: the number of rows (also ``len(converter)``).
    """

    PARENT_CACHE_DIR_URL_CONF = PARENT_CACHE_DIR_URL_CONF

    def __init__(self, cache_dir_url: str, file_urls: list[str], dataset_size: int, owned: bool = True):
        self.cache_dir_url = cache_dir_url
        self.file_urls = file_urls
        self.dataset_size = dataset_size
        self._owned = owned

    def __len__(self) -> int:
        return self.dataset_size

    def _reader_kwargs(self, kwargs: dict, num_epochs: int | None, workers_count: int | None) -> dict:
        for reserved in ("dataset_url", "dataset_url_or_urls"):
            if reserved in kwargs:
                raise TypeError(f"{reserved} is set by the converter")
        kwargs = dict(kwargs, num_epochs=num_epochs, workers_count=workers_count or 4)
        _check_rank_and_size_consistent_with_horovod(kwargs)
        return kwargs

    def make_tf_dataset(self, batch_size: int | None = None, prefetch: int | None = None,
                        num_epochs: int | None = None, workers_count: int | None = None,
                        shuffling_queue_capacity: int | None = None,
                        **petastorm_reader_kwargs: Any) -> "TFDatasetContextManager":
        """A context manager yielding a ``tf.data.Dataset`` of batches (namedtuples of tensors).

        :param batch_size: rows per batch (None: 32).
        :param prefetch: ``Dataset.prefetch`` size (None: AUTOTUNE).
        :param num_epochs: passes over the data. **None (the default, as in the original) repeats forever**: pass
            ``steps_per_epoch`` to Keras ``fit`` or set ``num_epochs``.
        :param workers_count: accepted for compatibility (None: 4).
        :param shuffling_queue_capacity: rows in a ``Dataset.shuffle`` buffer (None/0: no row shuffling).
        :param petastorm_reader_kwargs: other :func:`petastorm.make_batch_reader` arguments (``cur_shard``,
            ``shard_count``, ``shuffle_row_groups``, ``seed``, ``schema_fields``, ``predicate``...).
        """
        if num_epochs is None:
            warnings.warn("make_tf_dataset(num_epochs=None) yields an infinite dataset (as the original): give Keras "
                          "fit a steps_per_epoch, or pass num_epochs=1", UserWarning, stacklevel=2)
        return TFDatasetContextManager(self.cache_dir_url, batch_size, prefetch,
                                       self._reader_kwargs(petastorm_reader_kwargs, num_epochs, workers_count),
                                       shuffling_queue_capacity)

    def make_torch_dataloader(self, batch_size: int = 32, num_epochs: int | None = None,
                              workers_count: int | None = None, shuffling_queue_capacity: int = 0,
                              data_loader_fn: Any = None,
                              **petastorm_reader_kwargs: Any) -> "TorchDatasetContextManager":
        """A context manager yielding a loader of batches (dicts of tensors).

        :param batch_size: rows per batch.
        :param num_epochs: passes over the data; None (default, as in the original) repeats forever.
        :param workers_count: accepted for compatibility (None: 4).
        :param shuffling_queue_capacity: rows in the loader's shuffling buffer; 0 disables shuffling.
        :param data_loader_fn: the loader class/function, called as ``fn(reader, batch_size=...,
            shuffling_queue_capacity=...)``: default :class:`petastorm.pytorch.DataLoader`;
            :class:`petastorm.pytorch.BatchedDataLoader` is much faster for numeric data.
        :param petastorm_reader_kwargs: other :func:`petastorm.make_batch_reader` arguments.
        """
        return TorchDatasetContextManager(self.cache_dir_url, batch_size,
                                          self._reader_kwargs(petastorm_reader_kwargs, num_epochs, workers_count),
                                          shuffling_queue_capacity, data_loader_fn)

    def delete(self) -> None:
        """Deletes the materialised directory - only a converter cache this process wrote, never one it reused
        from another process nor a directory given to :func:`make_spark_converter` by path."""
        if not self._owned:
            warnings.warn(f"{self.cache_dir_url} was not written by this process (a path given by the caller, or a "
                          f"cache another process wrote); the converter does not delete it")
            return
        _remove_cache_metadata_and_data(self.cache_dir_url)


class TFDatasetContextManager:
    """Opens a batch reader on entry and yields a ``tf.data.Dataset`` of batches; stops the reader on exit.

    :param parquet_file_url_list: the Parquet file URLs to read, or the dataset directory URL (a ``str``; the
        converter passes its directory so that the stored Unischema - tensor shapes - is used).
    :param batch_size: rows per batch (None: 32).
    :param prefetch: ``Dataset.prefetch`` size (None: AUTOTUNE).
    :param petastorm_reader_kwargs: keyword arguments of :func:`petastorm.make_batch_reader`.
    :param shuffling_queue_capacity: rows in a ``Dataset.shuffle`` buffer (None/0: no row shuffling).
    """

    def __init__(self, parquet_file_url_list: Any, batch_size: int | None, prefetch: int | None,
                 petastorm_reader_kwargs: dict, shuffling_queue_capacity: int | None):
        self.parquet_file_url_list, self.batch_size, self.prefetch = parquet_file_url_list, batch_size, prefetch
        self.petastorm_reader_kwargs, self.shuffling_queue_capacity = petastorm_reader_kwargs, shuffling_queue_capacity
        self.reader = None

    def __enter__(self) -> Any:
        tf = require("tensorflow", "make_tf_dataset")
        from petastorm.tf_utils import make_petastorm_dataset

        self.reader = _open_reader(self.parquet_file_url_list, self.petastorm_reader_kwargs)
        batch_size = self.batch_size or 32
        if self.shuffling_queue_capacity:
            dataset = (make_petastorm_dataset(self.reader).unbatch()
                       .shuffle(self.shuffling_queue_capacity).batch(batch_size))
        else:
            dataset = make_petastorm_dataset(self.reader, batch_size=batch_size)
        return dataset.prefetch(tf.data.AUTOTUNE if self.prefetch is None else self.prefetch)

    def __exit__(self, *exc: Any) -> None:
        self.reader.stop()
        self.reader.join()


class TorchDatasetContextManager:
    """Opens a batch reader on entry and yields ``data_loader_fn(reader=..., batch_size=...,
    shuffling_queue_capacity=...)`` (default :class:`petastorm.pytorch.DataLoader`); stops the reader on exit.

    ``parquet_file_url_list`` and ``petastorm_reader_kwargs`` as for :class:`TFDatasetContextManager`.
    """

    def __init__(self, parquet_file_url_list: Any, batch_size: int, petastorm_reader_kwargs: dict,
                 shuffling_queue_capacity: int, data_loader_fn: Any):
        self.parquet_file_url_list, self.batch_size = parquet_file_url_list, batch_size
        self.petastorm_reader_kwargs, self.shuffling_queue_capacity = petastorm_reader_kwargs, shuffling_queue_capacity
        self.data_loader_fn = data_loader_fn
        self.reader = None

    def __enter__(self) -> Any:
        from petastorm.pytorch import DataLoader

        self.reader = _open_reader(self.parquet_file_url_list, self.petastorm_reader_kwargs)
        loader_fn = self.data_loader_fn or DataLoader
        return loader_fn(reader=self.reader, batch_size=self.batch_size,
                         shuffling_queue_capacity=self.shuffling_queue_capacity)

    def __exit__(self, *exc: Any) -> None:
        self.reader.stop()
        self.reader.join()


def _open_reader(url_or_urls: Any, reader_kwargs: dict) -> Any:
    """``make_batch_reader`` on a directory URL or, once every file is visible, on a list of file URLs."""
    if not isinstance(url_or_urls, str):
        _wait_file_available(list(url_or_urls))
    return make_batch_reader(url_or_urls, **reader_kwargs)


def make_spark_converter(df: Any, parquet_row_group_size_bytes: int = DEFAULT_ROW_GROUP_SIZE_BYTES,
                         compression_codec: str | None = None, dtype: str | None = "float32") -> SparkDatasetConverter:
    """Materialises ``df`` (once per identical plan and options) under the Spark conf
    ``petastorm.spark.converter.parentCacheDirUrl`` and returns a :class:`SparkDatasetConverter`.

    :param df: a ``pyspark.sql.DataFrame``, or the URL of an existing Parquet/Petastorm directory (used as is:
        never written to nor deleted; ``dbfs:/`` paths are read through ``/dbfs``).
    :param parquet_row_group_size_bytes: target row-group size of the written files.
    :param compression_codec: 'uncompressed' (default for None), 'snappy', 'gzip', 'lz4', 'zstd', 'bzip2',
        'deflate'.
    :param dtype: 'float32' (default), 'float64' or None: precision of floating-point columns (see module doc).
    """
    if isinstance(df, str):
        _, python_url = normalize_dbfs_url(_as_url(df))
        files, rows = _data_files(python_url)
        return SparkDatasetConverter(python_url, files, rows, owned=False)
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    compression_codec = (compression_codec or "uncompressed").lower()
    if compression_codec not in _COMPRESSION_CODECS:
        raise ValueError(f"compression_codec must be None or one of {_COMPRESSION_CODECS}, got {compression_codec!r}")
    spark = df.sparkSession if hasattr(df, "sparkSession") else _spark()
    parent_url = _parent_cache_dir_url(spark)
    entry = _materialize(spark, df, parent_url, parquet_row_group_size_bytes, compression_codec, dtype)
    files, rows = _data_files(entry.cache_dir_url)
    _check_dataset_file_median_size(files)
    # Only a directory this process wrote is ours to delete: a cache reused from another process stays.
    return SparkDatasetConverter(entry.cache_dir_url, files, rows, owned=entry.cache_dir_url in _cache._created_dirs)


# The original module's helper names (Horovod, notebooks and the original tests import them from here).
from petastorm.spark._converter_legacy import (  # noqa: E402,F401
    _FILE_AVAILABILITY_WAIT_TIMEOUT_SECS, _cache_df_meta_list, _cache_df_meta_list_lock,
    _cache_df_or_retrieve_cache_data_url, _check_dataset_file_median_size, _check_parent_cache_dir_url, _check_url,
    _get_df_plan, _get_parent_cache_dir_url, _get_spark_session, _is_spark_local_mode, _make_sub_dir_url,
    _materialize_df, _normalize_databricks_dbfs_url, _wait_file_available)
