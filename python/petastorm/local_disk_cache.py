"""The local-disk row-group cache under the original's module path and constructor (``petastorm.local_disk_cache``).

The cache itself is :class:`petastorm.cache.LocalDiskCache`; this module adapts the original's constructor
(``shards``, ``cleanup=True`` by default, its capacity check) and its ``cleanup()`` (which removes the cache only
when it was created with ``cleanup=True``).
"""
from __future__ import annotations, division

from typing import Any

from petastorm import cache as _cache
from petastorm.cache import CacheBase

__all__ = ["LocalDiskCache", "CacheBase"]


class LocalDiskCache(_cache.LocalDiskCache):
    """A bounded cache of values in a local directory, built as in Petastorm 0.13.1.

    :param path: the cache directory (see :class:`petastorm.cache.LocalDiskCache` for what it may hold).
    :param size_limit_bytes: the most bytes the cached values may take together.
    :param expected_row_size_bytes: an estimate of a row's size; ``size_limit_bytes / shards`` must be at least
        five such rows (ValueError otherwise), unless ``eviction_policy='none'`` is among ``settings``.
    :param shards: used only in that check (the cache is not sharded).
    :param cleanup: whether :meth:`cleanup` removes the cache (the original's default: True).
    :param settings: the original's diskcache settings; accepted and ignored (see
        :class:`petastorm.cache.LocalDiskCache`).
    """

    def __init__(self, path: Any, size_limit_bytes: int, expected_row_size_bytes: int, shards: int = 6,
                 cleanup: bool = True, **settings: Any) -> None:
        if settings.get("eviction_policy", "least-recently-stored") != "none" and \
                size_limit_bytes / shards < 5 * expected_row_size_bytes:
            raise ValueError(f"size_limit_bytes / shards ({size_limit_bytes} / {shards}) must be at least "
                             f"5 * expected_row_size_bytes ({5 * expected_row_size_bytes}): otherwise newly cached "
                             f"values might be evicted immediately")
        super().__init__(path, size_limit_bytes, expected_row_size_bytes, cleanup=cleanup, **settings)

    def cleanup(self) -> None:
        """Removes the cache and what it stored, if it was created with ``cleanup=True``; else does nothing."""
        if self.cleanup_on_stop:
            super().cleanup()
