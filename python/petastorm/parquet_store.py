"""A Parquet directory (or list of files) on a ``pyarrow.fs`` filesystem: listing, footers, partitions."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from petastorm.fs_utils import UrlOrUrls, get_filesystem_and_path_or_paths

COMMON_METADATA_FILE = "_common_metadata"
SUMMARY_METADATA_FILE = "_metadata"


@dataclass(frozen=True)
class RowGroupPiece:
    """One row group of one data file; ``path`` is relative to the dataset root."""

    path: str
    row_group: int
    partition_keys: tuple[tuple[str, str], ...] = ()


def is_data_file(relative_path: str) -> bool:
    """Whether a path under the dataset root holds data (no component starts with ``_`` or ``.``)."""
    return not any(part.startswith(("_", ".")) for part in relative_path.split("/"))


def partition_keys_of(relative_path: str) -> tuple[tuple[str, str], ...]:
    """The Hive partition ``(name, value)`` pairs named by the directories of ``relative_path``."""
    keys = []
    for part in relative_path.split("/")[:-1]:
        name, sep, value = part.partition("=")
        if sep:
            keys.append((name, value))
    return tuple(keys)


class ParquetStore:
    """A Parquet store: the dataset root, its data files (sorted, relative to the root) and its metadata files."""

    def __init__(self, filesystem: pafs.FileSystem, root: str, files: Sequence[str] | None = None):
        self.filesystem = filesystem
        self.root = root.rstrip("/") or "/"
        self._explicit_files = sorted(files) if files is not None else None

    @classmethod
    def open(cls, url_or_urls: UrlOrUrls, hdfs_driver: str = "libhdfs3", storage_options: dict | None = None,
             filesystem: Any = None) -> "ParquetStore":
        """Opens a dataset directory URL, or a list of Parquet file URLs (then it has no metadata files)."""
        fs, path_or_paths = get_filesystem_and_path_or_paths(url_or_urls, hdfs_driver, storage_options, filesystem)
        if isinstance(path_or_paths, str):
            info = fs.get_file_info(path_or_paths)
            if info.type == pafs.FileType.NotFound:
                raise FileNotFoundError(f"Dataset not found: {url_or_urls}")
            if info.type == pafs.FileType.File:
                return cls(fs, posixpath.dirname(path_or_paths), [posixpath.basename(path_or_paths)])
            return cls(fs, path_or_paths)
        root = posixpath.commonpath(path_or_paths) if len(path_or_paths) > 1 else posixpath.dirname(path_or_paths[0])
        return cls(fs, root, [posixpath.relpath(p, root) for p in path_or_paths])

    @property
    def is_directory(self) -> bool:
        """True when opened on a directory (so ``_common_metadata``/``_metadata`` may exist)."""
        return self._explicit_files is None

    def full_path(self, relative_path: str) -> str:
        return posixpath.join(self.root, relative_path)

    @cached_property
    def data_files(self) -> list[str]:
        """Data files relative to the root, sorted."""
        if self._explicit_files is not None:
            return list(self._explicit_files)
        selector = pafs.FileSelector(self.root, recursive=True)
        prefix = self.root.rstrip("/") + "/"
        files = []
        for info in self.filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            relative = info.path[len(prefix):] if info.path.startswith(prefix) else posixpath.relpath(info.path,
                                                                                                     self.root)
            if is_data_file(relative):
                files.append(relative)
        if not files:
            raise FileNotFoundError(f"No Parquet data files under {self.root}")
        return sorted(files)

    def _read_optional_metadata(self, name: str) -> pq.FileMetaData | None:
        if not self.is_directory:
            return None
        path = self.full_path(name)
        if self.filesystem.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.filesystem.open_input_file(path) as f:
            return pq.read_metadata(f)

    @cached_property
    def common_metadata(self) -> pq.FileMetaData | None:
        """The footer of ``_common_metadata``, or None."""
        return self._read_optional_metadata(COMMON_METADATA_FILE)

    @cached_property
    def summary_metadata(self) -> pq.FileMetaData | None:
        """The footer of ``_metadata`` (all row groups of all files), or None."""
        return self._read_optional_metadata(SUMMARY_METADATA_FILE)

    def key_value_metadata(self) -> dict[bytes, bytes]:
        """The key/value metadata of ``_common_metadata`` (empty if there is none)."""
        md = self.common_metadata
        return dict(md.metadata or {}) if md is not None else {}

    def footer(self, relative_path: str) -> pq.FileMetaData:
        with self.filesystem.open_input_file(self.full_path(relative_path)) as f:
            return pq.read_metadata(f)

    def open_parquet_file(self, relative_path: str) -> pq.ParquetFile:
        return pq.ParquetFile(self.filesystem.open_input_file(self.full_path(relative_path)))

    @cached_property
    def partition_names(self) -> list[str]:
        """Hive partition column names, in directory order (taken from the first data file)."""
        return [name for name, _ in partition_keys_of(self.data_files[0])]

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of the store: Hive partition columns (strings) first, then the first file's columns."""
        file_schema = self.footer(self.data_files[0]).schema.to_arrow_schema()
        partition_fields = [pa.field(name, pa.string()) for name in self.partition_names
                            if name not in file_schema.names]
        return pa.schema(partition_fields + list(file_schema), metadata=file_schema.metadata)

    def write_common_metadata(self, schema: pa.Schema) -> None:
        """Writes ``_common_metadata`` (a footer-only file) for ``schema`` and drops a stale Hadoop ``.crc``."""
        with self.filesystem.open_output_stream(self.full_path(COMMON_METADATA_FILE)) as sink:
            pq.write_metadata(schema, sink)
        crc = self.full_path("." + COMMON_METADATA_FILE + ".crc")
        if self.filesystem.get_file_info(crc).type == pafs.FileType.File:
            self.filesystem.delete_file(crc)
        self.__dict__.pop("common_metadata", None)
