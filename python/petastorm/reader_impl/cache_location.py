"""The location of a local-disk cache: its marker file, which files in it are the cache's own, and refusing to
use, evict in or clear a directory that holds anything else."""
from __future__ import annotations

import json
import os
import re
import uuid

MARKER_FILE = ".petastorm-cache"
_MARKER_FORMAT = "petastorm-local-disk-cache"
_MARKER_VERSION = 1
ENTRIES_DIR = "entries"
ENTRY_RE = re.compile(r"^[0-9a-f]{64}\.(arrow|npz)$")
TEMP_RE = re.compile(r"^\.tmp-[0-9a-f]{32}\.(arrow|npz)$")
SHARD_RE = re.compile(r"^[0-9a-f]{2}$")


class CacheLocationError(RuntimeError):
    """The cache location holds files the cache did not write, so the cache will not use, evict in or clear it."""


def marker_path(path: str) -> str:
    """The marker file of a cache location."""
    return os.path.join(path, MARKER_FILE)


def open_location(path: str) -> None:
    """Creates the location (and its marker), or checks that an existing one is empty or a cache directory."""
    created_root = False
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path)
        created_root = True
    except FileExistsError:
        if not os.path.isdir(path):
            raise CacheLocationError(f"cache_location {path} exists and is not a directory")
    if os.path.exists(marker_path(path)):
        read_marker(path)
        return
    # Marker files being written by another cache object opening the same new location are not foreign.
    foreign = [name for name in os.listdir(path) if not name.startswith(".tmp-marker-")]
    if foreign and not os.path.exists(marker_path(path)):
        raise CacheLocationError(
            f"cache_location {path} is not empty and is not a Petastorm cache directory (no "
            f"{MARKER_FILE} marker; it holds e.g. {sorted(foreign)[:5]}). Choose an empty or new directory: "
            "the cache evicts and deletes files in its location and will not do so among other files.")
    marker = {"format": _MARKER_FORMAT, "version": _MARKER_VERSION, "created_root": created_root}
    temp = os.path.join(path, f".tmp-marker-{uuid.uuid4().hex}")
    with open(temp, "w") as f:
        json.dump(marker, f)
    try:
        os.link(temp, marker_path(path))  # atomic and never replaces: the first cache object's marker wins
    except FileExistsError:
        read_marker(path)
    except OSError:  # a filesystem without hard links
        if not os.path.exists(marker_path(path)):
            os.replace(temp, marker_path(path))
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def read_marker(path: str) -> dict:
    """The location's marker; :class:`CacheLocationError` when it is not a cache marker of this version."""
    try:
        with open(marker_path(path)) as f:
            marker = json.load(f)
    except (OSError, ValueError) as e:
        raise CacheLocationError(f"{marker_path(path)} is not a readable Petastorm cache marker: {e}") from e
    if not isinstance(marker, dict) or marker.get("format") != _MARKER_FORMAT:
        raise CacheLocationError(f"{marker_path(path)} is not a Petastorm cache marker")
    if marker.get("version") != _MARKER_VERSION:
        raise CacheLocationError(f"{path} holds a cache of format version {marker.get('version')}, this "
                                 f"version of Petastorm writes version {_MARKER_VERSION}; use another location")
    return marker


def foreign_files(path: str, limit: int = 5) -> list[str]:
    """Paths under the location that the cache did not write (at most ``limit``)."""
    found = []
    if not os.path.isdir(path):
        return found
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if name == MARKER_FILE or (name.startswith(".tmp-marker-") and os.path.isfile(full)):
            continue
        if name == ENTRIES_DIR and os.path.isdir(full) and not os.path.islink(full):
            for shard in os.listdir(full):
                shard_path = os.path.join(full, shard)
                if not SHARD_RE.match(shard) or not os.path.isdir(shard_path) or os.path.islink(shard_path):
                    found.append(shard_path)
                    continue
                for entry in os.listdir(shard_path):
                    entry_path = os.path.join(shard_path, entry)
                    if not (ENTRY_RE.match(entry) or TEMP_RE.match(entry)) or not os.path.isfile(entry_path) \
                            or os.path.islink(entry_path):
                        found.append(entry_path)
                if len(found) >= limit:
                    return found[:limit]
            continue
        found.append(full)
        if len(found) >= limit:
            break
    return found[:limit]


def check_owned(path: str, action: str) -> None:
    """Raises :class:`CacheLocationError` unless the location has its marker and only files the cache wrote."""
    if not os.path.isfile(marker_path(path)):
        raise CacheLocationError(f"Refusing to {action} {path}: its {MARKER_FILE} marker is gone, so it "
                                 "may no longer be a Petastorm cache directory")
    foreign = foreign_files(path)
    if foreign:
        raise CacheLocationError(f"Refusing to {action} {path}: it holds files the cache did not write, "
                                 f"e.g. {foreign}")
