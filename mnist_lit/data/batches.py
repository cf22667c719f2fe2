"""A data set held as two tensors, batched by a DataLoader in one indexing per batch; the
training loader resumes a checkpoint taken mid-epoch where it stopped."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


class TensorPairs(Dataset[tuple[Tensor, Tensor]]):
    """Images ``(N, 28, 28)`` uint8 and their targets ``(N,)``: labels, or for prediction
    each image's index. On the training device already when that is a GPU."""

    def __init__(self, images: Tensor, targets: Tensor) -> None:
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.targets[index]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        """A whole batch: the DataLoader passes all its indices here at once."""
        # Through numpy: several times faster than torch.as_tensor on a list. non_blocking:
        # the indices go to a GPU without waiting for the steps queued there.
        index = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        index = index.to(self.targets.device, non_blocking=True)
        # index_select is several times faster than advanced indexing for a gather.
        return self.images.index_select(0, index), self.targets.index_select(0, index)


def whole_batch(batch: Any) -> Any:
    """The DataLoader's ``collate_fn``: :meth:`TensorPairs.__getitems__` returns a batch."""
    return batch


def trained_batches(trainer: L.Trainer | None) -> int:
    """The batches of the current training epoch that a checkpoint taken now has trained
    on, where Lightning resumes the epoch from it: 0 outside a fit, and at an epoch's end
    (the next epoch starts anew). Only a checkpoint taken mid-epoch (Lightning's hpc
    checkpoint when SLURM stops a job) has more."""
    if trainer is None or trainer.state.fn != TrainerFn.FITTING:
        return 0
    # `processed`: the batches whose optimizer step is done; a batch stopped before it is
    # taken again, and so is it here. (Lightning types the tracker as its base class.)
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    done = int(progress.processed)  # type: ignore[attr-defined]
    return done if done < trainer.num_training_batches else 0


class ResumableLoader(DataLoader):
    """A DataLoader that goes on mid-epoch where a checkpoint stopped: Lightning saves
    :meth:`state_dict` in every checkpoint and, resuming one taken mid-epoch, gives it back
    to :meth:`load_state_dict` before the epoch goes on. The next iteration then leaves out
    the batches already trained on; the sampler draws the epoch's order from its seed and
    epoch, so the same batches follow as in a run that never stopped."""

    def __init__(self, *args: Any, trained: Callable[[], int] = lambda: 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trained = trained
        self._skip = 0

    def state_dict(self) -> dict[str, int]:
        return {"trained_batches": self.trained()}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._skip = int(state_dict.get("trained_batches", 0))

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # Any iterator does for Lightning, not only a DataLoader's own.
        skip, self._skip = self._skip, 0
        iterator = super().__iter__()
        # islice skips when the first batch is asked for, after Lightning sets the epoch.
        return itertools.islice(iterator, skip, None) if skip else iterator
