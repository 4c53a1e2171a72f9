"""``PetastormIterableDataset``: a ``torch.utils.data.IterableDataset`` whose workers (and distributed ranks) each
read their own disjoint share of row groups."""
from __future__ import annotations

import os
import warnings
from typing import Any, Iterator

from petastorm._batching import item_columns, item_rows, rebatch_columns
from petastorm._extras import require
from petastorm._torch_types import as_tensor, sanitize_pytorch_types

require("torch", "petastorm.pytorch")
from torch.utils.data import IterableDataset, get_worker_info  # noqa: E402

__all__ = ["PetastormIterableDataset"]


def _distributed_rank_and_size() -> tuple[int, int]:
    """(rank, world size) of ``torch.distributed`` when initialised, else from RANK/WORLD_SIZE, else (0, 1)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:  # pragma: no cover - distributed not built in
        pass
    rank, size = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is not None and size is not None:
        return int(rank), int(size)
    return 0, 1


class PetastormIterableDataset(IterableDataset):
    """A ``torch.utils.data.IterableDataset`` over a Petastorm dataset (or any Parquet store).

    Use it with ``torch.utils.data.DataLoader(dataset, num_workers=k, pin_memory=True, ...)``. Every iteration
    (epoch) opens a fresh reader in each worker; worker ``w`` of rank ``r`` reads the row groups with
    ``piece_index % (world_size * k) == r * k + w``, so the workers' shares are disjoint and together cover every
    row once per epoch (``num_epochs`` of the reader, default 1). Rank and world size come from
    ``torch.distributed`` when initialised (else the RANK/WORLD_SIZE environment variables), or from
    ``cur_shard``/``shard_count`` when given. Shares follow row groups, so they can be unequal: write at least
    ``world_size * k`` row groups (workers without a share yield nothing).

    :param dataset_url: the dataset URL (or a list of Parquet file URLs).
    :param batch_size: None: yield one row at a time (a dict of numpy values; let the DataLoader batch and
        collate). An int: yield dicts of torch tensors of ``batch_size`` rows (use ``DataLoader(batch_size=None)``);
        the last batch of each worker may be smaller unless ``drop_last``.
    :param batch_reader: read with ``make_batch_reader`` (default, fast) or ``make_reader`` (row by row, with
        ``make_reader``'s per-row predicates and transforms).
    :param drop_last: with ``batch_size``, drop each worker's last partial batch.
    :param reader_kwargs: passed to the reader factory (``schema_fields``, ``shuffle_rows``, ``seed``,
        ``num_epochs``, ``predicate``, ``transform_spec``...). With ``seed`` set, each worker's reader is
        seeded with ``seed + shard`` so that workers do not shuffle alike.
    """

    def __init__(self, dataset_url: Any, batch_size: int | None = None, batch_reader: bool = True,
                 drop_last: bool = False, **reader_kwargs: Any) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be None or positive, got {batch_size}")
        self.dataset_url = dataset_url
        self.batch_size = batch_size
        self.batch_reader = batch_reader
        self.drop_last = drop_last
        self.reader_kwargs = dict(reader_kwargs)
        cur, count = self.reader_kwargs.pop("cur_shard", None), self.reader_kwargs.pop("shard_count", None)
        if (cur is None) != (count is None):
            raise ValueError("cur_shard and shard_count must be given together")
        self._explicit_shard = None if cur is None else (int(cur), int(count))

    def shard(self) -> tuple[int, int]:
        """(cur_shard, shard_count) for the calling process: combines the rank and the DataLoader worker id."""
        rank, world = self._explicit_shard or _distributed_rank_and_size()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def _reader(self) -> Any:
        from petastorm import make_batch_reader, make_reader
        from petastorm.errors import NoDataAvailableError

        cur_shard, shard_count = self.shard()
        kwargs = dict(self.reader_kwargs)
        if kwargs.get("seed") is not None:
            kwargs["seed"] = int(kwargs["seed"]) + cur_shard
        if shard_count > 1:
            kwargs.update(cur_shard=cur_shard, shard_count=shard_count)
        factory = make_batch_reader if self.batch_reader else make_reader
        try:
            return factory(self.dataset_url, **kwargs)
        except NoDataAvailableError:
            warnings.warn(f"Shard {cur_shard} of {shard_count} has no row groups to read (the dataset has fewer row "
                          f"groups than readers): this worker yields nothing")
            return None

    def __iter__(self) -> Iterator[dict]:
        reader = self._reader()
        if reader is None:
            return
        with reader:
            if self.batch_size is None:
                yield from self._rows(reader)
            else:
                yield from self._batches(reader)

    @staticmethod
    def _rows(reader: Any) -> Iterator[dict]:
        for item in reader:
            yield from item_rows(reader, item, sanitize_pytorch_types)

    def _batches(self, reader: Any) -> Iterator[dict]:
        column_batches = (item_columns(reader, item, sanitize_pytorch_types) for item in reader)
        for batch in rebatch_columns(column_batches, self.batch_size, self.drop_last):
            yield {k: as_tensor(v) for k, v in batch.items()}
