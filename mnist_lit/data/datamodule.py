"""MNIST as a LightningDataModule: loaded once as uint8 tensors, batched by DataLoaders, with a
seeded share of the training labels made wrong when asked (label noise)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler
from torchvision.datasets import MNIST

from mnist_lit.data.batches import ResumableLoader, TensorPairs, trained_batches, whole_batch
from mnist_lit.data.hyperparameters import TrackedHyperparameters
from mnist_lit.data.mnist import NUM_CLASSES, RAW_FILES, TRAIN_SET_SIZE
from mnist_lit.data.pixels import network_input
from mnist_lit.data.raw_files import extract_archives, raw_folder, read_split


def check_label_noise(share: float, option: str = "label_noise") -> None:
    """Fail with a ValueError naming ``option`` unless ``0 <= share < 1``."""
    if not 0 <= share < 1:
        raise ValueError(
            f"{option} is the share of training labels made wrong, from 0 up to but not "
            f"including 1; got {share}."
        )


def check_positive(**options: int) -> None:
    """Fail with a ValueError naming the first option that is not a positive integer."""
    for option, value in options.items():
        if value <= 0:
            raise ValueError(f"{option} must be a positive integer, got {value}.")


def flip_labels(labels: Tensor, share: float, generator: torch.Generator) -> Tensor:
    """``labels`` with ``round(share * len(labels))`` of them, drawn by ``generator``, moved
    to another class drawn uniformly (never to their own)."""
    chosen = torch.randperm(len(labels), generator=generator)[: round(share * len(labels))]
    shift = torch.randint(1, NUM_CLASSES, (len(chosen),), generator=generator)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % NUM_CLASSES
    return noisy


def download_mnist(data_dir: str | Path) -> None:
    """Make sure ``data_dir/MNIST/raw`` holds MNIST's four IDX files, extracted or as ``.gz``:
    ``.gz`` files already there are extracted where the folder can be written, so no network
    is needed when they are in place; what is still missing is downloaded."""
    raw = raw_folder(data_dir)
    extract_archives(raw)
    missing = [
        name
        for name in RAW_FILES
        if not (raw / name).is_file() and not (raw / name.removesuffix(".gz")).is_file()
    ]
    if not missing:
        return
    try:
        # torchvision prints one line per mirror it tries; keep only our own message. It
        # downloads all four files, whichever split it is asked for.
        with contextlib.redirect_stdout(io.StringIO()):
            MNIST(data_dir, download=True)
    except (OSError, RuntimeError) as error:
        reason = (str(error).strip().splitlines() or [""])[0].rstrip(": ")
        reason = reason or type(error).__name__
        raise ValueError(
            f"data_dir {data_dir} holds no MNIST: {', '.join(missing)} missing from {raw} "
            f"(neither extracted nor as .gz), and the download failed ({reason}). Without "
            f"internet, copy the four files {', '.join(RAW_FILES)} into {raw}/, or choose a "
            "data_dir that has them in MNIST/raw/."
        ) from error


class MNISTDataModule(TrackedHyperparameters, L.LightningDataModule):
    """MNIST: 55,000 train / 5,000 validation images by a seeded split, and the official
    10,000 test images, whole.

    The images are held once as ``uint8`` tensors (on the GPU when training there) and
    converted to float per batch, on the device, in :meth:`on_after_batch_transfer`. The
    loaders are plain ``DataLoader``s, so Lightning shards the evaluation splits under DDP
    (with its ``DistributedSampler``, which pads a split that does not divide evenly) and
    applies ``overfit_batches`` and ``limit_*_batches``. It predicts the test set; the
    command line's data module, :class:`~mnist_lit.data.own_digits.OwnDigitsDataModule`,
    predicts your own digit images too.

    Args:
        data_dir: folder holding ``MNIST/raw/`` (downloaded there when missing).
        batch_size: samples per training step (the tutorial's 64).
        eval_batch_size: samples per validation, test and predict batch; larger than
            ``batch_size`` because evaluation has no gradient step, so fewer batches only
            save time and change no result.
        val_size: training images held out for validation (0 for none).
        seed: seeds the train/validation split, the labels made wrong and the shuffle of
            every epoch.
        normalize: standardise pixels with MNIST's mean and std; off gives ``[0, 1]``
            pixels, as the tutorial's ``ToTensor()`` did.
        label_noise: the share of the training labels (after the split) moved to another
            class, uniformly, by the seed; validation and test labels stay clean.
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        eval_batch_size: int = 1_000,
        val_size: int = 5_000,
        seed: int = 42,
        normalize: bool = False,
        label_noise: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive(batch_size=batch_size, eval_batch_size=eval_batch_size)
        if not 0 <= val_size < TRAIN_SET_SIZE:
            raise ValueError(
                f"val_size must be between 0 and {TRAIN_SET_SIZE - 1}, got {val_size}."
            )
        check_label_noise(label_noise)
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.seed = seed
        self.normalize = normalize
        self.label_noise = label_noise
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node, before setup.
        download_mnist(self.data_dir)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        train_images, train_labels = read_split(self.data_dir, train=True)
        if self.val_size >= len(train_labels):
            raise ValueError(
                f"val_size must be smaller than the training set ({len(train_labels)} "
                f"images in {self.data_dir}), got {self.val_size}."
            )
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(train_labels), generator=generator)
        val_idx, train_idx = order[: self.val_size], order[self.val_size :]
        train_targets = flip_labels(train_labels[train_idx], self.label_noise, generator)
        # index_select: the same images as train_images[train_idx], in half the time.
        splits = {
            "train": (train_images.index_select(0, train_idx), train_targets),
            "val": (train_images.index_select(0, val_idx), train_labels[val_idx]),
            "test": read_split(self.data_dir, train=False),
        }
        device = torch.device("cpu")
        if self.trainer is not None and self.trainer.strategy.root_device.type == "cuda":
            # On a GPU the data set (47 MB as uint8) moves there once, not batch by batch.
            device = self.trainer.strategy.root_device
        self.splits = {
            name: (images.to(device), labels.to(device))
            for name, (images, labels) in splits.items()
        }

    def _loader(
        self, split: tuple[Tensor, Tensor], batch_size: int, shuffle: bool = False
    ) -> DataLoader:
        # No workers: a batch is one index_select on tensors in memory (on the GPU when
        # training there), faster than handing it between processes. No pinned memory: on a
        # GPU the data is there already. Every batch is kept, the last one partial: the test
        # set is whole.
        dataset = TensorPairs(*split)
        options: dict[str, Any] = {
            "batch_size": batch_size,
            "collate_fn": whole_batch,
            "num_workers": 0,
            # Every iterator draws a seed for workers from this generator; from the global
            # one, which dropout draws from, a resumed run's draws would be one off.
            "generator": torch.Generator(),
        }
        if shuffle:  # the training loader, which goes on mid-epoch where a checkpoint stopped
            sampler = self._shuffle(dataset)
            return ResumableLoader(dataset, sampler=sampler, trained=self._trained, **options)
        return DataLoader(dataset, **options)

    def _trained(self) -> int:
        return trained_batches(self.trainer)

    def _shuffle(self, dataset: TensorPairs) -> DistributedSampler:
        """A new order every epoch, drawn from ``seed + epoch``: the same in every run and
        after resuming at an epoch (Lightning calls ``set_epoch`` before each one). Under DDP
        each process takes its share of that one order, so two processes of 32 images a
        step train on the batches of one process of 64; Lightning keeps a sampler that
        is a ``DistributedSampler`` already."""
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        return DistributedSampler(dataset, replicas, rank, shuffle=True, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.splits["train"], self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._loader(self.splits["val"], self.eval_batch_size) if self.val_size else []

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"], self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """Batches of ``(images, index)`` of the test set; each image's name is
        ``predict_names()[index]``."""
        return self._indexed(self.splits["test"][0])

    def _indexed(self, images: Tensor) -> DataLoader:
        """Batches of ``(images, index)``: the index names the image."""
        return self._loader(
            (images, torch.arange(len(images), device=images.device)), self.eval_batch_size
        )

    def predict_names(self) -> list[str]:
        """The name of each image :meth:`predict_dataloader` gives: ``test:<i>``."""
        return [f"test:{i}" for i in range(len(self.splits["test"][1]))]

    def preprocess(self, images: Tensor) -> Tensor:
        """``(B, 28, 28)`` uint8 -> ``(B, 1, 28, 28)`` float, scaled and maybe normalised."""
        return network_input(images, self.normalize)

    def on_after_batch_transfer(
        self, batch: tuple[Tensor, Tensor] | Tensor, dataloader_idx: int
    ) -> tuple[Tensor, Tensor] | Tensor:
        if isinstance(batch, Tensor):  # the model's example input: already what it takes
            return batch
        images, labels = batch
        return self.preprocess(images), labels
