"""Shared fixtures: one local Spark session (with the built petastorm jar) per test session, and, for the tests that
ask for it, a Spark Connect server in a subprocess with a client session on it."""
import os
import sys

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A `local[2]` SparkSession with the petastorm jar and SQL extension, shared by the whole test run."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from petastorm.spark import configure_spark

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("petastorm-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.memory", "2g")
    )
    session = configure_spark(builder).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


_CONNECT_START_TIMEOUT_S = 120
# WARN for Spark, INFO for the server's "started" line, which the fixture waits for.
_CONNECT_LOG4J = """rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.connect.name = org.apache.spark.sql.connect.service.SparkConnectServer
logger.connect.level = info
"""


def _connect_server_command(port, workdir):
    from _spark_processes import pyspark_home

    from petastorm.spark.session import COMMIT_PROTOCOL_CLASS, EXTENSIONS_CLASS, jar_path

    log4j = workdir / "log4j2.properties"
    log4j.write_text(_CONNECT_LOG4J)
    conf = {"spark.sql.extensions": EXTENSIONS_CLASS, "spark.sql.sources.commitProtocolClass": COMMIT_PROTOCOL_CLASS,
            "spark.connect.grpc.binding.port": str(port), "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
            "spark.sql.warehouse.dir": str(workdir / "warehouse")}
    command = [str(pyspark_home() / "bin" / "spark-submit"),
               "--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", "local[2]",
               "--jars", jar_path(), "--driver-memory", "1g",
               "--driver-java-options", f"-Dlog4j2.configurationFile=file:{log4j}"]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return command


@pytest.fixture(scope="session")
def _spark_connect_session(tmp_path_factory):
    """A Spark Connect server (pyspark's spark-submit, local[2], the petastorm jar and SQL extension, bound to
    127.0.0.1 on a free port) in its own process group, and a client session on it; both stopped at the end."""
    from _spark_processes import LoggedProcess, free_port, spark_env
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    workdir = tmp_path_factory.mktemp("spark-connect")
    port = free_port()
    server = LoggedProcess(_connect_server_command(port, workdir), workdir / "server.log", spark_env())
    try:
        server.wait_for(r"Spark Connect server started at", _CONNECT_START_TIMEOUT_S)
        # pyspark's own builder refuses a remote session beside the classic one of this process (and would switch
        # pyspark.sql.functions to Connect for the whole process): the Connect builder makes it, and the
        # `spark_connect` fixture switches the functions to Connect for each test that uses it.
        session = RemoteSparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
        yield session
        session.stop()
    finally:
        server.stop()


@pytest.fixture
def spark_connect(_spark_connect_session, monkeypatch):
    """A Spark Connect session on a server with the petastorm jar (the server starts on first use)."""
    monkeypatch.setenv("SPARK_CONNECT_MODE_ENABLED", "1")
    return _spark_connect_session


# -- A local S3 server (moto's server mode) for the S3 tests of every module -----------------------------------

class MotoS3:
    """A moto S3 server on 127.0.0.1: its endpoint, the storage_options that reach it from fsspec/s3fs, and a boto3
    client (`create_bucket` makes a bucket for a test module)."""

    key = secret = "testing"
    region = "us-east-1"

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.storage_options = {"key": self.key, "secret": self.secret, "endpoint_url": endpoint,
                                "client_kwargs": {"region_name": self.region}}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name=self.region)

    def create_bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_s3():
    """A moto S3 server on a free port of 127.0.0.1 (a thread of this process, reached over HTTP by this process and
    by JVMs), for the whole test run; AWS settings point nowhere beyond localhost meanwhile."""
    from moto.server import ThreadedMotoServer

    import logging

    with pytest.MonkeyPatch.context() as env:
        env.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)  # not a line per request in the logs
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never look for credentials beyond localhost
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            assert host == "127.0.0.1"
            yield MotoS3(f"http://127.0.0.1:{port}")
        finally:
            server.stop()
