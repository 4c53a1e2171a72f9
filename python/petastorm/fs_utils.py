"""Resolving dataset URLs to a ``pyarrow.fs`` filesystem and a path on it."""
from __future__ import annotations

import os
from typing import Any, Sequence, Union
from urllib.parse import urlparse

import pyarrow.fs as pafs

UrlOrUrls = Union[str, Sequence[str]]

_HDFS_DRIVERS = ("libhdfs", "libhdfs3")


def normalize_dir_url(dataset_url: str) -> str:
    """Checks that ``dataset_url`` is a non-empty string and strips a trailing ``/``."""
    if not isinstance(dataset_url, str) or not dataset_url:
        raise ValueError(f"dataset_url must be a non-empty string, got {dataset_url!r}")
    return dataset_url[:-1] if len(dataset_url) > 1 and dataset_url.endswith("/") else dataset_url


def as_arrow_filesystem(filesystem: Any) -> pafs.FileSystem:
    """Returns ``filesystem`` as a ``pyarrow.fs.FileSystem`` (an fsspec filesystem is wrapped)."""
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    import fsspec

    if isinstance(filesystem, fsspec.AbstractFileSystem):
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    raise TypeError(f"Expected a pyarrow.fs.FileSystem or an fsspec filesystem, got {type(filesystem).__name__}")


def _is_local(parsed) -> bool:
    return parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt")


def _path_of(url: str, filesystem: pafs.FileSystem | None) -> str:
    parsed = urlparse(url)
    if _is_local(parsed):
        return os.path.abspath(parsed.path if parsed.scheme == "file" else url)
    if isinstance(filesystem, pafs.LocalFileSystem):
        return parsed.path
    # Object stores and HDFS name the bucket/namenode in the netloc; fsspec strips the scheme the same way.
    import fsspec

    return fsspec.core.strip_protocol(url)


def get_filesystem_and_path_or_paths(
    url_or_urls: UrlOrUrls,
    hdfs_driver: str = "libhdfs3",
    storage_options: dict | None = None,
    filesystem: Any = None,
) -> tuple[pafs.FileSystem, Union[str, list[str]]]:
    """Returns ``(filesystem, path)`` for one URL, or ``(filesystem, [paths])`` for a list of URLs.

    Local paths and ``file://`` URLs use ``pyarrow.fs.LocalFileSystem``; any other scheme (``s3://``, ``gs://``,
    ``hdfs://``, ``memory://`` ...) goes through fsspec with ``storage_options``. A ``filesystem`` given by the
    caller (pyarrow or fsspec) is used as is. ``hdfs_driver`` is accepted for compatibility: pyarrow has a single
    HDFS driver (JNI libhdfs), which fsspec uses.
    """
    if hdfs_driver not in _HDFS_DRIVERS:
        raise ValueError(f"hdfs_driver must be one of {_HDFS_DRIVERS}, got {hdfs_driver!r}")
    urls = [url_or_urls] if isinstance(url_or_urls, str) else list(url_or_urls)
    if not urls:
        raise ValueError("dataset url list must be non-empty")
    urls = [normalize_dir_url(url) for url in urls]
    schemes = {urlparse(url).scheme for url in urls}
    if len(schemes) > 1:
        raise ValueError(f"All dataset urls must have the same scheme, got {sorted(schemes)}")

    if filesystem is not None:
        fs = as_arrow_filesystem(filesystem)
    elif _is_local(urlparse(urls[0])):
        fs = pafs.LocalFileSystem()
    else:
        import fsspec

        fsspec_fs, _ = fsspec.core.url_to_fs(urls[0], **(storage_options or {}))
        fs = as_arrow_filesystem(fsspec_fs)

    paths = [_path_of(url, fs) for url in urls]
    return fs, (paths[0] if isinstance(url_or_urls, str) else paths)

