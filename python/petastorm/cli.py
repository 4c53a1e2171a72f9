"""The ``petastorm`` command.

    petastorm inspect URL    schema, metadata keys, files, row groups, row counts, sizes and row-group indexes
    petastorm ingest-images --labels CSV --images DIR --out URL [--size HxW]
                             images + a filename,label CSV into a Petastorm dataset, with Spark
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence, TextIO

from petastorm.errors import PetastormMetadataError
from petastorm.etl.dataset_metadata import (ROW_GROUPS_PER_FILE_KEY, UNISCHEMA_JSON_KEY, UNISCHEMA_KEY, get_schema,
                                            infer_or_load_unischema, load_row_groups)
from petastorm.etl.rowgroup_indexing import ROWGROUPS_INDEX_JSON_KEY, ROWGROUPS_INDEX_KEY, get_row_group_indexes
from petastorm.parquet_store import ParquetStore
from petastorm.unischema import Unischema


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _human_size(num_bytes: int) -> str:
    size = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _schema_section(schema: Unischema, stored: bool) -> str:
    rows = [(f.name, getattr(f.numpy_dtype, "__name__", f.numpy_dtype), f.shape, f.codec, f.nullable)
            for f in schema.fields.values()]
    origin = "stored" if stored else "inferred from Parquet (not a Petastorm dataset)"
    return f"Schema {schema._name} ({origin}):\n" + _table(["field", "dtype", "shape", "codec", "nullable"], rows)


def _files_section(store: ParquetStore) -> str:
    pieces = load_row_groups(store)
    counts: dict[str, int] = {}
    for piece in pieces:
        counts[piece.path] = counts.get(piece.path, 0) + 1
    rows, total_rows, total_bytes = [], 0, 0
    for path in counts:
        footer = store.footer(path)
        size = store.filesystem.get_file_info(store.full_path(path)).size
        rows.append((path, footer.num_row_groups, footer.num_rows, _human_size(size)))
        total_rows += footer.num_rows
        total_bytes += size
    rows.append(("total", len(pieces), total_rows, _human_size(total_bytes)))
    return f"Files ({len(counts)}):\n" + _table(["file", "row groups", "rows", "size"], rows)


def _metadata_section(store: ParquetStore) -> str:
    keys = store.key_value_metadata()
    known = [UNISCHEMA_JSON_KEY, UNISCHEMA_KEY, ROW_GROUPS_PER_FILE_KEY, ROWGROUPS_INDEX_JSON_KEY, ROWGROUPS_INDEX_KEY]
    rows = [(key.decode(), "yes" if key in keys else "no", _human_size(len(keys[key])) if key in keys else "")
            for key in known]
    summary = "present" if store.summary_metadata is not None else "absent"
    common = "present" if store.common_metadata is not None else "absent"
    return (f"Metadata files: _common_metadata {common}, _metadata {summary}\n"
            + _table(["key", "present", "size"], rows))


def _indexes_section(store: ParquetStore) -> str:
    try:
        indexes = get_row_group_indexes(store)
    except PetastormMetadataError:
        return "Row-group indexes: none"
    rows = []
    for name, indexer in sorted(indexes.items()):
        pieces = set().union(*(indexer.get_row_group_indexes(v) for v in indexer.indexed_values))
        rows.append((name, type(indexer).__name__, ", ".join(indexer.column_names), len(indexer.indexed_values),
                     len(pieces)))
    return "Row-group indexes:\n" + _table(["index", "type", "column", "values", "row groups"], rows)


def inspect(url: str, out: TextIO | None = None) -> None:
    """Prints a readable description of the dataset at ``url`` (to ``out``, default standard output)."""
    store = ParquetStore.open(url)
    try:
        schema, stored = get_schema(store), True
    except PetastormMetadataError:
        schema, stored = infer_or_load_unischema(store), False
    sections = [f"Dataset {url}", _schema_section(schema, stored), _metadata_section(store),
                _files_section(store), _indexes_section(store)]
    (out or sys.stdout).write("\n\n".join(sections) + "\n")


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 32x32, got {text!r}") from None
    return height, width


def ingest(args: argparse.Namespace) -> None:
    """Runs `ingest_images` on a Spark session set up for petastorm (local unless --master says otherwise)."""
    from petastorm.spark.ingest import ingest_images
    from petastorm.spark.session import cli_session

    with cli_session("petastorm-ingest-images", args.master, with_petastorm=True) as spark:
        result = ingest_images(spark, args.labels, args.images, args.out, size=args.size, codec=args.codec,
                               mode=args.mode)
    print(f"wrote {result.rows} rows to {result.output}" +
          (f"; {result.failed_images} images could not be read and were left out" if result.failed_images else ""))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``petastorm`` command."""
    parser = argparse.ArgumentParser(prog="petastorm", description="Petastorm dataset tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect_parser = commands.add_parser("inspect", help="describe a dataset: schema, files, row groups, indexes")
    inspect_parser.add_argument("url", help="dataset URL or path")
    ingest_parser = commands.add_parser("ingest-images", help="images + filename,label CSV -> Petastorm dataset")
    ingest_parser.add_argument("--labels", required=True, help="CSV of filename,label rows (header optional)")
    ingest_parser.add_argument("--images", required=True, help="folder (or URL) the file names are relative to")
    ingest_parser.add_argument("--out", required=True, help="URL of the dataset to write")
    ingest_parser.add_argument("--size", type=_size, help="resize every image to HEIGHTxWIDTH, e.g. 32x32")
    ingest_parser.add_argument("--codec", choices=["ndarray", "png"], default="ndarray", help="how images are stored")
    ingest_parser.add_argument("--mode", choices=["errorifexists", "overwrite", "append", "ignore"],
                               default="errorifexists", help="what to do when --out exists")
    ingest_parser.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    args = parser.parse_args(argv)
    if args.command == "inspect":
        try:
            inspect(args.url)
        except (FileNotFoundError, PetastormMetadataError, ValueError) as e:
            print(f"petastorm inspect: {e}", file=sys.stderr)
            return 1
    elif args.command == "ingest-images":
        from petastorm.spark.ingest import OutputExistsError
        try:
            ingest(args)
        except OutputExistsError as e:
            print(f"petastorm ingest-images: {e.output} already exists; pass --mode overwrite to replace it "
                  "(or --mode append to add to it)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
