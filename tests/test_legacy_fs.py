"""Petastorm 0.13.1's filesystem interface: ``petastorm.fs_utils.FilesystemResolver`` and ``petastorm.hdfs.namenode``.

Local datasets use real files. No HDFS cluster can run here, so the namenode failover runs on
``_LocalClusterConnector``, a minimal test double for a cluster: an ``HdfsConnector`` subclass whose "namenodes" are
addresses that refuse connections (``down-*``), accept them but fail every call (``standby-*``), or serve a real local
directory (any other). Everything above the connection (namenode resolution from real Hadoop site files, failover,
retries, pickling, pyarrow reading through the failover client) is the real code.
"""
import inspect
import json
import os
import pickle
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from petastorm import fs_utils
from petastorm.fs_utils import FilesystemResolver, get_dataset_path, get_filesystem_and_path_or_paths
from petastorm.hdfs import namenode
from petastorm.hdfs.namenode import (HAHdfsClient, HdfsConnectError, HdfsConnector, HdfsNamenodeResolver,
                                     MaxFailoversExceeded, namenode_failover)

LEGACY_PYTHON = Path(__file__).resolve().parents[1] / ".legacy-venv" / "bin" / "python"

CORE_SITE = """<?xml version="1.0"?>
<configuration>
  <property><name>fs.defaultFS</name><value>hdfs://warpturtle</value></property>
</configuration>
"""
HDFS_SITE = """<?xml version="1.0"?>
<configuration>
  <property><name>dfs.nameservices</name><value>warpturtle,brokenns,otherns</value></property>
  <property><name>dfs.ha.namenodes.warpturtle</name><value>nn2,nn1</value></property>
  <property><name>dfs.namenode.rpc-address.warpturtle.nn1</name><value>nn1.warp.example:8020</value></property>
  <property><name>dfs.namenode.rpc-address.warpturtle.nn2</name><value>nn2.warp.example:8020</value></property>
  <property><name>dfs.ha.namenodes.brokenns</name><value>nn1,nn3</value></property>
  <property><name>dfs.namenode.rpc-address.brokenns.nn1</name><value>nn1.broken.example:8020</value></property>
  <property><name>dfs.ha.namenodes.otherns</name><value>a</value></property>
  <property><name>dfs.namenode.rpc-address.otherns.a</name><value>a.other.example:9000</value></property>
</configuration>
"""


@pytest.fixture
def hadoop_home(tmp_path, monkeypatch):
    home = tmp_path / "hadoop"
    conf = home / "etc" / "hadoop"
    conf.mkdir(parents=True)
    (conf / "core-site.xml").write_text(CORE_SITE)
    (conf / "hdfs-site.xml").write_text(HDFS_SITE)
    for variable in ("HADOOP_PREFIX", "HADOOP_INSTALL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HADOOP_HOME", str(home))
    return home


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello petastorm")
    pq.write_table(pa.table({"id": list(range(10))}), root / "ids.parquet")
    return root


