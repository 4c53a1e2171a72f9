"""Row-group caches for the readers: ``'null'`` (no cache) and ``'local-disk'`` (a bounded on-disk cache).

The reader engine asks the cache for a row group by a string key and hands it a ``fill`` callable that loads the
row group when the cache does not hold it::

    cache = make_cache('local-disk', '/tmp/petastorm-cache', size_limit=10 * 2**30)
    key = cache_key(dataset_url, piece_index, columns, transform_spec)
    table = cache.get(key, lambda: load_row_group(...))
    ...
    cache.cleanup()   # optional: removes what the cache created

The local-disk cache:

- stores a ``pyarrow.Table`` / ``pyarrow.RecordBatch`` as an Arrow IPC file and a ``dict`` of numpy arrays as an
  uncompressed ``.npz``; nothing is pickled. Object arrays are stored when every element is ``None`` or every
  non-null element is a ``str``, or a ``bytes``, or a numpy array of one non-object dtype and rank (nullable
  strings, variable-shape tensors). Other values are returned uncached (with a warning, once);
- writes each entry to a temporary file and renames it into place, so readers in other threads or processes
  never see a partial entry;
- keeps the total size of its entries within ``size_limit`` bytes by deleting the least recently used entries
  (recency is the entry file's modification time, refreshed on every hit) after each write;
- marks its directory with a marker file ``.petastorm-cache``. It uses an existing directory only if it is empty
  or already holds that marker, refuses (:class:`CacheLocationError`) to evict or clear when the directory holds
  files it did not write, and never deletes a directory it did not create: :meth:`LocalDiskCache.cleanup`
  removes its entries, its own sub-directories and marker, and the cache directory itself only if the cache
  created it.

Several readers (threads or processes) may share one location: writes are atomic renames, a missing entry is
simply refilled, and eviction tolerates entries deleted by someone else.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
import warnings
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

import numpy as np

from petastorm.fs_utils import file_url_path
from petastorm.reader_impl.cache_keys import cache_key
from petastorm.reader_impl.cache_location import (ENTRIES_DIR, ENTRY_RE, SHARD_RE, TEMP_RE, MARKER_FILE,
                                                   CacheLocationError, check_owned, marker_path, open_location,
                                                   read_marker)
from petastorm.reader_impl.cache_values import (encode_object_column, read_arrow, read_npz, serializer_for,
                                                 write_arrow, write_npz)

__all__ = ["CacheBase", "NullCache", "LocalDiskCache", "CacheLocationError", "make_cache", "cache_key",
           "CACHE_TYPES", "MARKER_FILE"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

CACHE_TYPES = ("null", "local-disk")
# Settings of the original (diskcache-based) cache that have no meaning here; accepted and ignored.
_IGNORED_SETTINGS = {"shards", "timeout", "eviction_policy", "statistics", "tag_index", "sqlite_cache_size",
                     "sqlite_mmap_size", "disk_min_file_size", "cull_limit"}


class CacheBase:
    """A cache of loaded row groups: ``get(key, fill)`` returns the cached value or ``fill()``'s result."""

    def get(self, key: str, fill: Callable[[], T]) -> T:
        raise NotImplementedError

    def cleanup(self) -> None:
        """Removes whatever the cache stored (nothing for a cache that stores nothing)."""

    def __enter__(self) -> "CacheBase":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


class NullCache(CacheBase):
    """Caches nothing: ``get`` always calls ``fill``."""

    def get(self, key: str, fill: Callable[[], T]) -> T:
        return fill()

    def __repr__(self) -> str:
        return "NullCache()"


def _local_path(location: Any) -> str:
    if not isinstance(location, (str, os.PathLike)) or not str(location):
        raise ValueError(f"cache_location must be a local directory path, got {location!r}")
    location = os.fspath(location)
    parsed = urlparse(location)
    if parsed.scheme == "file":
        location = file_url_path(location)
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(f"The local-disk cache needs a local directory, got the URL {location!r}")
    return os.path.abspath(location)


