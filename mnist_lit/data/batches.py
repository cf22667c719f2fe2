"""Batches sliced from tensors held in memory: no Dataset, no per-sample Python."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


@dataclass
class EpochOrder:
    """The order in which one process visits ``n`` samples, epoch by epoch.

    Shuffled orders are drawn from ``seed + epoch``: the same for the same seed and epoch
    in every run and every process, different across epochs. Under distributed training
    each of ``world_size`` processes takes every ``world_size``-th index, as
    ``DistributedSampler`` does; ``even_shards`` first pads the order by repeating samples,
    so that every process runs the same number of steps.
    """

    n: int
    shuffle: bool = False
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    even_shards: bool = False

    def indices(self, epoch: int = 0) -> Tensor:
        """This process's indices in ``epoch``."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
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


class PredictBatch(NamedTuple):
    """A batch to predict, with each image's identity: its position and its name."""

    images: Tensor  # (B, 28, 28) uint8, (B, 1, 28, 28) float once prepared
    indices: Tensor  # (B,) positions in the predicted set
    names: list[str]  # the file, or ``test:<i>`` for the test set


@dataclass(eq=False)  # by identity: no field-by-field comparison of tensors
class InMemoryBatches:
    """An iterable of batches taken by index from in-memory tensors.

    Lightning accepts any sized iterable as a dataloader. The whole split is already a
    ``uint8`` tensor (on the training device when that is a GPU), so a batch is one
    indexing operation, and an unshuffled batch is a view.
    """

    images: Tensor  # (N, 28, 28) uint8
    labels: Tensor  # (N,) int64
    batch_size: int  # the last batch may be smaller
    order: EpochOrder
    # The current epoch when an iteration starts (the trainer's), so that a shuffled order
    # changes from epoch to epoch.
    epoch: Callable[[], int]
    # One name per sample: when given, batches are PredictBatch and the labels are taken as
    # the samples' indices.
    names: Sequence[str] | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor] | PredictBatch]:
        for images, labels in self._batches():
            if self.names is None:
                yield images, labels
            else:
                yield PredictBatch(images, labels, [self.names[i] for i in labels.tolist()])

    def _batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.order
        if not order.shuffle and order.world_size == 1:
            for start in range(0, order.n, self.batch_size):
                batch = slice(start, start + self.batch_size)
                yield self.images[batch], self.labels[batch]  # views, no copy
            return
        # index_select is several times faster than advanced indexing for a gather.
        for batch in order.indices(self.epoch()).to(self.labels.device).split(self.batch_size):
            yield self.images.index_select(0, batch), self.labels.index_select(0, batch)
