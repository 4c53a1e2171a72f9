"""Shared fixtures: one local Spark session (with the built petastorm jar) per test session."""
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
