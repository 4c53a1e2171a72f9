"""Regenerates the Petastorm metadata (``_common_metadata``, optionally ``_metadata``) of an existing dataset.

    petastorm-generate-metadata --dataset_url file:///tmp/ds [--unischema_class pkg.module.MySchema]
                                [--use-summary-metadata] [--master local[2]]

Without ``--unischema_class`` the schema already stored in the dataset is reused. ``--unischema_class`` imports
the named module to get the schema object: that runs the module's code, as any import does.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING, Any, Sequence

from petastorm._lazy import lazy_module
from petastorm.errors import PetastormMetadataError

if TYPE_CHECKING:
    from petastorm.unischema import Unischema

__all__ = ["generate_petastorm_metadata", "main", "example_text", "FilesystemResolver", "ROWGROUPS_INDEX_KEY",
           "ROW_GROUPS_PER_FILE_KEY", "Unischema", "add_to_dataset_metadata", "get_schema", "materialize_dataset"]

# Re-exported as in the original, but loaded on first use so that ``--help`` does not import pyarrow and numpy.
_LAZY = {"FilesystemResolver": "petastorm.fs_utils",
         "ROWGROUPS_INDEX_KEY": "petastorm.etl.rowgroup_indexing",
         "ROW_GROUPS_PER_FILE_KEY": "petastorm.etl.dataset_metadata",
         "Unischema": "petastorm.unischema",
         "add_to_dataset_metadata": "petastorm.utils",
         "get_schema": "petastorm.etl.dataset_metadata",
         "materialize_dataset": "petastorm.etl.dataset_metadata",
         "write_dataset_metadata": "petastorm.etl.dataset_metadata",
         "ParquetStore": "petastorm.parquet_store",
         "locate": "pydoc",
         "dataset_metadata": "petastorm.etl.dataset_metadata"}
__getattr__, __dir__ = lazy_module(__name__, _LAZY)

_ARROW_SCHEMA_KEY = b"ARROW:schema"

example_text = """Examples (replace the URL and the schema's dotted path with yours):

Reuse the schema already stored in the dataset:
    petastorm-generate-metadata --dataset_url file:///tmp/hello_world_dataset

Store a schema defined in your code, and write the _metadata summary file with a local Spark:
    petastorm-generate-metadata --dataset_url hdfs:///datasets/hello_world \\
        --unischema_class examples.hello_world.generate_petastorm_dataset.HelloWorldSchema \\
        --use-summary-metadata --master local[4]
"""


def _locate_schema(unischema_class: str) -> Unischema:
    from pydoc import locate

    from petastorm.unischema import Unischema

    schema = locate(unischema_class)
    if schema is None:
        raise ValueError(f"Could not import {unischema_class!r}: expected a dotted path such as "
                         f"'my_package.my_module.MySchema'")
    if not isinstance(schema, Unischema):
        raise ValueError(f"{unischema_class!r} is a {type(schema).__name__}, not a petastorm.unischema.Unischema")
    return schema


def _write_summary_metadata(spark: Any, dataset_url: str) -> None:
    """Has parquet-mr write ``_metadata`` and ``_common_metadata`` from the footers of every file."""
    jvm = spark.sparkContext._gateway.jvm
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    jvm.org.apache.parquet.hadoop.ParquetOutputCommitter.writeMetaDataFile(
        hadoop_conf, jvm.org.apache.hadoop.fs.Path(dataset_url))


def generate_petastorm_metadata(spark: Any, dataset_url: str, unischema_class: str | None = None,
                                use_summary_metadata: bool = False, hdfs_driver: str = "libhdfs3",
                                storage_options: dict | None = None) -> None:
    """Rewrites the Petastorm keys of ``_common_metadata``, keeping its other keys (row-group indexes...).

    :param spark: a SparkSession; needed only with ``use_summary_metadata`` (parquet-mr writes ``_metadata``), and
        then a classic one (a Spark Connect session raises ``SparkConnectUnsupportedError``).
    :param unischema_class: dotted path of a Unischema object; None reuses the schema stored in the dataset.
    """
    from petastorm.etl import dataset_metadata
    from petastorm.etl.dataset_metadata import get_schema, write_dataset_metadata
    from petastorm.parquet_store import ParquetStore

    if use_summary_metadata:
        from petastorm.spark.session import require_classic

        if spark is None:
            raise ValueError("use_summary_metadata needs a SparkSession")
        require_classic(spark, "generate_petastorm_metadata(use_summary_metadata=True)",
                        "use a classic SparkSession (parquet-mr is called through py4j), or use_summary_metadata="
                        "False, which needs no Spark at all")
    store = ParquetStore.open(dataset_url, hdfs_driver, storage_options)
    if unischema_class:
        schema = _locate_schema(unischema_class)
    else:
        try:
            schema = get_schema(store)
        except PetastormMetadataError as e:
            raise ValueError(f"The dataset has no usable stored schema; pass --unischema_class. ({e})") from e
    previous = {key: value for key, value in store.key_value_metadata().items() if key != _ARROW_SCHEMA_KEY}
    if use_summary_metadata:
        _write_summary_metadata(spark, dataset_url)
        # parquet-mr rewrote _common_metadata from the footers: put the previous keys back first.
        dataset_metadata.add_to_dataset_metadata(ParquetStore.open(dataset_url, hdfs_driver, storage_options), previous)
    write_dataset_metadata(dataset_url, schema, storage_options)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="petastorm-generate-metadata",
                                     description="Add the Petastorm metadata to an existing Parquet dataset.",
                                     epilog=example_text, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_url", "--dataset-url", dest="dataset_url", required=True,
                        help="URL of the dataset base directory")
    parser.add_argument("--unischema_class", "--unischema-class", dest="unischema_class",
                        help="fully qualified name of the dataset's Unischema (e.g. "
                             "examples.hello_world.generate_petastorm_dataset.HelloWorldSchema); by default the "
                             "schema already in the dataset is reused")
    parser.add_argument("--master", help="Spark master (only used with --use-summary-metadata)")
    parser.add_argument("--spark-driver-memory", default="4g", help="Spark driver memory (default 4g)")
    parser.add_argument("--use-summary-metadata", action="store_true",
                        help="also write the Parquet _metadata summary file (needs Spark)")
    parser.add_argument("--hdfs-driver", default="libhdfs3", choices=["libhdfs", "libhdfs3"],
                        help="accepted for compatibility; pyarrow has one HDFS driver")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)
    session: Any = contextlib.nullcontext(None)
    if args.use_summary_metadata:  # only the summary file needs Spark
        from petastorm.spark.session import cli_session

        session = cli_session("petastorm-generate-metadata", args.master,
                              {"spark.driver.memory": args.spark_driver_memory})
    with session as spark:
        generate_petastorm_metadata(spark, args.dataset_url, args.unischema_class, args.use_summary_metadata,
                                    args.hdfs_driver)
    return 0


def _main(args: Sequence[str]) -> None:
    """Runs the tool on an argument list, e.g. ``_main(['--dataset_url', 'file:///tmp/ds'])``."""
    main(list(args))


if __name__ == "__main__":
    sys.exit(main())
