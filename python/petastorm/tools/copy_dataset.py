"""Copies a Petastorm dataset with Spark, optionally keeping a subset of fields or rows.

    petastorm-copy-dataset SOURCE_URL TARGET_URL [--field-regex RE ...] [--not-null-fields F ...]
                           [--partition-count N] [--row-group-size-mb MB] [--overwrite-output] [--master M]
                           [--spark-session-config KEY=VALUE ...]

The target is a Petastorm dataset of its own (schema restricted to the copied fields, fresh metadata).
"""
from __future__ import annotations

import argparse
import operator
import sys
from functools import reduce
from typing import Any, Sequence

from petastorm._lazy import lazy_module
from petastorm.tools.spark_session_cli import (add_configure_spark_arguments, configure_spark,
                                               spark_session_config_to_dict)

__all__ = ["copy_dataset", "args_parser", "main", "FilesystemResolver", "add_configure_spark_arguments",
           "configure_spark", "get_schema_from_dataset_url", "match_unischema_fields", "materialize_dataset"]

# Re-exported as in the original, but loaded on first use so that ``--help`` does not import pyarrow and numpy.
_LAZY = {"FilesystemResolver": "petastorm.fs_utils",
         "get_schema_from_dataset_url": "petastorm.etl.dataset_metadata",
         "materialize_dataset": "petastorm.etl.dataset_metadata",
         "match_unischema_fields": "petastorm.unischema"}
__getattr__, __dir__ = lazy_module(__name__, _LAZY)

# Few rows per row group: read the source in large splits rather than one Spark partition per few rows.
_MAX_PARTITION_BYTES = {"spark.sql.files.maxPartitionBytes": "1010612736"}


def copy_dataset(spark: Any, source_url: str, target_url: str, field_regex: Sequence[str] | None,
                 not_null_fields: Sequence[str] | None, overwrite_output: bool, partitions_count: int | None,
                 row_group_size_mb: int | None, hdfs_driver: str = "libhdfs3",
                 storage_options: dict | None = None) -> None:
    """Copies ``source_url`` to ``target_url`` through Spark.

    :param field_regex: regular expressions; only matching fields are copied (None copies all).
    :param not_null_fields: rows where any of these fields is null are skipped.
    :param overwrite_output: replace an existing target instead of failing.
    :param partitions_count: repartition to this many output files.
    :param row_group_size_mb: Parquet row-group size of the target.
    """
    from petastorm.etl.dataset_metadata import get_schema_from_dataset_url, materialize_dataset
    from petastorm.unischema import match_unischema_fields

    schema = get_schema_from_dataset_url(source_url, hdfs_driver=hdfs_driver, storage_options=storage_options)
    if field_regex:
        fields = match_unischema_fields(schema, list(field_regex))
        if not fields:
            raise ValueError(f"No field of {source_url} matches {list(field_regex)} (fields: {list(schema.fields)})")
        schema = schema.create_schema_view(fields)
    unknown = sorted(set(not_null_fields or ()) - set(schema.fields))
    if unknown:
        raise ValueError(f"--not-null-fields {unknown} are not among the copied fields {list(schema.fields)}")

    with materialize_dataset(spark, target_url, schema, row_group_size_mb):
        frame = spark.read.parquet(source_url).select(*schema.fields)
        if not_null_fields:
            frame = frame.filter(reduce(operator.and_, (frame[f].isNotNull() for f in not_null_fields)))
        if partitions_count:
            frame = frame.repartition(partitions_count)
        frame.write.mode("overwrite" if overwrite_output else "error").parquet(target_url)


def args_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``petastorm-copy-dataset`` (Spark options included)."""
    parser = argparse.ArgumentParser(prog="petastorm-copy-dataset", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source_url", help="URL of the source Petastorm dataset")
    parser.add_argument("target_url", help="URL of the target dataset")
    parser.add_argument("--overwrite-output", action="store_true",
                        help="replace the target if it exists (by default the copy fails)")
    parser.add_argument("--field-regex", nargs="+", help="copy only fields matching one of these regexes")
    parser.add_argument("--not-null-fields", nargs="+", help="copy only rows where all these fields are not null")
    parser.add_argument("--partition-count", type=int, help="number of output files")
    parser.add_argument("--row-group-size-mb", type=int, help="row-group size of the target")
    parser.add_argument("--hdfs-driver", default="libhdfs3", choices=["libhdfs", "libhdfs3"],
                        help="accepted for compatibility; pyarrow has one HDFS driver")
    add_configure_spark_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``argv`` defaults to ``sys.argv[1:]``).

    Runs on the active SparkSession if there is one, else on a new one stopped at the end.
    """
    args = args_parser().parse_args(argv)
    from petastorm.spark.session import cli_session

    conf = {**_MAX_PARTITION_BYTES, **spark_session_config_to_dict(args.spark_session_config)}
    with cli_session("petastorm-copy-dataset", args.master, conf) as spark:
        copy_dataset(spark, args.source_url, args.target_url, args.field_regex, args.not_null_fields,
                     args.overwrite_output, args.partition_count, args.row_group_size_mb, args.hdfs_driver)
    return 0


def _main(sys_argv: Sequence[str]) -> None:
    """Runs the tool on an argument list, e.g. ``_main([source_url, target_url, '--overwrite-output'])``."""
    main(list(sys_argv))


if __name__ == "__main__":
    sys.exit(main())