class _StandbyNamenode:
    """A connection to a standby namenode: every call fails as HDFS reports it."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise OSError("org.apache.hadoop.ipc.StandbyException: Operation category READ is not supported")
        return fail


class _LocalClusterConnector(HdfsConnector):
    """Test double for an HDFS cluster (see the module docstring); ``attempts`` records each connection."""

    root = None
    attempts = []

    @classmethod
    def hdfs_connect_namenode(cls, url, driver="libhdfs3", user=None, storage_options=None):
        address = url.netloc
        cls.attempts.append(address)
        if address.startswith("down-"):
            raise OSError(f"Connection refused: {address}")
        if address.startswith("standby-"):
            return _StandbyNamenode()
        return pafs.SubTreeFileSystem(cls.root, pafs.LocalFileSystem())


@pytest.fixture
def cluster(data_dir):
    _LocalClusterConnector.root = str(data_dir)
    _LocalClusterConnector.attempts = []
    yield _LocalClusterConnector
    _LocalClusterConnector.attempts = []


def test_signatures_match_the_original():
    def params(obj):
        return list(inspect.signature(obj).parameters)

    assert params(FilesystemResolver) == ["dataset_url", "hadoop_configuration", "connector", "hdfs_driver", "user",
                                          "storage_options"]
    assert inspect.signature(FilesystemResolver).parameters["connector"].default is HdfsConnector
    assert params(HdfsNamenodeResolver) == ["hadoop_configuration"]
    assert params(HAHdfsClient) == ["connector_cls", "list_of_namenodes", "user"]
    assert params(MaxFailoversExceeded) == ["failed_exceptions", "max_failover_attempts", "func_name"]
    assert params(namenode.failover_all_class_methods) == ["decorator"]
    assert params(namenode_failover) == ["func"]
    assert params(get_dataset_path) == ["parsed_url"]
    assert fs_utils.HdfsConnector is HdfsConnector and fs_utils.HdfsNamenodeResolver is HdfsNamenodeResolver
    assert fs_utils.logger.name == "petastorm.fs_utils" and namenode.logger.name == "petastorm.hdfs.namenode"
    assert issubclass(HdfsConnectError, IOError) and issubclass(MaxFailoversExceeded, RuntimeError)
    assert namenode_failover.MAX_FAILOVER_ATTEMPTS == 3


def test_resolver_on_local_path_file_url_and_list(data_dir):
    for url in (str(data_dir), str(data_dir) + "/", data_dir, f"file://{data_dir}", urlparse(f"file://{data_dir}")):
        resolver = FilesystemResolver(url)
        assert resolver.parsed_dataset_url().scheme == "file" and resolver.parsed_dataset_url().netloc == ""
        path = resolver.get_dataset_path().rstrip("/")
        assert path == str(data_dir)
        fs = resolver.filesystem()
        assert isinstance(fs, pafs.LocalFileSystem)
        assert fs is not None and fs.open_input_stream(path + "/hello.txt").read() == b"hello petastorm"
    # The filesystem is the one our URL resolution gives.
    assert type(FilesystemResolver(str(data_dir)).filesystem()) is type(get_filesystem_and_path_or_paths(
        str(data_dir))[0])

    files = [f"file://{data_dir}/hello.txt", f"file://{data_dir}/ids.parquet"]
    resolver = FilesystemResolver(files)
    assert resolver.get_dataset_path() == [str(data_dir / "hello.txt"), str(data_dir / "ids.parquet")]
    assert [p.path for p in resolver.parsed_dataset_url()] == resolver.get_dataset_path()
    assert pq.read_table(resolver.get_dataset_path()[1], filesystem=resolver.filesystem()).num_rows == 10
    with pytest.raises(ValueError, match="same scheme"):
        FilesystemResolver([f"file://{data_dir}", "memory://bucket/x"])
    with pytest.raises(ValueError, match="hdfs_driver"):
        FilesystemResolver(str(data_dir), hdfs_driver="webhdfs")
    with pytest.raises(ValueError):
        FilesystemResolver("")
    with pytest.raises(ValueError, match="s3://bucket/path"):
        FilesystemResolver(urlparse("s3:///foo/bar"))
    with pytest.raises(ValueError, match="nosuchfs"):
        FilesystemResolver(urlparse("nosuchfs://foo/bar"), {})


def test_filesystem_factory_pickles_and_resolver_does_not(data_dir):
    resolver = FilesystemResolver(f"file://{data_dir}")
    factory = pickle.loads(pickle.dumps(resolver.filesystem_factory()))
    fs = factory()
    assert isinstance(fs, pafs.LocalFileSystem)
    assert fs.open_input_stream(str(data_dir / "hello.txt")).read() == b"hello petastorm"
    with pytest.raises(RuntimeError, match="cannot be pickled"):
        pickle.dumps(resolver)


def test_memory_url_resolves_through_fsspec():
    import fsspec

    memfs = fsspec.filesystem("memory")
    memfs.pipe("/legacy-fs-test/a.txt", b"in memory")
    try:
        resolver = FilesystemResolver("memory://legacy-fs-test")
        assert resolver.get_dataset_path() == "/legacy-fs-test"
        fs = pickle.loads(pickle.dumps(resolver.filesystem_factory()))()
        assert fs.open_input_stream("/legacy-fs-test/a.txt").read() == b"in memory"
    finally:
        memfs.rm("/legacy-fs-test", recursive=True)


def test_get_dataset_path_of_parsed_urls():
    assert get_dataset_path(urlparse("file:///a/b/")) == "/a/b/"
    assert get_dataset_path(urlparse("hdfs://ns/a/b")) == "/a/b"
    assert get_dataset_path(urlparse("s3://bucket/key/ds")) == "bucket/key/ds"
    assert get_dataset_path(urlparse("gs://bucket/ds")) == "bucket/ds"
    assert get_dataset_path(urlparse("memory://bucket/ds")) == "/bucket/ds"
    assert get_dataset_path(urlparse("relative/ds")) == os.path.abspath("relative/ds")


def test_namenode_resolver_reads_hadoop_home(hadoop_home):
    resolver = HdfsNamenodeResolver()
    assert resolver.resolve_hdfs_name_service("warpturtle") == ["nn2.warp.example:8020", "nn1.warp.example:8020"]
    assert resolver.resolve_default_hdfs_service() == ["warpturtle",
                                                       ["nn2.warp.example:8020", "nn1.warp.example:8020"]]
    assert resolver.resolve_hdfs_name_service("no-such-nameservice") is None  # may be a plain host name
    with pytest.raises(RuntimeError, match="dfs.namenode.rpc-address.brokenns.nn3"):
        resolver.resolve_hdfs_name_service("brokenns")


def test_namenode_resolver_errors_on_default_service():
    # A dict stands for a Spark JVM Configuration: both are read with .get(key).
    with pytest.raises(RuntimeError, match="fs.defaultFS"):
        HdfsNamenodeResolver({}).resolve_default_hdfs_service()
    with pytest.raises(IOError, match="hdfs://namenode:8020"):
        HdfsNamenodeResolver({"fs.defaultFS": "hdfs://namenode:8020"}).resolve_default_hdfs_service()


def test_namenode_resolver_without_configuration(monkeypatch, tmp_path, caplog):
    for variable in ("HADOOP_HOME", "HADOOP_PREFIX", "HADOOP_INSTALL"):
        monkeypatch.delenv(variable, raising=False)
    assert HdfsNamenodeResolver().resolve_hdfs_name_service("warpturtle") is None
    assert "HADOOP_HOME" in caplog.text
    monkeypatch.setenv("HADOOP_PREFIX", str(tmp_path))  # set, but without site files
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        HdfsNamenodeResolver().resolve_default_hdfs_service()


@pytest.mark.skipif(not LEGACY_PYTHON.exists(), reason="the original Petastorm 0.13.1 is not installed")
def test_namenode_resolution_matches_the_original(hadoop_home):
    script = """if True:
        import json
        from petastorm.hdfs.namenode import HdfsNamenodeResolver
        from petastorm.fs_utils import get_dataset_path
        from urllib.parse import urlparse
        r = HdfsNamenodeResolver()
        out = {"ns": r.resolve_hdfs_name_service("warpturtle"), "other": r.resolve_hdfs_name_service("otherns"),
               "missing": r.resolve_hdfs_name_service("nope"), "default": r.resolve_default_hdfs_service()}
        for name, call in (("broken", lambda: r.resolve_hdfs_name_service("brokenns")),
                           ("no_default", lambda: HdfsNamenodeResolver({}).resolve_default_hdfs_service()),
                           ("not_ha", lambda: HdfsNamenodeResolver({"fs.defaultFS": "hdfs://h:1"})
                                                  .resolve_default_hdfs_service())):
            try:
                call()
            except Exception as e:
                out[name] = type(e).__name__
        out["paths"] = [get_dataset_path(urlparse(u)) for u in ("file:///a/b/", "hdfs://ns/x", "memory://b/c")]
        print(json.dumps(out))
    """
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run([str(LEGACY_PYTHON), "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    original = json.loads(done.stdout.strip().splitlines()[-1])

    resolver = HdfsNamenodeResolver()
    ours = {"ns": resolver.resolve_hdfs_name_service("warpturtle"),
            "other": resolver.resolve_hdfs_name_service("otherns"),
            "missing": resolver.resolve_hdfs_name_service("nope"), "default": resolver.resolve_default_hdfs_service()}
    for name, call in (("broken", lambda: resolver.resolve_hdfs_name_service("brokenns")),
                       ("no_default", lambda: HdfsNamenodeResolver({}).resolve_default_hdfs_service()),
                       ("not_ha", lambda: HdfsNamenodeResolver({"fs.defaultFS": "hdfs://h:1"})
                                              .resolve_default_hdfs_service())):
        with pytest.raises(Exception) as raised:
            call()
        ours[name] = type(raised.value).__name__
    ours["paths"] = [get_dataset_path(urlparse(u)) for u in ("file:///a/b/", "hdfs://ns/x", "memory://b/c")]
    assert ours == original


def test_ha_client_skips_a_namenode_that_refuses(cluster):
    fs = cluster.connect_to_either_namenode(["down-1:8020", "active-1:8020"], user="alice")
    assert isinstance(fs, HAHdfsClient) and isinstance(fs, pafs.FileSystem)
    assert cluster.attempts == ["down-1:8020", "active-1:8020"]
    assert fs._index_of_nn == 1 and fs._user == "alice" and fs._list_of_namenodes == ["down-1:8020",
                                                                                       "active-1:8020"]
    assert fs.open_input_stream("/hello.txt").read() == b"hello petastorm"
    assert pq.read_table("/ids.parquet", filesystem=fs).column("id").to_pylist() == list(range(10))


def test_ha_client_fails_over_when_a_call_fails(cluster):
    fs = cluster.connect_to_either_namenode(["standby-1:8020", "active-1:8020"])
    assert fs._index_of_nn == 0
    assert fs.get_file_info("/hello.txt").type == pafs.FileType.File  # Python-level call: fails over
    assert fs._index_of_nn == 1 and cluster.attempts == ["standby-1:8020", "active-1:8020"]

    fs = cluster.connect_to_either_namenode(["standby-1:8020", "active-1:8020"])
    assert pq.read_table("/ids.parquet", filesystem=fs).num_rows == 10  # pyarrow's C++ calls: fail over too
    assert fs._index_of_nn == 1


def test_ha_client_raises_path_errors_without_failover(cluster):
    fs = cluster.connect_to_either_namenode(["active-1:8020", "active-2:8020"])
    with pytest.raises(FileNotFoundError):
        fs.open_input_stream("/no-such-file")
    assert cluster.attempts == ["active-1:8020"]


def test_ha_client_gives_up(cluster):
    with pytest.raises(HdfsConnectError, match="down-2:8020"):
        cluster.connect_to_either_namenode(["down-1:8020", "down-2:8020"])
    fs = cluster.connect_to_either_namenode(["standby-1:8020", "standby-2:8020"])
    with pytest.raises(MaxFailoversExceeded) as raised:
        fs.get_file_info("/hello.txt")
    error = raised.value
    assert error.max_failover_attempts == namenode_failover.MAX_FAILOVER_ATTEMPTS == 3
    assert len(error.failed_exceptions) == 4 and error.__name__ == "get_file_info"
    assert all("StandbyException" in str(e) for e in error.failed_exceptions)
    copy = pickle.loads(pickle.dumps(error))
    assert copy.__name__ == "get_file_info" and str(copy) == str(error)


def test_ha_client_pickles_and_reconnects(cluster):
    fs = cluster.connect_to_either_namenode(["down-1:8020", "active-1:8020"], user="bob")
    copy = pickle.loads(pickle.dumps(fs))
    assert isinstance(copy, HAHdfsClient) and copy._user == "bob"
    assert cluster.attempts == ["down-1:8020", "active-1:8020"] * 2
    assert copy.open_input_stream("/hello.txt").read() == b"hello petastorm"


def test_real_connector_without_hdfs_raises_connect_error():
    # No JVM/libhdfs here: pyarrow.fs.HadoopFileSystem fails, and the failover reports every namenode.
    with pytest.raises(HdfsConnectError, match="nn2.example:8020"):
        HdfsConnector.connect_to_either_namenode(["nn1.example:8020", "nn2.example:8020"])
    with pytest.raises(OSError):
        HdfsConnector.hdfs_connect_namenode(urlparse("hdfs://nn1.example:8020"), user="alice")


def test_resolver_connects_to_a_nameservice_with_failover(cluster):
    configuration = {"fs.defaultFS": "hdfs://warpturtle", "dfs.ha.namenodes.warpturtle": "nn1,nn2",
                     "dfs.namenode.rpc-address.warpturtle.nn1": "standby-1:8020",
                     "dfs.namenode.rpc-address.warpturtle.nn2": "active-1:8020"}
    resolver = FilesystemResolver("hdfs://warpturtle/ids.parquet", configuration, connector=cluster, user="carol")
    fs = resolver.filesystem()
    assert isinstance(fs, HAHdfsClient) and fs._user == "carol"
    assert resolver.parsed_dataset_url().netloc == "warpturtle" and resolver.get_dataset_path() == "/ids.parquet"
    assert pq.read_table(resolver.get_dataset_path(), filesystem=fs).num_rows == 10
    factory = pickle.loads(pickle.dumps(resolver.filesystem_factory()))
    assert factory().open_input_stream("/hello.txt").read() == b"hello petastorm"

    # hdfs:///path names fs.defaultFS; the parsed URL then carries its nameservice.
    resolver = FilesystemResolver("hdfs:///hello.txt", configuration, connector=cluster)
    assert isinstance(resolver.filesystem(), HAHdfsClient)
    assert resolver.parsed_dataset_url().netloc == "warpturtle" and resolver.get_dataset_path() == "/hello.txt"


def test_resolver_connects_to_a_namenode_directly(cluster):
    configuration = {"dfs.ha.namenodes.warpturtle": "nn1", "dfs.namenode.rpc-address.warpturtle.nn1": "down-1:1"}
    resolver = FilesystemResolver("hdfs://active-9:8020/hello.txt", configuration, connector=cluster)
    assert isinstance(resolver.filesystem(), pafs.SubTreeFileSystem)
    assert cluster.attempts == ["active-9:8020"] and resolver.get_dataset_path() == "/hello.txt"
    factory = pickle.loads(pickle.dumps(resolver.filesystem_factory()))
    assert factory().open_input_stream("/hello.txt").read() == b"hello petastorm"
    # libhdfs: the host is not looked up as a nameservice.
    FilesystemResolver("hdfs://warpturtle/x", configuration, connector=cluster, hdfs_driver="libhdfs")
    assert cluster.attempts[-1] == "warpturtle"
    # hdfs:/// with a non-HA fs.defaultFS connects to that namenode.
    resolver = FilesystemResolver("hdfs:///x", {"fs.defaultFS": "hdfs://active-3:9000"}, connector=cluster)
    assert cluster.attempts[-1] == "active-3:9000" and resolver.parsed_dataset_url().netloc == "active-3:9000"
    # hdfs:/// without an HDFS fs.defaultFS: pyarrow's "default" namenode (libhdfs reads fs.defaultFS itself).
    resolver = FilesystemResolver("hdfs:///x", {"fs.defaultFS": "file:///"}, connector=cluster)
    assert cluster.attempts[-1] == "" and resolver.parsed_dataset_url().netloc == ""


def test_ha_clients_compare_by_namenodes(cluster):
    first = cluster.connect_to_either_namenode(["active-1:8020", "active-2:8020"])
    second = cluster.connect_to_either_namenode(["active-1:8020", "active-2:8020"])
    other = cluster.connect_to_either_namenode(["active-2:8020"])
    assert first == second and first.equals(second) and not first.equals(other) and first != other
    assert first.type_name == "py::hdfs"
