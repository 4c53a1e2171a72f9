"""Prints the Petastorm metadata of a dataset: its stored Unischema and its row-group indexes.

    python -m petastorm.etl.metadata_util --dataset-url file:///tmp/ds [--schema] [--index] [--print-values]
                                          [--skip-index NAME ...]

With neither ``--schema`` nor ``--index`` both are printed. ``petastorm inspect`` shows more (row groups, sizes,
all metadata keys); this module keeps the original command line.
"""
from __future__ import annotations, print_function

import argparse
import sys
from typing import Sequence

from petastorm.errors import PetastormMetadataError
from petastorm.etl.dataset_metadata import get_schema
from petastorm.etl.rowgroup_index_metadata import get_row_group_indexes
from petastorm.fs_utils import FilesystemResolver
from petastorm.parquet_store import ParquetStore

__all__ = ["main", "FilesystemResolver"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metadata utility", description="Show the Petastorm metadata of a dataset")
    parser.add_argument("--dataset-url", type=str, required=True, help="URL of the dataset base directory")
    parser.add_argument("--schema", action="store_true", help="print the Unischema stored in the dataset")
    parser.add_argument("--index", action="store_true", help="print the row-group indexes stored in the dataset")
    parser.add_argument("--print-values", action="store_true",
                        help="also print, for every indexed value, the piece indexes of its row groups")
    parser.add_argument("--skip-index", nargs="+", type=str, help="do not print the values of these indexes")
    parser.add_argument("--hdfs-driver", type=str, default="libhdfs3", choices=["libhdfs", "libhdfs3"],
                        help="accepted for compatibility; pyarrow has one HDFS driver")
    return parser


def _print_indexes(store: ParquetStore, skip_index: Sequence[str], print_values: bool) -> None:
    index_dict = get_row_group_indexes(store)
    print("*** Row group indexes from dataset metadata ***")
    for index_name, indexer in index_dict.items():
        print(f"Index: {index_name}")
        if index_name in skip_index:
            print("  (skipped)")
            continue
        for value in indexer.indexed_values:
            pieces = indexer.get_row_group_indexes(value)
            print(f"  -- {value}({len(pieces)})")
            if print_values:
                print(pieces)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``argv`` defaults to ``sys.argv[1:]``); returns the exit status.

    A requested part (``--schema`` / ``--index``) that the dataset lacks is reported on stderr with status 1;
    without those flags, a missing index is only reported.
    """
    args = _parser().parse_args(argv)
    store = ParquetStore.open(args.dataset_url, args.hdfs_driver)
    print_all = not args.schema and not args.index
    status = 0
    if args.schema or print_all:
        print("*** Schema from dataset metadata ***")
        try:
            print(get_schema(store))
        except PetastormMetadataError as e:
            print(f"No schema: {e}", file=sys.stderr)
            status = 1
    if args.index or print_all:
        try:
            _print_indexes(store, args.skip_index or (), args.print_values)
        except PetastormMetadataError as e:
            print(f"No row group indexes: {e}", file=sys.stderr)
            status = 1 if args.index else status
    return status


if __name__ == "__main__":
    sys.exit(main())
