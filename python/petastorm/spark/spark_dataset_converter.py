"""``make_spark_converter``: materialise a Spark DataFrame once as a Petastorm dataset, then read it from TensorFlow
or PyTorch as often as needed.

How a DataFrame is materialised:

* Floating-point precision: with ``dtype='float32'`` (default) double columns - also inside arrays, vectors and
  tensors - become float32; ``'float64'`` widens floats; ``None`` keeps every type.
* ``VectorUDT`` columns (``pyspark.ml`` and ``pyspark.mllib``) become arrays, read back as ``(N, size)`` arrays.
* ``TensorUDT`` columns and nested numeric arrays (``array<array<...>>``) become ``NdarrayCodec`` cells, read back
  as ``(N, *shape)`` arrays; one-level numeric arrays stay native Parquet lists, read back as ``(N, length)``.
* The directory gets ``_common_metadata`` with the Unischema, so readers know every shape.

The write goes through the ``petastorm`` Spark data source when the session's jar provides it, else through
Spark's Parquet writer plus metadata written from Python (:func:`_write_dataset` is the one place that decides).

Caching: the cache directory ``<parentCacheDirUrl>/petastorm-converter-<key>`` is named by a hash of the analyzed
plan (canonicalised), the input files (paths, sizes, modification times) and the options, so the same DataFrame
is written once - also from another SparkSession, and from another process when the plan reads only files.
Directories this process created are deleted at interpreter exit (or by :meth:`SparkDatasetConverter.delete`);
directories reused from elsewhere and paths given by the user are never deleted.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import logging
import os
import shutil
import threading
import warnings
from typing import Any, Iterator, List  # noqa: F401 - List: a name of the original module
from urllib.parse import urlparse

import numpy as np

from petastorm import make_batch_reader
from petastorm._extras import require
from petastorm._npy import read_npy_header
from petastorm.fs_utils import (FilesystemResolver, file_url_path, get_filesystem_and_path_or_paths,  # noqa: F401
                                normalize_dir_url)

__all__ = ["SparkDatasetConverter", "make_spark_converter", "normalize_dbfs_url", "register_delete_dir_handler",
           "CachedDataFrameMeta", "TFDatasetContextManager", "TorchDatasetContextManager"]

logger = logging.getLogger(__name__)

DEFAULT_ROW_GROUP_SIZE_BYTES = 32 * 1024 * 1024
_COMPRESSION_CODECS = ("uncompressed", "bzip2", "gzip", "lz4", "snappy", "deflate", "zstd")
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


def _local_path(url: str) -> str | None:
    return file_url_path(url) if urlparse(url).scheme == "file" else None


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
    url = spark.conf.get(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, None)
    if not url:
        raise ValueError(f"Set the Spark conf {SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF} to the directory "
                         f"where converted DataFrames are cached (e.g. 'file:///tmp/petastorm-cache', or on "
                         f"Databricks 'dbfs:/tmp/petastorm-cache')")
    return _as_url(url).rstrip("/")


_source_available: dict[int, bool] = {}


def petastorm_source_available(spark: Any) -> bool:
    """True when the session's JVM can resolve the ``petastorm`` data source (the petastorm jar with it)."""
    key = id(spark.sparkContext._jsc)
    if key not in _source_available:
        try:
            jvm = spark._jvm
            conf = spark._jsparkSession.sessionState().conf()
            jvm.org.apache.spark.sql.execution.datasources.DataSource.lookupDataSource("petastorm", conf)
            _source_available[key] = True
        except Exception:  # py4j errors: class not found, no such source
            _source_available[key] = False
    return _source_available[key]


def _hadoop_fs(spark: Any, url: str) -> tuple[Any, Any]:
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


# ---------------------------------------------------------------------------------------------------------------
# Preparing the DataFrame

def _is_vector(data_type: Any) -> bool:
    from pyspark.ml.linalg import VectorUDT
    from pyspark.mllib.linalg import VectorUDT as OldVectorUDT

    return isinstance(data_type, (VectorUDT, OldVectorUDT))


def _is_tensor(data_type: Any) -> bool:
    from petastorm.spark.tensor import TensorUDT

    return isinstance(data_type, TensorUDT)


def _is_nested_array(data_type: Any) -> bool:
    from pyspark.sql.types import ArrayType

    return isinstance(data_type, ArrayType) and isinstance(data_type.elementType, ArrayType)


