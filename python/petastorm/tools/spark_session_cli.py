"""Command-line options shared by the tools that start a Spark session: ``--master`` and ``--spark-session-config``::

    parser = argparse.ArgumentParser()
    add_configure_spark_arguments(parser)
    args = parser.parse_args(['--master', 'local[2]', '--spark-session-config', 'spark.executor.memory=2g'])
    spark = configure_spark(SparkSession.builder.appName('my-tool'), args).getOrCreate()
"""
from __future__ import annotations

import argparse
from typing import Any, Sequence

__all__ = ["add_configure_spark_arguments", "configure_spark", "spark_session_config_to_dict"]


def add_configure_spark_arguments(argparser: argparse.ArgumentParser) -> None:
    """Adds ``--master`` and ``--spark-session-config`` (a list of ``key=value``) to ``argparser``."""
    argparser.add_argument("--master", type=str,
                           help='Spark master, e.g. "local[4]" for 4 local workers (default: Spark\'s own)')
    argparser.add_argument("--spark-session-config", type=str, nargs="+",
                           help='"key=value" settings of the SparkSession, e.g. '
                                '--spark-session-config spark.executor.cores=2 spark.executor.memory=10g')


def spark_session_config_to_dict(spark_session_config: Sequence[str] | None) -> dict[str, str]:
    """``['k1=v1', 'k2=v2']`` as ``{'k1': 'v1', 'k2': 'v2'}`` (None gives an empty dict).

    A value may itself contain ``=`` (e.g. ``spark.driver.extraJavaOptions=-Dkey=value``): the first ``=`` splits.

    :raises ValueError: an element has no ``=`` or an empty key.
    """
    config: dict[str, str] = {}
    for pair in spark_session_config or ():
        parts = pair.split("=", 1)
        if len(parts) != 2 or not parts[0]:
            raise ValueError(f"Elements of --spark-session-config must be key=value pairs, got {pair!r}")
        config[parts[0]] = parts[1]
    return config


def configure_spark(spark_session_builder: Any, args: argparse.Namespace) -> Any:
    """Applies the parsed ``--spark-session-config`` and ``--master`` options to a ``SparkSession.Builder``.

    :param spark_session_builder: a ``pyspark.sql.SparkSession.Builder``.
    :param args: the result of ``parse_args()`` of a parser prepared by :func:`add_configure_spark_arguments`.
    :return: the same builder, to chain more calls on.
    :raises RuntimeError: ``args`` lacks those options (the parser was not prepared).
    """
    if "spark_session_config" not in args or "master" not in args:
        raise RuntimeError("--spark-session-config and/or --master were not found in the parsed arguments: call "
                           "add_configure_spark_arguments() on the parser first")
    for key, value in spark_session_config_to_dict(args.spark_session_config).items():
        spark_session_builder.config(key, value)
    if args.master:
        spark_session_builder.master(args.master)
    return spark_session_builder
