"""Batches sliced from tensors held in memory: no Dataset, no per-sample Python."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor


class EpochOrder:
    """The order in which one process visits ``n`` samples, epoch by epoch.

    Shuffled orders are drawn from ``seed + epoch``: the same for the same seed and epoch
    in every run and every process, different across epochs. Lightning calls
    :meth:`set_epoch` at the start of each epoch (it looks for ``loader.sampler``).
    Under distributed training each of ``world_size`` processes takes every
    ``world_size``-th index, as ``DistributedSampler`` does; ``even_shards`` first pads the
    order by repeating samples, so that every process runs the same number of steps.
    """

    def __init__(
        self,
        n: int,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        even_shards: bool = False,
    ) -> None:
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.even_shards = even_shards
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> Tensor:
        """This process's indices for the current epoch."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        if self.even_shards and self.world_size > 1:
            padded = math.ceil(self.n / self.world_size) * self.world_size
            order = torch.cat([order, order[: padded - self.n]])
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        if self.even_shards:
            return math.ceil(self.n / self.world_size)
        return len(range(self.rank, self.n, self.world_size))


class InMemoryBatches:
    """An iterable of ``(images, labels)`` batches taken by index from in-memory tensors.

    Lightning accepts any sized iterable as a dataloader. The whole split is already a
    ``uint8`` tensor (on the training device when that is a GPU), so a batch is one
    indexing operation, and an unshuffled batch is a view.

    Args:
        images: ``(N, 28, 28)`` uint8.
        labels: ``(N,)`` int64.
        batch_size: samples per batch; the last batch may be smaller.
        sampler: the order of the samples; default all of them, in stored order.
    """

    def __init__(
        self, images: Tensor, labels: Tensor, batch_size: int, sampler: EpochOrder | None = None
    ) -> None:
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.sampler = sampler if sampler is not None else EpochOrder(len(labels))
        self.batch_sampler = None  # Lightning inspects these two as on a DataLoader.

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.sampler
        if not order.shuffle and order.world_size == 1:
            for start in range(0, order.n, self.batch_size):
                stop = start + self.batch_size
                yield self.images[start:stop], self.labels[start:stop]
            return
        indices = order.indices().to(self.labels.device)
        for batch in indices.split(self.batch_size):
            # index_select is several times faster than advanced indexing for a gather.
            yield self.images.index_select(0, batch), self.labels.index_select(0, batch)