def _cast_floats(data_type: Any, dtype: str | None) -> Any:
    """``data_type`` with its floating-point leaves (also inside arrays) turned into ``dtype``; None if unchanged."""
    from pyspark.sql.types import ArrayType, DoubleType, FloatType

    if dtype is None:
        return None
    source, target = (DoubleType, FloatType) if dtype == "float32" else (FloatType, DoubleType)
    if isinstance(data_type, source):
        return target()
    if isinstance(data_type, ArrayType):
        inner = _cast_floats(data_type.elementType, dtype)
        return ArrayType(inner, data_type.containsNull) if inner is not None else None
    return None


def _prepare(df: Any, dtype: str | None) -> tuple[Any, list[str]]:
    """Vectors to arrays and the precision rule; returns the DataFrame and the columns to encode as NPY cells."""
    from pyspark.ml.functions import vector_to_array

    encoded = []
    for field in df.schema.fields:
        name = field.name
        if _is_vector(field.dataType):
            df = df.withColumn(name, vector_to_array(df[name], dtype or "float64"))
            continue
        if _is_tensor(field.dataType):
            encoded.append(name)
            continue
        cast = _cast_floats(field.dataType, dtype)
        if cast is not None:
            df = df.withColumn(name, df[name].cast(cast))
        if _is_nested_array(field.dataType):
            encoded.append(name)
    return df, encoded


def _prepare_for_source(df: Any, dtype: str | None) -> Any:
    """The precision rule on the JVM for the ``petastorm`` source: floats, arrays, vectors and tensors."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from petastorm.spark.functions import array_to_tensor, tensor_dtype, tensor_shape, tensor_to_array

    for field in df.schema.fields:
        name = field.name
        if _is_vector(field.dataType):
            if dtype is not None:
                df = df.withColumn(name, vector_to_array(df[name], dtype))
        elif _is_tensor(field.dataType):
            if dtype is not None:
                source = "float64" if dtype == "float32" else "float32"
                converted = array_to_tensor(tensor_to_array(name, dtype), tensor_shape(name), dtype)
                df = df.withColumn(name, F.when(tensor_dtype(name) == source, converted).otherwise(F.col(name)))
        else:
            cast = _cast_floats(field.dataType, dtype)
            if cast is not None:
                df = df.withColumn(name, df[name].cast(cast))
            if _is_nested_array(field.dataType):
                df = df.withColumn(name, _nested_array_to_tensor(F.col(name), field.dataType))
    return df


def _nested_array_to_tensor(column: Any, data_type: Any) -> Any:
    """A tensor column from a rectangular nested array column (on the JVM): flattened values, shape from the
    sizes of the first element at each level (a ragged cell fails the element count check)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    from petastorm.spark.functions import array_to_tensor

    sizes, flat, probe, level = [], column, column, data_type
    while isinstance(level, ArrayType):
        sizes.append(F.size(probe))
        probe = F.element_at(probe, 1)
        if isinstance(level.elementType, ArrayType):
            flat = F.flatten(flat)
        level = level.elementType
    return F.when(column.isNull(), F.lit(None)).otherwise(array_to_tensor(flat, F.array(*sizes)))


def _npy_header(descr: str, shape: tuple) -> bytes:
    from numpy.lib import format as npy_format

    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _tensor_cells(column: Any, dtype: str | None) -> list:
    """NPY bytes for each value of a TensorUDT column as Arrow sees it: ``struct<dtype, shape, data>``."""
    descrs = column.field("dtype").to_pylist()
    shapes = column.field("shape").to_pylist()
    datas = column.field("data")
    valid = column.is_valid().to_pylist()
    headers: dict = {}
    cells = []
    for i, (descr, shape) in enumerate(zip(descrs, shapes)):
        if not valid[i]:
            cells.append(None)
            continue
        data = datas[i].as_py()
        if dtype == "float32" and descr == "<f8":
            data, descr = np.frombuffer(data, "<f8").astype("<f4").tobytes(), "<f4"
        elif dtype == "float64" and descr in ("<f4", "<f2"):
            data, descr = np.frombuffer(data, descr).astype("<f8").tobytes(), "<f8"
        key = (descr, tuple(shape))
        if key not in headers:
            headers[key] = _npy_header(descr, key[1])
        cells.append(headers[key] + data)
    return cells


