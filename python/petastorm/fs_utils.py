"""Resolving dataset URLs to a ``pyarrow.fs`` filesystem and a path on it.

=====================  ==========================================================================================
URL                    filesystem
=====================  ==========================================================================================
``/a/b``, ``a/b``      ``pyarrow.fs.LocalFileSystem`` (relative paths are made absolute)
``file:///a/b``        ``pyarrow.fs.LocalFileSystem``
``hdfs://nn:8020/a``   ``pyarrow.fs.HadoopFileSystem(host, port, **storage_options)`` (JNI libhdfs; ``hdfs:///a``
                       uses the ``fs.defaultFS`` of the Hadoop configuration)
``s3://``, ``s3a://``  fsspec (s3fs) with ``storage_options``, wrapped as a ``pyarrow.fs.PyFileSystem``
``gs://``, ``gcs://``  fsspec (gcsfs), likewise
``abfs://``, ``az://`` fsspec (adlfs), likewise
any other scheme       the fsspec implementation registered for it (``memory://``, ``http://``...)
=====================  ==========================================================================================

A ``filesystem`` given by the caller (a ``pyarrow.fs.FileSystem`` or an ``fsspec`` filesystem) is used as is and
the URL only supplies the path. A list of URLs must share one scheme and one host/bucket.
"""
from __future__ import annotations

import os
from typing import Any, Sequence, Union
from urllib.parse import urlparse

import pyarrow.fs as pafs

__all__ = ["UrlOrUrls", "normalize_dir_url", "as_arrow_filesystem", "get_filesystem_and_path_or_paths",
           "get_dataset_path"]

UrlOrUrls = Union[str, Sequence[str]]

_HDFS_DRIVERS = ("libhdfs", "libhdfs3")
_HDFS_SCHEMES = ("hdfs", "viewfs")
_S3A_SCHEMES = ("s3a", "s3n")  # Hadoop's names for S3; s3fs reads the same buckets
_PACKAGE_FOR_SCHEME = {"s3": "s3fs", "s3a": "s3fs", "s3n": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
                       "abfs": "adlfs", "abfss": "adlfs", "az": "adlfs", "adl": "adlfs"}


def normalize_dir_url(dataset_url: Any) -> str:
    """Checks that ``dataset_url`` is a non-empty string (or path-like) and strips trailing ``/``."""
    if isinstance(dataset_url, os.PathLike):
        dataset_url = os.fspath(dataset_url)
    if not isinstance(dataset_url, str) or not dataset_url:
        raise ValueError(f"dataset_url must be a non-empty string, got {dataset_url!r}")
    stripped = dataset_url.rstrip("/")
    if not stripped or stripped.endswith(":") or stripped.endswith(":/"):
        return dataset_url  # "/", "file:///", "s3://": nothing to strip
    return stripped


def _unwrap_fsspec(filesystem: Any) -> Any:
    """The fsspec filesystem behind a ``PyFileSystem(FSSpecHandler(fs))``, else None."""
    if isinstance(filesystem, pafs.PyFileSystem):
        handler = filesystem.handler
        if isinstance(handler, pafs.FSSpecHandler):
            return handler.fs
    return None


def as_arrow_filesystem(filesystem: Any) -> pafs.FileSystem:
    """Returns ``filesystem`` as a ``pyarrow.fs.FileSystem`` (an fsspec filesystem is wrapped)."""
    if isinstance(filesystem, pafs.FileSystem):
        return filesystem
    import fsspec

    if isinstance(filesystem, fsspec.AbstractFileSystem):
        return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    raise TypeError(f"Expected a pyarrow.fs.FileSystem or an fsspec filesystem, got {type(filesystem).__name__}")


def _is_local_scheme(scheme: str) -> bool:
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")  # C:\... on Windows


def is_local_filesystem(filesystem: pafs.FileSystem) -> bool:
    """True for pyarrow's or fsspec's local filesystem."""
    if isinstance(filesystem, pafs.LocalFileSystem):
        return True
    inner = _unwrap_fsspec(filesystem)
    if inner is not None:
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(inner, LocalFileSystem)
    return False


def _path_of(url: str, filesystem: pafs.FileSystem) -> str:
    """The path of ``url`` on ``filesystem``."""
    parsed = urlparse(url)
    if _is_local_scheme(parsed.scheme):
        if is_local_filesystem(filesystem) or parsed.scheme == "file":
            return os.path.abspath(parsed.path if parsed.scheme == "file" else url)
        return url  # a path on a filesystem given by the caller (e.g. "bucket/dataset" on an S3 filesystem)
    inner = _unwrap_fsspec(filesystem)
    if inner is not None:
        return inner._strip_protocol(url)
    if parsed.scheme in _HDFS_SCHEMES or type(filesystem).__name__ == "HadoopFileSystem":
        return parsed.path or "/"
    # pyarrow's object stores (S3FileSystem, GcsFileSystem) take "bucket/key".
    return (parsed.netloc + parsed.path).rstrip("/") or parsed.netloc


