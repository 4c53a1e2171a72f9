"""Storage: dataset URLs (plain paths, file://, trailing slashes, URL lists, memory://, hdfs://), filesystem objects,
and S3 against a real S3-compatible server (moto's server mode on 127.0.0.1)."""
import pickle

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import IntegerType

from petastorm import make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import (get_schema_from_dataset_url, load_row_groups, materialize_dataset,
                                            write_dataset_metadata)
from petastorm.fs_utils import get_filesystem_and_path_or_paths, normalize_dir_url
from petastorm.parquet_store import ParquetStore
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

StorageSchema = Unischema("StorageSchema", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("vec", np.float32, (4,), NdarrayCodec(), False),
    UnischemaField("img", np.uint8, (8, 8, 3), CompressedImageCodec("png"), False),
])
ROWS = 30


def _row(i):
    return {"id": i, "vec": np.arange(4, dtype=np.float32) + i, "img": np.full((8, 8, 3), i, np.uint8)}


@pytest.fixture(scope="module")
def local_ds(tmp_path_factory):
    """A Petastorm dataset written with pyarrow: 3 files of 10 rows, row groups of 5 rows."""
    root = tmp_path_factory.mktemp("storage") / "ds"
    root.mkdir()
    fields = StorageSchema.fields
    for f in range(3):
        rows = [_row(i) for i in range(f * 10, f * 10 + 10)]
        table = pa.table({
            "id": pa.array([r["id"] for r in rows], pa.int32()),
            "vec": [fields["vec"].codec.encode(fields["vec"], r["vec"]) for r in rows],
            "img": [fields["img"].codec.encode(fields["img"], r["img"]) for r in rows],
        })
        pq.write_table(table, root / f"part-{f:05d}.parquet", row_group_size=5)
    write_dataset_metadata(str(root), StorageSchema)
    return root


def _ids(url, **kwargs):
    with make_reader(url, shuffle_row_groups=False, **kwargs) as reader:
        rows = list(reader)
    for row in rows:
        np.testing.assert_array_equal(row.vec, np.arange(4, dtype=np.float32) + row.id)
        assert row.img.shape == (8, 8, 3) and (row.img == row.id).all()
    return sorted(int(row.id) for row in rows)


def _batch_ids(url, **kwargs):
    """Ids read by make_batch_reader; checks decoded tensors unless ``url`` is a list of files (then there is no
    stored Unischema and the tensor cells stay bytes, as in the original)."""
    with make_batch_reader(url, shuffle_row_groups=False, **kwargs) as reader:
        batches = list(reader)
    ids = np.concatenate([b.id for b in batches])
    if isinstance(url, str):
        vecs = np.concatenate([b.vec for b in batches])
        np.testing.assert_array_equal(vecs, np.arange(4, dtype=np.float32)[None, :] + ids[:, None])
    return sorted(int(i) for i in ids)


# -- URL forms on the local filesystem -------------------------------------------------------------------------

def test_url_forms_read_the_same_dataset(local_ds, monkeypatch):
    monkeypatch.chdir(local_ds.parent)
    forms = [str(local_ds), f"{local_ds}/", f"{local_ds}//", f"file://{local_ds}", f"file://{local_ds}/",
             local_ds, "ds", "ds/", "./ds"]
    for url in forms:
        assert _ids(url if isinstance(url, str) else str(url)) == list(range(ROWS)), url
        assert get_schema_from_dataset_url(str(url)) == StorageSchema
    assert _batch_ids(f"file://{local_ds}/") == list(range(ROWS))


def test_normalize_dir_url():
    assert normalize_dir_url("s3://b/ds///") == "s3://b/ds"
    assert normalize_dir_url("/") == "/" and normalize_dir_url("file:///") == "file:///"
    assert normalize_dir_url("s3://") == "s3://"
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            normalize_dir_url(bad)


def test_url_lists(local_ds):
    files = sorted(str(p) for p in local_ds.glob("part-*.parquet"))
    assert _batch_ids([f"file://{f}" for f in files]) == list(range(ROWS))
    assert _batch_ids(files[:2]) == list(range(20))
    # A directory in the list stands for its data files; duplicates are read once.
    assert _batch_ids([str(local_ds), files[0]]) == list(range(ROWS))
    store = ParquetStore.open(files[1:])
    assert store.root == str(local_ds) and store.data_files == ["part-00001.parquet", "part-00002.parquet"]
    with pytest.raises(ValueError, match="same scheme"):
        get_filesystem_and_path_or_paths([files[0], "s3://bucket/x.parquet"])
    with pytest.raises(ValueError, match="same filesystem"):
        get_filesystem_and_path_or_paths(["s3://bucket1/x.parquet", "s3://bucket2/y.parquet"])
    with pytest.raises(ValueError, match="non-empty"):
        get_filesystem_and_path_or_paths([])
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        ParquetStore.open([files[0], str(local_ds / "missing.parquet")])
    with pytest.raises(FileNotFoundError):
        make_reader(str(local_ds / "nope"))


