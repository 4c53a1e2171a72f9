"""Helper names of the original ``petastorm.spark.spark_dataset_converter`` that code outside it imports (Horovod,
notebooks, the original test-suite), mapped onto this converter's implementation.

They are re-exported by :mod:`petastorm.spark.spark_dataset_converter`; import them from there. Names a test may
patch on that module (``_is_spark_local_mode``, ``_FILE_AVAILABILITY_WAIT_TIMEOUT_SECS``) are looked up on it at
call time.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator
from urllib.parse import urlparse

from petastorm.fs_utils import get_filesystem_and_path_or_paths, is_local_filesystem, normalize_dir_url
from petastorm.spark import _converter_cache as _cache
from petastorm.spark import spark_dataset_converter as _conv

logger = _conv.logger

_FILE_AVAILABILITY_WAIT_TIMEOUT_SECS = 30
_RECOMMENDED_FILE_SIZE_BYTES = 50 * 1024 * 1024

_get_spark_session = _conv._spark
_get_df_plan = _conv._plan
_make_sub_dir_url = _conv._join
_cache_df_meta_list_lock = _cache._registry_lock


class _CachedDataFrameMetaList(Sequence):
    """The :class:`CachedDataFrameMeta` of every DataFrame this process has cached: a live, read-only view of the
    converter's registry (the original kept a plain list)."""

    def _entries(self) -> list:
        return list(_cache._registry.values())

    def __getitem__(self, index: Any) -> Any:
        return self._entries()[index]

    def __len__(self) -> int:
        return len(_cache._registry)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._entries())

    def __repr__(self) -> str:
        return repr(self._entries())


_cache_df_meta_list = _CachedDataFrameMetaList()


def _is_spark_local_mode() -> bool:
    """True when the driver's session runs Spark in local mode."""
    return _get_spark_session().conf.get("spark.master").strip().lower().startswith("local")


def _check_url(dir_url: str) -> None:
    """Raises ``ValueError`` for a URL without a scheme (a bare path)."""
    if not urlparse(dir_url).scheme:
        raise ValueError(f"A scheme-less directory url ({dir_url}) is not supported: prepend 'file://' for a "
                         f"local directory")


def _check_parent_cache_dir_url(dir_url: str) -> None:
    """Checks the cache parent URL; on a Databricks cluster, warns about a local path outside ``/dbfs/``."""
    _check_url(dir_url)
    fs, path = get_filesystem_and_path_or_paths(dir_url)
    if "DATABRICKS_RUNTIME_VERSION" in os.environ and not _conv._is_spark_local_mode() \
            and is_local_filesystem(fs) and not path.startswith("/dbfs/"):
        logger.warning("On a Databricks cluster %s should usually be a DBFS FUSE path such as "
                       "'file:/dbfs/path/to/cache_dir'; otherwise '%s' must be shared by every node (e.g. NFS)",
                       _conv.SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, dir_url)


def _get_parent_cache_dir_url() -> str:
    """The checked ``petastorm.spark.converter.parentCacheDirUrl`` of the active session (ValueError if unset)."""
    url = normalize_dir_url(_conv._parent_cache_dir_url(_get_spark_session()))
    _check_parent_cache_dir_url(url)
    return url


def _normalize_databricks_dbfs_url(url: str, err_msg: str) -> str:
    """The DBFS FUSE form (``file:/dbfs/...``) of a ``dbfs:`` URL; a ``file:/dbfs/`` URL as is; else
    ``ValueError(err_msg)``."""
    if url.startswith(("file:/dbfs/", "file:///dbfs/")):
        return url
    if not url.startswith("dbfs:/") or url.startswith("dbfs://") and not url.startswith("dbfs:///"):
        raise ValueError(err_msg)
    return _conv.normalize_dbfs_url(url)[1]


def _cache_df_or_retrieve_cache_data_url(df: Any, parent_cache_dir_url: str, parquet_row_group_size_bytes: int,
                                         compression_codec: str, dtype: str | None) -> str:
    """The cache directory of ``df`` with these options, materialising it first when not cached yet."""
    return _conv.CachedDataFrameMeta.create_cached_dataframe_meta(
        df, parent_cache_dir_url, parquet_row_group_size_bytes, compression_codec, dtype).cache_dir_url


_materialize_df = _cache_df_or_retrieve_cache_data_url


def _wait_file_available(url_list: list[str]) -> None:
    """Waits until every URL exists (eventually consistent stores), at most
    ``_FILE_AVAILABILITY_WAIT_TIMEOUT_SECS`` per file; ``RuntimeError`` naming the files that never appeared."""
    fs, paths = get_filesystem_and_path_or_paths(url_list)
    timeout = _conv._FILE_AVAILABILITY_WAIT_TIMEOUT_SECS

    def appears(path: str) -> bool:
        deadline = time.time() + timeout
        while True:
            if fs.get_file_info(path).type.name != "NotFound":
                return True
            if time.time() >= deadline:
                return False
            time.sleep(0.1)

    with ThreadPoolExecutor(max(1, min(64, len(paths)))) as pool:
        found = list(pool.map(appears, paths))
    missing = [url for url, ok in zip(url_list, found) if not ok]
    if missing:
        raise RuntimeError(f"Timeout while waiting for all parquet-store files to appear at urls {','.join(missing)}; "
                           f"check that the DataFrame was materialised successfully")


def _check_dataset_file_median_size(url_list: list[str]) -> None:
    """Logs a warning when the median size of several local data files is under 50 MB (reading is faster with
    fewer, larger files: ``df.repartition(n)`` / ``df.coalesce(n)``)."""
    if len(url_list) < 2:
        return
    fs, paths = get_filesystem_and_path_or_paths(url_list)
    if not is_local_filesystem(fs):
        return
    sizes = sorted(info.size for info in fs.get_file_info(paths))
    median = sizes[len(sizes) // 2]
    if median < _RECOMMENDED_FILE_SIZE_BYTES:
        logger.warning("The median size %d B (< 50 MB) of the parquet files is small (total %d B); "
                       "df.repartition(n) or df.coalesce(n) before converting may read faster. Files: %s, ...",
                       median, sum(sizes), url_list[0])
