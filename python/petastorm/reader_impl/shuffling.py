"""Every order the reader engine draws, as a function of ``(seed, epoch)`` and of what is being ordered.

The planner (row groups per epoch), the loaders (rows inside a work item) and the core (rows of a unit read
through the shuffle buffer) take their random generators from :func:`order_rng` (or :func:`permutation`), never
from a generator of their own, so that one ``seed`` reproduces a whole iteration and a saved state resumes it.
``purpose`` names what is ordered and fixes the seed sequence: each purpose keeps the sequence the engine has
always used, so orders (and saved iteration states) do not change between versions. The original Petastorm's
assignment of row groups to shards is :func:`legacy_shard_permutation`, kept on numpy's ``RandomState``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ROW_GROUPS", "FILES", "FILE_ROW_GROUPS", "ROWS", "UNITS", "PURPOSES", "order_rng", "permutation",
           "legacy_shard_permutation"]

#: The work items of an epoch (row groups, or their drop partitions / row ranges); no keys.
ROW_GROUPS = "row-groups"
#: The data files of an epoch, when row groups are counted from footers on demand (plain Parquet); no keys.
FILES = "files"
#: The work items of one data file in that case; key: the file's position in the sorted file list.
FILE_ROW_GROUPS = "file-row-groups"
#: The rows (or n-gram starts) of one work item; keys: ``piece_index, drop_partition, start``.
ROWS = "rows"
#: The rows of one unit of the shuffle buffer (several work items read together); key: the unit's position.
UNITS = "units"

# purpose -> (number of keys, the tag that follows them in the seed sequence)
_LAYOUTS: dict[str, tuple[int, tuple[int, ...]]] = {
    ROW_GROUPS: (0, ()),
    ROWS: (3, (7,)),
    UNITS: (1, (11,)),
    FILES: (0, (13,)),
    FILE_ROW_GROUPS: (1, (17,)),
}
PURPOSES = tuple(_LAYOUTS)


def order_rng(seed: int, epoch: int, purpose: str, *keys: int) -> np.random.Generator:
    """The generator for ``purpose`` in ``epoch``: seeded with ``[seed, epoch, *keys, tag of purpose]``.

    :param keys: what identifies the ordered thing within the epoch; their number is fixed by ``purpose``.
    :raises ValueError: an unknown ``purpose`` or the wrong number of keys.
    """
    layout = _LAYOUTS.get(purpose)
    if layout is None:
        raise ValueError(f"Unknown shuffling purpose {purpose!r}; expected one of {PURPOSES}")
    num_keys, tag = layout
    if len(keys) != num_keys:
        raise ValueError(f"Shuffling purpose {purpose!r} takes {num_keys} keys, got {len(keys)}: {keys!r}")
    return np.random.default_rng([int(seed), int(epoch), *(int(key) for key in keys), *tag])


def permutation(count: int, seed: int, epoch: int, purpose: str, *keys: int) -> np.ndarray:
    """A permutation of ``range(count)`` drawn from :func:`order_rng` ``(seed, epoch, purpose, *keys)``."""
    return order_rng(seed, epoch, purpose, *keys).permutation(count)


def legacy_shard_permutation(num_pieces: int, shard_seed: int) -> np.ndarray:
    """The original Petastorm's shuffle of the row-group list before it is dealt to shards (``shard_seed``):
    ``RandomState(shard_seed).permutation``, so a shard reads the same row groups as with the original."""
    return np.random.RandomState(shard_seed).permutation(num_pieces)