def _hdfs_filesystem(parsed, storage_options: dict) -> pafs.FileSystem:
    host = parsed.hostname or "default"
    port = parsed.port or 0
    options = dict(storage_options)
    if parsed.username and "user" not in options:
        options["user"] = parsed.username
    try:
        return pafs.HadoopFileSystem(host, port, **options)
    except (OSError, RuntimeError) as e:
        raise OSError(f"Could not connect to HDFS at {parsed.scheme}://{parsed.netloc}: {e}. pyarrow uses the JNI "
                      "libhdfs: set JAVA_HOME, HADOOP_HOME and CLASSPATH (`hadoop classpath --glob`), or pass "
                      "a filesystem= object") from e


def _fsspec_filesystem(url: str, scheme: str, storage_options: dict) -> pafs.FileSystem:
    import fsspec

    if scheme in _S3A_SCHEMES:
        url = "s3" + url[len(scheme):]
    try:
        fsspec_fs, path = fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as e:
        package = _PACKAGE_FOR_SCHEME.get(scheme)
        hint = f" (pip install {package})" if package else ""
        raise ImportError(f"Reading {scheme}:// URLs needs the fsspec implementation for {scheme}{hint}: {e}") \
            from e
    except ValueError as e:
        if "Protocol not known" in str(e):
            raise ValueError(f"Unsupported URL scheme {scheme!r} in {url!r}: no fsspec filesystem is registered "
                             "for it; pass filesystem= instead") from e
        raise
    # fsspec reuses filesystem instances; drop listings it cached, so a dataset rewritten since is seen as it is.
    try:
        fsspec_fs.invalidate_cache(path)
    except Exception:  # noqa: BLE001 - an implementation without a listing cache
        pass
    return as_arrow_filesystem(fsspec_fs)


def get_filesystem_and_path_or_paths(
    url_or_urls: UrlOrUrls,
    hdfs_driver: str = "libhdfs3",
    storage_options: dict | None = None,
    filesystem: Any = None,
) -> tuple[pafs.FileSystem, Union[str, list[str]]]:
    """Returns ``(filesystem, path)`` for one URL, or ``(filesystem, [paths])`` for a list of URLs.

    See the module documentation for the schemes. ``storage_options`` go to the fsspec filesystem (``key``,
    ``secret``, ``endpoint_url``, ``client_kwargs`` for s3fs, ...) or, for ``hdfs://``, to
    ``pyarrow.fs.HadoopFileSystem`` (``user``, ``kerb_ticket``, ``extra_conf``, ...). ``hdfs_driver`` is
    accepted for compatibility: pyarrow has a single HDFS driver (JNI libhdfs); ``libhdfs3`` is gone from it.
    """
    if hdfs_driver not in _HDFS_DRIVERS:
        raise ValueError(f"hdfs_driver must be one of {_HDFS_DRIVERS}, got {hdfs_driver!r}")
    if storage_options is not None and not isinstance(storage_options, dict):
        raise TypeError(f"storage_options must be a dict or None, got {type(storage_options).__name__}")
    single = isinstance(url_or_urls, (str, os.PathLike))
    urls = [url_or_urls] if single else list(url_or_urls)
    if not urls:
        raise ValueError("dataset url list must be non-empty")
    urls = [normalize_dir_url(url) for url in urls]
    parsed_urls = [urlparse(url) for url in urls]
    schemes = {"file" if _is_local_scheme(p.scheme) else p.scheme for p in parsed_urls}
    if len(schemes) > 1:
        raise ValueError(f"All dataset urls must have the same scheme, got {sorted(schemes)}")
    netlocs = {p.netloc for p in parsed_urls}
    if len(netlocs) > 1:
        raise ValueError(f"All dataset urls must be on the same filesystem (host or bucket), got {sorted(netlocs)}")

    first = parsed_urls[0]
    if filesystem is not None:
        fs = as_arrow_filesystem(filesystem)
    elif _is_local_scheme(first.scheme):
        fs = pafs.LocalFileSystem()
    elif first.scheme in _HDFS_SCHEMES:
        fs = _hdfs_filesystem(first, storage_options or {})
    else:
        fs = _fsspec_filesystem(urls[0], first.scheme, storage_options or {})

    paths = [_path_of(url, fs) for url in urls]
    return fs, (paths[0] if single else paths)


def get_dataset_path(parsed_url) -> str:
    """The path part of a parsed dataset URL as the original's helper of this name returned it (the netloc and
    path of an object-store URL, the path otherwise)."""
    if parsed_url.scheme in ("s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "az"):
        return parsed_url.netloc + parsed_url.path
    return parsed_url.path