def test_dataset_moved_after_writing(local_ds, tmp_path):
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    fs = pafs.LocalFileSystem()
    moved.mkdir()
    for p in local_ds.iterdir():
        fs.copy_file(str(p), str(moved / p.name))
    assert _ids(f"file://{moved}") == list(range(ROWS))


def test_filesystem_objects(local_ds):
    url = f"file://{local_ds}"
    assert _ids(url, filesystem=pafs.LocalFileSystem()) == list(range(ROWS))
    assert _ids(str(local_ds), filesystem=fsspec.filesystem("file")) == list(range(ROWS))
    # A sub-tree filesystem: the URL is a path on it.
    subtree = pafs.SubTreeFileSystem(str(local_ds.parent), pafs.LocalFileSystem())
    fs, path = get_filesystem_and_path_or_paths("ds", filesystem=subtree)
    assert path == "ds" and fs is subtree
    assert _batch_ids("ds", filesystem=subtree) == list(range(ROWS))
    with pytest.raises(TypeError, match="pyarrow.fs.FileSystem or an fsspec filesystem"):
        make_reader(url, filesystem=object())


def test_memory_filesystem(local_ds):
    memfs = fsspec.filesystem("memory")
    for p in local_ds.iterdir():
        memfs.pipe(f"/petastorm-test/ds/{p.name}", p.read_bytes())
    try:
        assert _ids("memory://petastorm-test/ds") == list(range(ROWS))
        assert _batch_ids("/petastorm-test/ds/", filesystem=memfs) == list(range(ROWS))
        assert get_schema_from_dataset_url("memory://petastorm-test/ds/") == StorageSchema
    finally:
        memfs.rm("/petastorm-test", recursive=True)


def test_hdfs_urls_use_pyarrow_hadoop_filesystem(local_ds, monkeypatch):
    calls = []

    def fake_hadoop(host, port, **kwargs):  # stands in for the JNI filesystem: serves the local dataset's parent
        calls.append((host, port, kwargs))
        return pafs.SubTreeFileSystem(str(local_ds.parent), pafs.LocalFileSystem())

    monkeypatch.setattr(pafs, "HadoopFileSystem", fake_hadoop)
    for driver in ("libhdfs3", "libhdfs"):
        assert _ids("hdfs://namenode:8020/ds/", hdfs_driver=driver,
                    storage_options={"kerb_ticket": "/tmp/krb5cc"}) == list(range(ROWS))
    assert calls[0] == ("namenode", 8020, {"kerb_ticket": "/tmp/krb5cc"})
    fs, path = get_filesystem_and_path_or_paths("hdfs://alice@namenode/data/ds")
    assert path == "/data/ds" and calls[-1] == ("namenode", 0, {"user": "alice"})
    fs, path = get_filesystem_and_path_or_paths("hdfs:///data/ds")
    assert path == "/data/ds" and calls[-1][:2] == ("default", 0)
    with pytest.raises(ValueError, match="hdfs_driver"):
        get_filesystem_and_path_or_paths("hdfs:///data/ds", hdfs_driver="webhdfs")

    def failing(host, port, **kwargs):
        raise OSError("HDFS connection failed")

    monkeypatch.setattr(pafs, "HadoopFileSystem", failing)
    with pytest.raises(OSError, match="CLASSPATH"):
        make_reader("hdfs://namenode:8020/ds")


@pytest.mark.parametrize("url, package", [("gs://bucket/ds", "gcsfs"), ("abfs://container/ds", "adlfs")])
def test_missing_fsspec_implementation_is_named(url, package):
    try:
        __import__(package)
        pytest.skip(f"{package} is installed")
    except ImportError:
        pass
    with pytest.raises(ImportError, match=package):
        make_reader(url)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="Unsupported URL scheme"):
        make_reader("nosuchfs://host/ds")
    with pytest.raises(TypeError, match="storage_options"):
        get_filesystem_and_path_or_paths("s3://b/ds", storage_options="key=1")


def test_store_caches_footers_and_pickles(local_ds):
    store = ParquetStore.open(str(local_ds))
    assert store.is_local  # local files are read without pyarrow's pre-buffering
    first = store.footer("part-00000.parquet")
    assert store.footer("part-00000.parquet") is first
    with store.open_parquet_file("part-00001.parquet") as pf:
        assert pf.metadata.equals(store.footer("part-00001.parquet"))
        assert pf.read_row_group(1).column("id").to_pylist() == list(range(15, 20))
    clone = pickle.loads(pickle.dumps(store))
    assert clone.root == store.root and clone.data_files == store.data_files
    assert clone.footer("part-00000.parquet").num_rows == 10
    assert load_row_groups(clone) == load_row_groups(store)


# -- S3 on a local S3-compatible server ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3(moto_s3):
    """A bucket on the moto S3 server of the test run (tests/conftest.py), an s3fs filesystem on it, and the
    storage_options that reach it."""
    moto_s3.create_bucket("petastorm-test")
    return fsspec.filesystem("s3", skip_instance_cache=True, **moto_s3.storage_options), moto_s3.storage_options