class LocalDiskCache(CacheBase):
    """A bounded cache of row groups in a local directory (see the module documentation).

    :param path: the cache directory; created (with the marker file) if missing. An existing directory must be
        empty or already be a cache directory.
    :param size_limit_bytes: the most bytes the entries may take together; least recently used entries are
        evicted beyond it. An entry larger than the limit is not stored.
    :param expected_row_size_bytes: optional estimate of a row's size, used only to warn when the limit cannot
        hold a reasonable number of rows.
    :param cleanup: the original's ``cleanup`` setting, kept as :attr:`cleanup_on_stop`: when True the reader
        calls :meth:`cleanup` when it stops.
    """

    def __init__(self, path: Any, size_limit_bytes: int, expected_row_size_bytes: int | None = None,
                 cleanup: bool = False, **settings: Any):
        if not isinstance(size_limit_bytes, int) or isinstance(size_limit_bytes, bool) or size_limit_bytes <= 0:
            raise ValueError(f"cache_size_limit must be a positive number of bytes, got {size_limit_bytes!r}")
        if expected_row_size_bytes is not None and (not isinstance(expected_row_size_bytes, int) or
                                                    expected_row_size_bytes <= 0):
            raise ValueError("cache_row_size_estimate must be None or a positive number of bytes, got "
                             f"{expected_row_size_bytes!r}")
        unknown = set(settings) - _IGNORED_SETTINGS
        if unknown:
            raise ValueError(f"Unknown cache_extra_settings {sorted(unknown)}; the local-disk cache takes "
                             "'cleanup' (and ignores the original's diskcache settings "
                             f"{sorted(_IGNORED_SETTINGS)})")
        if expected_row_size_bytes and size_limit_bytes < 100 * expected_row_size_bytes:
            warnings.warn(f"cache_size_limit={size_limit_bytes} holds fewer than 100 rows of the estimated "
                          f"{expected_row_size_bytes} bytes; most row groups will not stay cached")
        self.path = _local_path(path)
        self.size_limit_bytes = size_limit_bytes
        self.expected_row_size_bytes = expected_row_size_bytes
        self.cleanup_on_stop = bool(cleanup)
        self._entries = os.path.join(self.path, ENTRIES_DIR)
        self._lock = threading.Lock()
        self._warned_types: set = set()
        self.hits = 0
        self.misses = 0
        open_location(self.path)

    # -- entries ---------------------------------------------------------------------------------------------

    def _entry_path(self, key: str, kind: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return os.path.join(self._entries, digest[:2], f"{digest}.{kind}")

    def _load(self, key: str) -> tuple[bool, Any]:
        for kind in ("arrow", "npz"):
            path = self._entry_path(key, kind)
            try:
                value = read_arrow(path, key) if kind == "arrow" else read_npz(path, key)
            except FileNotFoundError:
                continue
            except KeyError:
                logger.warning("Cache entry %s belongs to another key (hash collision); ignored", path)
                continue
            except Exception as e:  # a damaged entry (e.g. disk full when it was written): drop it and refill
                logger.warning("Unreadable cache entry %s (%s); it is refilled", path, e)
                self._remove_entry(path)
                continue
            try:
                os.utime(path)  # recency for LRU eviction
            except OSError:
                pass
            return True, value
        return False, None

    @staticmethod
    def _remove_entry(path: str) -> int:
        try:
            size = os.stat(path).st_size
            os.unlink(path)
            return size
        except FileNotFoundError:
            return 0

    def get(self, key: str, fill: Callable[[], T]) -> T:
        if not isinstance(key, str):
            raise TypeError(f"cache keys are strings, got {type(key).__name__}")
        found, value = self._load(key)
        if found:
            with self._lock:
                self.hits += 1
            return value
        with self._lock:
            self.misses += 1
        value = fill()
        self._store(key, value)
        return value

    def _store(self, key: str, value: Any) -> None:
        serialized = serializer_for(value)
        if serialized is None:
            name = type(value).__name__
            detail = ""
            if isinstance(value, dict):
                bad = sorted(str(k) for k, v in value.items() if not isinstance(v, np.ndarray) or
                             (v.dtype.hasobject and encode_object_column(v) is None))
                name, detail = "dict", f" (entries that cannot be stored without pickle: {bad[:5]})"
            if name + detail not in self._warned_types:
                self._warned_types.add(name + detail)
                warnings.warn(f"The local-disk cache stores pyarrow Tables/RecordBatches and dicts of numpy arrays "
                              f"(no object dtype); a {name} is returned uncached{detail}")
            return
        kind, payload = serialized
        if not os.path.isfile(marker_path(self.path)):
            logger.warning("The cache marker %s is gone; not caching", marker_path(self.path))
            return
        path = self._entry_path(key, kind)
        directory = os.path.dirname(path)
        temp = os.path.join(directory, f".tmp-{uuid.uuid4().hex}.{kind}")
        try:
            os.makedirs(directory, exist_ok=True)
            if kind == "arrow":
                write_arrow(temp, payload, key)
            else:
                write_npz(temp, payload, key)
            size = os.stat(temp).st_size
            if size > self.size_limit_bytes:
                os.unlink(temp)
                warnings.warn(f"A cache entry of {size} bytes exceeds cache_size_limit={self.size_limit_bytes}; "
                              "it is not cached")
                return
            os.replace(temp, path)
        except OSError as e:
            logger.warning("Could not write cache entry %s: %s", path, e)
            try:
                os.unlink(temp)
            except OSError:
                pass
            return
        self._evict()

    def _scan(self) -> list[tuple[float, int, str]]:
        """``(mtime, size, path)`` of every entry; raises CacheLocationError if other files are found."""
        entries = []
        foreign = []
        try:
            shards = os.listdir(self._entries)
        except FileNotFoundError:
            return entries
        for shard in shards:
            shard_path = os.path.join(self._entries, shard)
            if not SHARD_RE.match(shard):
                foreign.append(shard_path)
                continue
            try:
                with os.scandir(shard_path) as it:
                    for entry in it:
                        if TEMP_RE.match(entry.name):
                            continue
                        if not ENTRY_RE.match(entry.name) or not entry.is_file(follow_symlinks=False):
                            foreign.append(entry.path)
                            continue
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        entries.append((st.st_mtime, st.st_size, entry.path))
            except (FileNotFoundError, NotADirectoryError):
                if os.path.exists(shard_path):
                    foreign.append(shard_path)
        if foreign:
            raise CacheLocationError(f"Refusing to evict in {self.path}: it holds files the cache did not write, "
                                     f"e.g. {foreign[:5]}")
        return entries

    def _evict(self) -> None:
        entries = self._scan()
        total = sum(size for _, size, _ in entries)
        if total <= self.size_limit_bytes:
            return
        for _, size, path in sorted(entries):
            self._remove_entry(path)
            total -= size
            if total <= self.size_limit_bytes:
                break

    def size_bytes(self) -> int:
        """The total size of the entries now on disk."""
        return sum(size for _, size, _ in self._scan())

    def __len__(self) -> int:
        return len(self._scan())

    def cleanup(self) -> None:
        """Removes the entries, the cache's sub-directories and marker, and the location itself if the cache
        created it. Raises :class:`CacheLocationError` (deleting nothing) if the location holds other files."""
        if not os.path.isdir(self.path):
            return
        if not os.path.isfile(marker_path(self.path)):
            return  # already cleaned up (by this or another cache object); nothing of ours is left
        marker = read_marker(self.path)
        check_owned(self.path, "clear")
        if os.path.isdir(self._entries):
            for shard in os.listdir(self._entries):
                shard_path = os.path.join(self._entries, shard)
                for entry in os.listdir(shard_path):
                    if ENTRY_RE.match(entry) or TEMP_RE.match(entry):
                        self._remove_entry(os.path.join(shard_path, entry))
                try:
                    os.rmdir(shard_path)
                except OSError:  # someone wrote meanwhile; leave it
                    pass
            try:
                os.rmdir(self._entries)
            except OSError:
                pass
        try:
            os.unlink(marker_path(self.path))
        except FileNotFoundError:
            pass
        if marker.get("created_root"):
            try:
                os.rmdir(self.path)
            except OSError as e:
                logger.warning("Cache directory %s not removed: %s", self.path, e)

    def __repr__(self) -> str:
        return f"LocalDiskCache({self.path!r}, size_limit_bytes={self.size_limit_bytes})"


def make_cache(cache_type: str | None = "null", location: Any = None, size_limit: int | None = None,
               row_size_estimate: int | None = None, extra_settings: dict | None = None) -> CacheBase:
    """The cache the reader options ``cache_type``, ``cache_location``, ``cache_size_limit``,
    ``cache_row_size_estimate`` and ``cache_extra_settings`` describe.

    ``None`` or ``'null'``: :class:`NullCache`. ``'local-disk'``: :class:`LocalDiskCache` in the local directory
    ``location`` holding at most ``size_limit`` bytes; ``extra_settings`` may hold ``{'cleanup': True}`` (the
    reader removes the cache when it stops).
    """
    if cache_type is None or cache_type == "null":
        return NullCache()
    if cache_type != "local-disk":
        raise ValueError(f"Unknown cache_type {cache_type!r}; expected None, 'null' or 'local-disk'")
    if location is None:
        raise ValueError("cache_type='local-disk' needs cache_location (a local directory)")
    if size_limit is None:
        raise ValueError("cache_type='local-disk' needs cache_size_limit (bytes)")
    if extra_settings is not None and not isinstance(extra_settings, dict):
        raise ValueError(f"cache_extra_settings must be a dict or None, got {extra_settings!r}")
    return LocalDiskCache(location, size_limit, row_size_estimate, **(extra_settings or {}))