def _nested_cells(column: Any) -> list:
    """NPY bytes for each value of a nested numeric array column; each value must be rectangular."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def rows_of(array: Any) -> list:
        if column.null_count:
            return [None if v is None else np.asarray(v) for v in array.to_pylist()]
        dims, current = [], array
        while pa.types.is_list(current.type) or pa.types.is_large_list(current.type):
            lengths = pc.list_value_length(current).to_numpy(zero_copy_only=False)
            if len(lengths) and (lengths != lengths[0]).any() or current.null_count:
                return [None if v is None else np.asarray(v) for v in array.to_pylist()]
            dims.append(int(lengths[0]) if len(lengths) else 0)
            current = current.flatten()
        values = current.to_numpy(zero_copy_only=False)
        return list(values.reshape((len(array),) + tuple(dims)))

    cells = []
    for value in rows_of(column):
        if value is None:
            cells.append(None)
            continue
        if value.dtype == object:
            raise ValueError("A nested array column holds ragged or null values; each cell must be rectangular")
        value = np.ascontiguousarray(value)
        cells.append(_npy_header(value.dtype.str, value.shape) + value.tobytes())
    return cells


def _encode_columns(df: Any, names: list[str], dtype: str | None) -> Any:
    """Replaces the ``names`` columns (tensors, nested arrays) by NPY cells, in Python workers (``mapInArrow``)."""
    from pyspark.sql.types import BinaryType, StructField, StructType

    if not names:
        return df
    tensor_names = {f.name for f in df.schema.fields if _is_tensor(f.dataType)}
    out_schema = StructType([StructField(f.name, BinaryType(), True) if f.name in names else f
                             for f in df.schema.fields])
    wanted = set(names)

    def encode(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        for batch in batches:
            arrays = []
            for name, column in zip(batch.schema.names, batch.columns):
                if name in wanted:
                    cells = _tensor_cells(column, dtype) if name in tensor_names else _nested_cells(column)
                    column = pa.array(cells, pa.binary())
                arrays.append(column)
            yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    return df.mapInArrow(encode, out_schema)


# ---------------------------------------------------------------------------------------------------------------
# Writing

def _write_dataset(spark: Any, df: Any, dtype: str | None, spark_url: str, python_url: str,
                   row_group_size_bytes: int, compression_codec: str) -> str:
    """Materialises ``df`` at ``spark_url`` as a Petastorm dataset; returns the writer used.

    The single switch between the ``petastorm`` data source and the Parquet fallback.
    """
    if petastorm_source_available(spark):
        prepared = _prepare_for_source(df, dtype)
        (prepared.write.format("petastorm").mode("overwrite")
         .option("compression", compression_codec)
         .option("parquet.block.size", str(row_group_size_bytes))
         .save(spark_url))
        return "petastorm"
    prepared, encoded = _prepare(df, dtype)
    prepared = _encode_columns(prepared, encoded, dtype)
    (prepared.write.mode("overwrite")
     .option("compression", compression_codec)
     .option("parquet.block.size", str(row_group_size_bytes))
     .parquet(spark_url))
    _write_metadata(python_url, encoded)
    return "parquet"


def _write_metadata(python_url: str, encoded: list[str]) -> None:
    """``_common_metadata`` for a directory written by the Parquet fallback: inferred fields, NPY columns' shapes."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from petastorm.codecs import NdarrayCodec
    from petastorm.etl.dataset_metadata import write_dataset_metadata
    from petastorm.unischema import Unischema, UnischemaField

    fs, path = get_filesystem_and_path_or_paths(python_url)
    dataset = ds.dataset(path, filesystem=fs, format="parquet", exclude_invalid_files=True)
    fields = {f.name: f for f in Unischema.from_arrow_schema(dataset.schema, omit_unsupported_fields=True)
              .fields.values()}
    for name in encoded:
        nullable = dataset.schema.field(name).nullable
        keys = set()
        for batch in dataset.to_batches(columns=[name]):
            heads = pc.binary_slice(batch.column(0), 0, 256) if hasattr(pc, "binary_slice") else batch.column(0)
            keys.update(v for v in pc.unique(heads.drop_null()).to_pylist())
        specs = {_parse_header(name, head) for head in keys}
        fields[name] = UnischemaField(name, *_common_spec(name, specs), NdarrayCodec(), nullable)
    schema = Unischema("SparkDatasetConverterSchema", [fields[n] for n in dataset.schema.names if n in fields])
    write_dataset_metadata(python_url, schema, filesystem=fs)


def _parse_header(name: str, head: bytes) -> tuple[str, tuple]:
    dtype, shape, _, _ = read_npy_header(head)
    return dtype.str, tuple(shape)


def _common_spec(name: str, specs: set) -> tuple[Any, tuple]:
    """(numpy type, shape) covering every (descr, shape) seen; None where a dimension varies."""
    if not specs:
        return np.float32, (None,)
    descrs = {d for d, _ in specs}
    if len(descrs) > 1:
        raise ValueError(f"Column '{name}' holds tensors of several dtypes {sorted(descrs)}; cast them to one")
    shapes = [s for _, s in specs]
    if len({len(s) for s in shapes}) > 1:
        raise ValueError(f"Column '{name}' holds tensors of different ranks ({sorted(set(shapes))}); reshape them "
                         f"to one rank")
    shape = tuple(dims[0] if len(set(dims)) == 1 else None for dims in zip(*shapes))
    return np.dtype(descrs.pop()).type, shape