@pytest.fixture(scope="module")
def spark_ds(spark, tmp_path_factory):
    """The same rows written by Spark inside materialize_dataset (3 partitions of the DataFrame)."""
    path = tmp_path_factory.mktemp("storage-spark") / "ds"
    url = f"file://{path}"
    with materialize_dataset(spark, url, StorageSchema, row_group_size_mb=1):
        rows = [dict_to_spark_row(StorageSchema, _row(i)) for i in range(ROWS)]
        spark.createDataFrame(rows, StorageSchema.as_spark_schema()).repartition(3).write.mode("overwrite") \
            .parquet(url)
    return path


def _upload(fs, local_dir, remote):
    fs.put(str(local_dir), remote, recursive=True)
    fs.invalidate_cache()


def test_s3_spark_written_dataset(s3, spark_ds):
    fs, options = s3
    _upload(fs, spark_ds, "petastorm-test/spark_ds")
    assert fs.exists("petastorm-test/spark_ds/_common_metadata")
    url = "s3://petastorm-test/spark_ds"
    assert get_schema_from_dataset_url(url, storage_options=options) == StorageSchema
    assert get_schema_from_dataset_url(url + "/", storage_options=options) == StorageSchema
    assert _ids(url, storage_options=options) == list(range(ROWS))
    assert _ids(url + "/", storage_options=options, reader_pool_type="dummy") == list(range(ROWS))
    assert _batch_ids(url, storage_options=options) == list(range(ROWS))
    assert _ids("s3a://petastorm-test/spark_ds", storage_options=options) == list(range(ROWS))
    # Same row groups, in the same order, as the local copy.
    local_pieces = load_row_groups(ParquetStore.open(str(spark_ds)))
    assert load_row_groups(ParquetStore.open(url, storage_options=options)) == local_pieces
    # A filesystem object instead of storage_options, with a URL or a bucket path.
    assert _ids(url, filesystem=fs) == list(range(ROWS))
    assert _batch_ids("petastorm-test/spark_ds", filesystem=fs) == list(range(ROWS))
    # A list of the data files.
    files = sorted("s3://" + p for p in fs.glob("petastorm-test/spark_ds/part-*.parquet"))
    assert len(files) == 3
    assert _batch_ids(files, storage_options=options) == list(range(ROWS))


def test_s3_metadata_written_through_s3(s3, local_ds):
    fs, options = s3
    for p in local_ds.glob("part-*.parquet"):
        fs.put(str(p), f"petastorm-test/plain/{p.name}")
    url = "s3://petastorm-test/plain"
    write_dataset_metadata(url, StorageSchema, storage_options=options)
    assert fs.exists("petastorm-test/plain/_common_metadata")
    assert get_schema_from_dataset_url(url, storage_options=options) == StorageSchema
    assert _ids(url, storage_options=options) == list(range(ROWS))


def test_s3_store_pickles_for_worker_processes(s3, local_ds):
    fs, options = s3
    _upload(fs, local_ds, "petastorm-test/pickled")
    store = ParquetStore.open("s3://petastorm-test/pickled", storage_options=options)
    clone = pickle.loads(pickle.dumps(store))
    assert not store.is_local and not clone.is_local  # object-store reads keep pre-buffering
    with clone.open_parquet_file("part-00002.parquet") as pf:
        assert pf.read_row_group(0, columns=["id"]).column("id").to_pylist() == list(range(20, 25))


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_s3_reader_pools(s3, local_ds, pool):
    fs, options = s3
    _upload(fs, local_ds, "petastorm-test/pools")
    url = "s3://petastorm-test/pools"
    assert _batch_ids(url, storage_options=options, reader_pool_type=pool, workers_count=2) == list(range(ROWS))
    assert _ids(url, storage_options=options, reader_pool_type=pool, workers_count=2) == list(range(ROWS))


def test_s3_sees_a_rewritten_dataset(s3, local_ds):
    fs, options = s3
    url = "s3://petastorm-test/rewritten"
    _upload(fs, local_ds, "petastorm-test/rewritten")
    assert _batch_ids(url, storage_options=options) == list(range(ROWS))
    # Another writer (not this process's s3fs instance) removes a file and rewrites the metadata.
    other = fsspec.filesystem("s3", skip_instance_cache=True, **options)
    other.rm("petastorm-test/rewritten/part-00002.parquet")
    other.rm("petastorm-test/rewritten/_common_metadata")
    write_dataset_metadata(url, StorageSchema, filesystem=other)
    assert _batch_ids(url, storage_options=options) == list(range(20))


def test_s3_missing_dataset(s3):
    _, options = s3
    with pytest.raises(FileNotFoundError):
        make_reader("s3://petastorm-test/does-not-exist", storage_options=options)


def test_integer_partition_values_are_what_str_of_an_int_writes():
    from petastorm.parquet_store import _is_int

    assert [_is_int(t) for t in ("0", "7", "-12", str(2 ** 63 - 1))] == [True] * 4
    assert not any(_is_int(t) for t in ("", "-", "--5", "-0", "007", "+5", "1_000", "٣", str(2 ** 63), "1.0"))
