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

:class:`FilesystemResolver` is the original Petastorm's object interface to the same resolution, plus HA
nameservices: an ``hdfs://`` URL whose host is a nameservice of the Hadoop configuration (or ``hdfs:///`` with an
HA ``fs.defaultFS``) connects through :class:`petastorm.hdfs.namenode.HAHdfsClient`, which fails over between the
namenodes.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any, Callable, Optional, Sequence, Union
from urllib.parse import ParseResult, unquote, urlparse, urlunparse

import pyarrow.fs as pafs

from petastorm.hdfs.namenode import HdfsConnector, HdfsNamenodeResolver

__all__ = ["UrlOrUrls", "normalize_dir_url", "file_url_path", "as_arrow_filesystem", "get_filesystem_and_path_or_paths",
           "get_dataset_path", "FilesystemResolver", "HdfsConnector", "HdfsNamenodeResolver", "logger"]

logger = logging.getLogger(__name__)

UrlOrUrls = Union[str, Sequence[str]]

_HDFS_DRIVERS = ("libhdfs", "libhdfs3")
_HDFS_SCHEMES = ("hdfs", "viewfs")
_S3A_SCHEMES = ("s3a", "s3n")  # Hadoop's names for S3; s3fs reads the same buckets
_OBJECT_STORE_SCHEMES = ("s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "az", "adl")
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
    logger.debug("directory url: %s", stripped)
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


def file_url_path(url: str) -> str:
    """The local path of a ``file:`` URL (``file:///a``, ``file://localhost/a``, ``file:/a``), percent-decoded as
    RFC 8089 and ``pathlib.Path.as_uri()`` encode it; ``#`` and ``?`` belong to the path (a file URL has no
    query or fragment), so folders named with them are reachable. Hadoop (so Spark) does not decode file URLs:
    where the undecoded path exists and the decoded one does not, the undecoded one is what was meant."""
    rest = url[len("file:"):]
    if rest.startswith("//"):
        rest = "/" + rest[2:].partition("/")[2]  # drop the (empty or localhost) host
    decoded = unquote(rest)
    if decoded != rest and os.path.lexists(rest) and not os.path.lexists(decoded):
        return rest
    return decoded


def _path_of(url: str, filesystem: pafs.FileSystem) -> str:
    """The path of ``url`` on ``filesystem``."""
    parsed = urlparse(url)
    if _is_local_scheme(parsed.scheme):
        if is_local_filesystem(filesystem) or parsed.scheme == "file":
            return os.path.abspath(file_url_path(url) if parsed.scheme == "file" else url)
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


def _check_hdfs_driver(hdfs_driver: str) -> None:
    if hdfs_driver not in _HDFS_DRIVERS:
        raise ValueError(f"hdfs_driver must be one of {_HDFS_DRIVERS}, got {hdfs_driver!r}")


def _one_or_many(url_or_urls: Any, single_types: tuple) -> tuple[bool, list]:
    """``(is_single, [urls])`` of one URL or a non-empty list of them."""
    single = isinstance(url_or_urls, single_types)
    urls = [url_or_urls] if single else list(url_or_urls)
    if not urls:
        raise ValueError("dataset url list must be non-empty")
    return single, urls


def _check_one_filesystem(parsed_urls: Sequence[ParseResult]) -> None:
    """Raises ValueError unless the URLs share one scheme and one host/bucket."""
    schemes = {"file" if _is_local_scheme(p.scheme) else p.scheme for p in parsed_urls}
    if len(schemes) > 1:
        raise ValueError(f"All dataset urls must have the same scheme, got {sorted(schemes)}")
    netlocs = {p.netloc for p in parsed_urls}
    if len(netlocs) > 1:
        raise ValueError(f"All dataset urls must be on the same filesystem (host or bucket), got {sorted(netlocs)}")


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
    _check_hdfs_driver(hdfs_driver)
    if storage_options is not None and not isinstance(storage_options, dict):
        raise TypeError(f"storage_options must be a dict or None, got {type(storage_options).__name__}")
    single, urls = _one_or_many(url_or_urls, (str, os.PathLike))
    urls = [normalize_dir_url(url) for url in urls]
    parsed_urls = [urlparse(url) for url in urls]
    _check_one_filesystem(parsed_urls)

    first = parsed_urls[0]
    if filesystem is None and first.scheme in _OBJECT_STORE_SCHEMES and not first.netloc:
        raise ValueError(f"URLs must be of the form {first.scheme}://bucket/path, got {urls[0]!r}")
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


def get_dataset_path(parsed_url: ParseResult) -> str:
    """The path of a parsed dataset URL on its filesystem: the URL's path for ``file://``, ``hdfs://`` (and
    ``viewfs://``), an absolute path for a plain path, and the fsspec path (``bucket/key`` for object stores) for
    the other schemes."""
    scheme = parsed_url.scheme.lower()
    if scheme == "file":
        return file_url_path(urlunparse(parsed_url))
    if scheme in _HDFS_SCHEMES:
        return parsed_url.path
    if _is_local_scheme(scheme):
        return os.path.abspath(urlunparse(parsed_url)) if parsed_url.path else parsed_url.path
    try:
        from fsspec.core import strip_protocol

        return strip_protocol(urlunparse(parsed_url))
    except (ImportError, ValueError):  # the scheme's fsspec implementation is missing or unknown
        if scheme in _OBJECT_STORE_SCHEMES:
            return parsed_url.netloc + parsed_url.path
        return parsed_url.path


def _filesystem_of(url_or_urls: UrlOrUrls, hdfs_driver: str, storage_options: Optional[dict]) -> pafs.FileSystem:
    """The filesystem of ``url_or_urls`` (a module-level function, so factories built on it pickle)."""
    return get_filesystem_and_path_or_paths(url_or_urls, hdfs_driver, storage_options)[0]


def _connect_namenode(connector: Any, url: str, hdfs_driver: str, user: Optional[str],
                      storage_options: Optional[dict]) -> pafs.FileSystem:
    """``connector.hdfs_connect_namenode`` on ``url`` (``storage_options`` only when given, so a connector with the
    original's signature works)."""
    if storage_options:
        return connector.hdfs_connect_namenode(urlparse(url), hdfs_driver, user=user, storage_options=storage_options)
    return connector.hdfs_connect_namenode(urlparse(url), hdfs_driver, user=user)


def _as_url_text(dataset_url: Any) -> str:
    if isinstance(dataset_url, ParseResult):
        return urlunparse(dataset_url)
    if isinstance(dataset_url, os.PathLike):
        dataset_url = os.fspath(dataset_url)
    if not isinstance(dataset_url, str) or not dataset_url:
        raise ValueError(f"dataset_url must be a non-empty string or a parsed URL, got {dataset_url!r}")
    return dataset_url


def _parse_dataset_url(dataset_url: Any) -> ParseResult:
    """``urlparse`` of the URL; a plain path becomes the ``file://`` URL of its absolute path."""
    if isinstance(dataset_url, ParseResult):
        return dataset_url
    text = _as_url_text(dataset_url)
    parsed = urlparse(text)
    if parsed.scheme == "":
        return ParseResult("file", "", os.path.abspath(text), "", "", "")
    return parsed


class FilesystemResolver:
    """Resolves a dataset URL (or a list of URLs on one filesystem) to a ``pyarrow.fs`` filesystem, a path on it and
    a picklable factory that recreates the filesystem (for Spark executors)."""

    def __init__(self, dataset_url: Any, hadoop_configuration: Any = None, connector: Any = HdfsConnector,
                 hdfs_driver: str = "libhdfs3", user: Optional[str] = None, storage_options: Optional[dict] = None):
        """
        :param dataset_url: a URL (``file://``, ``hdfs://``, ``s3://``... or a plain path), a parsed URL
            (``urllib.parse.ParseResult``), or a list of either on one filesystem.
        :param hadoop_configuration: for ``hdfs://``: a Spark JVM Hadoop ``Configuration`` (e.g.
            ``spark.sparkContext._jsc.hadoopConfiguration()``) or a dict, used to resolve HA nameservices; None
            reads the site files under ``$HADOOP_HOME/etc/hadoop``.
        :param connector: opens HDFS connections (:class:`~petastorm.hdfs.namenode.HdfsConnector`; tests may pass
            their own).
        :param hdfs_driver: ``libhdfs3`` (default: HA nameservices are resolved from ``hadoop_configuration``) or
            ``libhdfs`` (connect to the URL's host directly). pyarrow's only driver, JNI libhdfs, is used for both.
        :param user: the HDFS user (None: the login user).
        :param storage_options: options of the fsspec filesystem, or of ``pyarrow.fs.HadoopFileSystem``.
        """
        _check_hdfs_driver(hdfs_driver)
        single, items = _one_or_many(dataset_url, (str, os.PathLike, ParseResult))
        urls = [_as_url_text(item) for item in items]
        parsed = [_parse_dataset_url(item) for item in items]
        _check_one_filesystem(parsed)
        self._dataset_url = dataset_url
        if parsed[0].scheme == "hdfs":
            self._filesystem, self._filesystem_factory, netloc = self._resolve_hdfs(
                parsed[0], urls[0], hadoop_configuration, connector, hdfs_driver, user, storage_options)
            if netloc is not None:  # hdfs:///path: the URL names the default filesystem from now on
                parsed = [p._replace(netloc=netloc) for p in parsed]
        else:
            url_arg = urls[0] if single else urls
            self._filesystem = _filesystem_of(url_arg, hdfs_driver, storage_options)
            self._filesystem_factory = functools.partial(_filesystem_of, url_arg, hdfs_driver, storage_options)
        self._parsed_dataset_url = parsed[0] if single else parsed

    @staticmethod
    def _resolve_hdfs(parsed: ParseResult, url: str, hadoop_configuration: Any, connector: Any, hdfs_driver: str,
                      user: Optional[str], storage_options: Optional[dict]) -> tuple:
        """``(filesystem, factory, netloc replacing an empty one or None)`` for an ``hdfs://`` URL."""
        def direct(direct_url: str) -> tuple:
            factory = functools.partial(_connect_namenode, connector, direct_url, hdfs_driver, user, storage_options)
            return factory(), factory

        def failover(namenodes: list) -> tuple:
            factory = functools.partial(connector.connect_to_either_namenode, namenodes, user=user)
            return factory(), factory

        if hdfs_driver == "libhdfs":
            return direct(url) + (None,)
        resolver = HdfsNamenodeResolver(hadoop_configuration)
        if parsed.netloc:
            nameservice = parsed.netloc.rpartition("@")[2].split(":")[0]  # as written: nameservices are not lowercased
            namenodes = resolver.resolve_hdfs_name_service(nameservice)
            return (failover(namenodes) if namenodes else direct(url)) + (None,)
        default_fs = urlparse(resolver._default_fs() or "")
        if default_fs.scheme != "hdfs" or not default_fs.netloc:
            logger.debug("No HDFS fs.defaultFS in the Hadoop configuration; connecting to host 'default'")
            return direct(url) + (None,)
        namenodes = resolver.resolve_hdfs_name_service(default_fs.netloc)
        if namenodes:
            return failover(namenodes) + (default_fs.netloc,)
        return direct(urlunparse(parsed._replace(netloc=default_fs.netloc))) + (default_fs.netloc,)

    def parsed_dataset_url(self) -> Union[ParseResult, list]:
        """The parsed dataset URL (a list of them for a list of URLs); ``hdfs:///`` gets the default filesystem's
        nameservice or host, and a plain path becomes ``file://`` with its absolute path."""
        return self._parsed_dataset_url

    def get_dataset_path(self) -> Union[str, list]:
        """The dataset's path on :meth:`filesystem` (a list of paths for a list of URLs)."""
        if isinstance(self._parsed_dataset_url, list):
            return [get_dataset_path(parsed) for parsed in self._parsed_dataset_url]
        return get_dataset_path(self._parsed_dataset_url)

    def filesystem(self) -> pafs.FileSystem:
        """The ``pyarrow.fs`` filesystem of the dataset."""
        return self._filesystem

    def filesystem_factory(self) -> Callable[[], pafs.FileSystem]:
        """A picklable callable without arguments that returns a new connection to the same filesystem (to use
        on Spark executors)."""
        return self._filesystem_factory

    def __getstate__(self):
        raise RuntimeError("A FilesystemResolver cannot be pickled: its filesystem may hold a live connection. "
                           "Send filesystem_factory() instead.")
