"""The converter's cache: directory URLs (DBFS), the cache key of a DataFrame, the registry of materialised
DataFrames, the completion marker, and deleting only what this process created.

The cache directory ``<parentCacheDirUrl>/petastorm-converter-<key>`` is named by a hash of the analyzed plan
(canonicalised), the input files (paths, sizes, modification times) and the options, so the same DataFrame is
written once - also from another SparkSession, and from another process when the plan reads only files. On Spark
Connect the plan is identified by its semantic hash on the server (with the schema and the files): reused by every
client of the same server application. Every file of the cache is written, checked and deleted from Python.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
from typing import Any
from urllib.parse import urlparse

from petastorm.fs_utils import get_filesystem_and_path_or_paths
from petastorm.spark._converter_write import write_dataset
from petastorm.spark.session import is_connect

logger = logging.getLogger("petastorm.spark.spark_dataset_converter")

PARENT_CACHE_DIR_URL_CONF = "petastorm.spark.converter.parentCacheDirUrl"
_MARKER = "_petastorm_converter.json"
_CACHE_PREFIX = "petastorm-converter-"
_FORMAT_VERSION = 1
# Leaf plan nodes whose content the canonical plan string plus the input-file fingerprint identify completely.
_FILE_LEAVES = {"Relation", "LogicalRelation", "HiveTableRelation", "Range", "OneRowRelation"}

# ---------------------------------------------------------------------------------------------------------------
# URLs

def normalize_dbfs_url(url: str) -> tuple[str, str]:
    """``(url for Spark, url for Python readers)`` of a directory; Databricks DBFS paths get their FUSE form.

    ``dbfs:/x`` and ``dbfs:///x`` are read from Python as ``file:/dbfs/x``; ``file:/dbfs/x`` (or ``file:///dbfs/x``)
    is written by Spark as ``dbfs:/x`` on a Databricks runtime. Other URLs are returned unchanged (twice).
    """
    url = url.rstrip("/") if len(url) > 1 else url
    if url.startswith("dbfs://") and not url.startswith("dbfs:///"):
        raise ValueError(f"{url!r}: a dbfs URL names no host; use dbfs:/path")
    if url.startswith("dbfs:"):
        path = "/" + url[len("dbfs:"):].lstrip("/")
        return "dbfs:" + path, "file:/dbfs" + path
    for prefix in ("file:///dbfs/", "file:/dbfs/"):
        if url.startswith(prefix):
            path = "/" + url[len(prefix):]
            spark_url = "dbfs:" + path if "DATABRICKS_RUNTIME_VERSION" in os.environ else "file:/dbfs" + path
            return spark_url, "file:/dbfs" + path
    return url, url


def _as_url(path_or_url: str) -> str:
    if urlparse(path_or_url).scheme:
        return path_or_url
    if os.path.isabs(path_or_url):
        return "file://" + path_or_url
    raise ValueError(f"A scheme-less relative directory ({path_or_url!r}) is not supported: use an absolute path or "
                     f"a URL such as 'file:///tmp/cache'")


def _join(url: str, name: str) -> str:
    return url.rstrip("/") + "/" + name


# ---------------------------------------------------------------------------------------------------------------
# Spark helpers

def _spark() -> Any:
    from pyspark import TaskContext
    from pyspark.sql import SparkSession

    if TaskContext.get() is not None:
        raise RuntimeError("The converter can only be used on the Spark driver")
    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()


def _parent_cache_dir_url(spark: Any) -> str:
    url = spark.conf.get(PARENT_CACHE_DIR_URL_CONF, None)
    if not url:
        raise ValueError(f"Set the Spark conf {PARENT_CACHE_DIR_URL_CONF} to the directory "
                         f"where converted DataFrames are cached (e.g. 'file:///tmp/petastorm-cache', or on "
                         f"Databricks 'dbfs:/tmp/petastorm-cache')")
    return _as_url(url).rstrip("/")


# ---------------------------------------------------------------------------------------------------------------
# Cache keys and the registry

def _plan(df: Any) -> Any:
    """What the registry compares a DataFrame by: its analyzed plan on a classic session (a JVM object); on Spark
    Connect, where the plan lives on the server, the DataFrame itself (compared with ``sameSemantics``)."""
    return df if is_connect(df) else df._jdf.queryExecution().analyzed()


def _same_plan(entry_plan: Any, df: Any) -> bool:
    return entry_plan.sameSemantics(df) if is_connect(df) else entry_plan.sameResult(_plan(df))


def _application_id(spark: Any) -> str:
    return spark.conf.get("spark.app.id")


def _files_fingerprint(df: Any) -> list | None:
    """``[url, size, mtime]`` of every input file, read from Python (pyarrow); None if one cannot be seen."""
    files = sorted(df.inputFiles())
    if not files:
        return []
    try:
        fs, paths = get_filesystem_and_path_or_paths([normalize_dbfs_url(file)[1] for file in files])
        infos = fs.get_file_info(paths)
    except Exception:  # noqa: BLE001 - a store Python cannot reach: the plan is keyed per application
        return None
    if any(info.type.name == "NotFound" for info in infos):
        return None
    return [[file, info.size, info.mtime_ns] for file, info in zip(files, infos)]


def _reads_only_files(plan: Any) -> bool:
    leaves = plan.collectLeaves()
    return all(leaves.apply(i).nodeName() in _FILE_LEAVES for i in range(leaves.size()))


def cache_key(spark: Any, df: Any, options: dict) -> tuple[str, bool]:
    """(hex key, stable across processes) for a DataFrame and the materialisation options.

    Stable: a classic session's plan that only reads files Python can fingerprint, keyed by the canonicalised plan
    and the files. Otherwise (local data, RDDs, files Python cannot see, and every Spark Connect plan, which only
    the server sees) the key adds the plan's semantic hash and is valid within the Spark application.
    """
    files = _files_fingerprint(df)
    plan = None if is_connect(df) else _plan(df)
    stable = plan is not None and files is not None and _reads_only_files(plan)
    material: dict = {"files": files, "options": options, "version": _FORMAT_VERSION}
    if plan is not None:
        material["plan"] = plan.canonicalized().toString()
    if not stable:
        material.update(semantic_hash=int(df.semanticHash()), schema=df.schema.json(),
                        application=_application_id(spark))
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    return digest[:32], stable


class CachedDataFrameMeta:
    """A DataFrame materialised by the converter: its analyzed plan (on a classic session; not the DataFrame, which
    stays collectable; on Spark Connect the DataFrame, see ``_plan``), the options and ``cache_dir_url``, the
    dataset directory (None until written)."""

    def __init__(self, df: Any, parent_cache_dir_url: str, row_group_size: int, compression_codec: str,
                 dtype: str | None):
        self.df_plan = _plan(df)
        self.parent_cache_dir_url, self.row_group_size = parent_cache_dir_url, row_group_size
        self.compression_codec, self.dtype = compression_codec, dtype
        self.cache_dir_url: str | None = None

    @classmethod
    def create_cached_dataframe_meta(cls, df: Any, parent_cache_dir_url: str, row_group_size: int,
                                     compression_codec: str, dtype: str | None) -> "CachedDataFrameMeta":
        """Materialises ``df`` under ``parent_cache_dir_url`` (or finds its cache) and returns its entry."""
        return _materialize(df.sparkSession, df, parent_cache_dir_url, row_group_size, compression_codec, dtype)


_registry: dict[str, CachedDataFrameMeta] = {}
_registry_lock = threading.Lock()
_created_dirs: set[str] = set()


def _default_delete_dir_handler(url: str) -> None:
    python_url = normalize_dbfs_url(url)[1]
    fs, path = get_filesystem_and_path_or_paths(python_url)
    if fs.get_file_info(path).type.name != "NotFound":
        fs.delete_dir(path)


_delete_dir_handler = _default_delete_dir_handler


def register_delete_dir_handler(handler: Any) -> None:
    """Sets the function that deletes a cache directory URL (None restores the default)."""
    global _delete_dir_handler
    _delete_dir_handler = handler or _default_delete_dir_handler


def _delete_cache_data_atexit(dataset_url: str) -> None:
    """Deletes a cache directory with the registered handler; a failure is logged, not raised."""
    try:
        _delete_dir_handler(dataset_url)
    except Exception as e:  # noqa: BLE001 - best effort at exit
        logger.warning("Deleting the converter cache %s failed: %r", dataset_url, e)


def _delete_created_at_exit() -> None:
    for url in sorted(_created_dirs):
        _delete_cache_data_atexit(url)
    _created_dirs.clear()


atexit.register(_delete_created_at_exit)


def _marker_matches(python_url: str, key: str) -> bool:
    try:
        fs, path = get_filesystem_and_path_or_paths(_join(python_url, _MARKER))
        with fs.open_input_stream(path) as stream:
            return json.loads(stream.read().decode("utf-8")).get("key") == key
    except Exception:  # noqa: BLE001 - missing or unreadable marker: not reusable
        return False


def _write_marker(python_url: str, info: dict) -> None:
    fs, path = get_filesystem_and_path_or_paths(_join(python_url, _MARKER))
    with fs.open_output_stream(path) as stream:
        stream.write(json.dumps(info, sort_keys=True).encode("utf-8"))


def _materialize(spark: Any, df: Any, parent_url: str, row_group_size_bytes: int, compression_codec: str,
                 dtype: str | None) -> CachedDataFrameMeta:
    options = {"row_group_size_bytes": int(row_group_size_bytes), "compression": compression_codec, "dtype": dtype,
               "writer": "petastorm", "parent": parent_url}
    key, stable = cache_key(spark, df, options)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is not None and (stable or _same_plan(entry.df_plan, df)):
            return entry
        spark_url, python_url = normalize_dbfs_url(_join(parent_url, _CACHE_PREFIX + key))
        entry = CachedDataFrameMeta(df, parent_url, row_group_size_bytes, compression_codec, dtype)
        entry.cache_dir_url = python_url
        if _marker_matches(python_url, key):
            logger.info("Reusing the converter cache %s", python_url)
        else:
            write_dataset(spark, df, dtype, spark_url, row_group_size_bytes, compression_codec)
            _write_marker(python_url, {"key": key, "writer": "petastorm", "options": options,
                                       "application": _application_id(spark)})
            _created_dirs.add(python_url)
            logger.info("Materialised the DataFrame at %s", python_url)
        _registry[key] = entry
        return entry


def _remove_cache_metadata_and_data(cache_dir_url: str) -> None:
    """Forgets the cache entry of ``cache_dir_url`` and deletes the directory with the registered handler."""
    with _registry_lock:
        for key, entry in list(_registry.items()):
            if entry.cache_dir_url == cache_dir_url:
                del _registry[key]
        _created_dirs.discard(cache_dir_url)
    _delete_dir_handler(cache_dir_url)