# ---------------------------------------------------------------------------------------------------------------
# Cache keys and the registry

def _plan(df: Any) -> Any:
    return df._jdf.queryExecution().analyzed()


def _leaf_names(plan: Any) -> list[str]:
    leaves = plan.collectLeaves()
    return [leaves.apply(i).nodeName() for i in range(leaves.size())]


def _files_fingerprint(spark: Any, df: Any) -> list:
    files = sorted(df.inputFiles())
    result = []
    for file in files:
        try:
            fs, path = _hadoop_fs(spark, file)
            status = fs.getFileStatus(path)
            result.append([file, status.getLen(), status.getModificationTime()])
        except Exception:
            result.append([file, None, None])
    return result


def cache_key(spark: Any, df: Any, options: dict) -> tuple[str, bool]:
    """(hex key, stable across processes) for a DataFrame and the materialisation options."""
    plan = _plan(df)
    stable = all(name in _FILE_LEAVES for name in _leaf_names(plan))
    material: dict = {"plan": plan.canonicalized().toString(), "options": options, "version": _FORMAT_VERSION}
    if stable:
        material["files"] = _files_fingerprint(spark, df)
    else:
        # Local data and RDDs are not in the plan string: key them by this JVM's semantic hash (per application).
        material["semantic_hash"] = int(plan.semanticHash())
        material["application"] = spark.sparkContext.applicationId
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    return digest[:32], stable


class CachedDataFrameMeta:
    """A DataFrame materialised by the converter: its analyzed plan (not the DataFrame, which stays collectable),
    the options and ``cache_dir_url``, the dataset directory (None until written)."""

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
    local = _local_path(normalize_dbfs_url(url)[1])
    if local is not None:
        if os.path.exists(local):
            shutil.rmtree(local)
        return
    fs, path = _hadoop_fs(_spark(), url)
    if fs.exists(path):
        fs.delete(path, True)


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
               "writer": "petastorm" if petastorm_source_available(spark) else "parquet", "parent": parent_url}
    key, stable = cache_key(spark, df, options)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is not None and (stable or entry.df_plan.sameResult(_plan(df))):
            return entry
        spark_url, python_url = normalize_dbfs_url(_join(parent_url, _CACHE_PREFIX + key))
        entry = CachedDataFrameMeta(df, parent_url, row_group_size_bytes, compression_codec, dtype)
        entry.cache_dir_url = python_url
        if _marker_matches(python_url, key):
            logger.info("Reusing the converter cache %s", python_url)
        else:
            writer = _write_dataset(spark, df, dtype, spark_url, python_url, row_group_size_bytes, compression_codec)
            _write_marker(python_url, {"key": key, "writer": writer, "options": options,
                                       "application": spark.sparkContext.applicationId})
            _created_dirs.add(python_url)
            logger.info("Materialised the DataFrame at %s (%s writer)", python_url, writer)
        _registry[key] = entry
        return entry


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

    PARENT_CACHE_DIR_URL_CONF = "petastorm.spark.converter.parentCacheDirUrl"

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
        """Deletes the materialised directory - only a converter cache this session created or reused, never a
        directory given to :func:`make_spark_converter` by path."""
        if not self._owned:
            warnings.warn(f"{self.cache_dir_url} was given by the caller; the converter does not delete it")
            return
        _remove_cache_metadata_and_data(self.cache_dir_url)


def _remove_cache_metadata_and_data(cache_dir_url: str) -> None:
    """Forgets the cache entry of ``cache_dir_url`` and deletes the directory with the registered handler."""
    with _registry_lock:
        for key, entry in list(_registry.items()):
            if entry.cache_dir_url == cache_dir_url:
                del _registry[key]
        _created_dirs.discard(cache_dir_url)
    _delete_dir_handler(cache_dir_url)


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
    return SparkDatasetConverter(entry.cache_dir_url, files, rows, owned=True)


# The original module's helper names (Horovod, notebooks and the original tests import them from here).
from petastorm.spark._converter_legacy import (  # noqa: E402,F401
    _FILE_AVAILABILITY_WAIT_TIMEOUT_SECS, _cache_df_meta_list, _cache_df_meta_list_lock,
    _cache_df_or_retrieve_cache_data_url, _check_dataset_file_median_size, _check_parent_cache_dir_url, _check_url,
    _get_df_plan, _get_parent_cache_dir_url, _get_spark_session, _is_spark_local_mode, _make_sub_dir_url,
    _materialize_df, _normalize_databricks_dbfs_url, _wait_file_available)
