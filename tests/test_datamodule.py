from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torchvision
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, DistributedSampler

from mnist_lit import MNISTClassifier
from mnist_lit.data import MNISTDataModule
from mnist_lit.data.mnist import PIXEL_MEAN, PIXEL_STD


@pytest.fixture
def datamodule(fake_mnist_dir: Path) -> MNISTDataModule:
    dm = MNISTDataModule(
        data_dir=str(fake_mnist_dir), batch_size=32, eval_batch_size=32, val_size=100, seed=3
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _all_labels(loader: DataLoader) -> torch.Tensor:
    return torch.cat([labels for _, labels in loader])


def test_split_sizes_and_full_test_set(datamodule: MNISTDataModule) -> None:
    assert len(datamodule.splits["train"][1]) == 500
    assert len(datamodule.splits["val"][1]) == 100
    # Every test image is visited once, the last partial batch included.
    assert len(_all_labels(datamodule.test_dataloader())) == 200
    assert len(datamodule.test_dataloader()) == 7  # ceil(200 / 32)


def test_batches_are_uint8_then_float_in_unit_range(datamodule: MNISTDataModule) -> None:
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (32, 28, 28)
    assert labels.dtype == torch.int64
    x, y = datamodule.on_after_batch_transfer((images, labels), 0)
    assert x.dtype == torch.float32 and x.shape == (32, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
    assert torch.equal(y, labels)


def test_normalize_uses_mnist_mean_and_std(fake_mnist_dir: Path) -> None:
    dm = MNISTDataModule(data_dir=str(fake_mnist_dir), normalize=True)
    x = dm.preprocess(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    expected = torch.tensor([(0 - PIXEL_MEAN) / PIXEL_STD, (1 - PIXEL_MEAN) / PIXEL_STD])
    torch.testing.assert_close(x.flatten(), expected)


def test_train_and_val_are_disjoint_and_cover_the_training_set(fake_mnist_dir: Path) -> None:
    dm = MNISTDataModule(data_dir=str(fake_mnist_dir), val_size=100, seed=3)
    dm.setup()
    train = {img.numpy().tobytes() for img in dm.splits["train"][0]}
    val = {img.numpy().tobytes() for img in dm.splits["val"][0]}
    assert not train & val
    original = torchvision.datasets.MNIST(str(fake_mnist_dir), train=True).data
    assert train | val == {img.numpy().tobytes() for img in original}


def test_split_depends_on_seed(fake_mnist_dir: Path) -> None:
    first, second, other = (
        MNISTDataModule(str(fake_mnist_dir), val_size=100, seed=s) for s in (1, 1, 2)
    )
    for dm in (first, second, other):
        dm.setup()
    assert torch.equal(first.splits["val"][0], second.splits["val"][0])
    assert not torch.equal(first.splits["val"][0], other.splits["val"][0])


def test_shuffle_is_reproducible_per_epoch_and_differs_across_epochs(
    datamodule: MNISTDataModule,
) -> None:
    loader, again = datamodule.train_dataloader(), datamodule.train_dataloader()
    epoch0 = _all_labels(loader)
    assert torch.equal(epoch0, _all_labels(again))
    sampler = loader.sampler
    assert isinstance(sampler, DistributedSampler)
    sampler.set_epoch(1)  # as Lightning does before each epoch
    epoch1 = _all_labels(loader)
    sampler.set_epoch(0)
    assert torch.equal(_all_labels(loader), epoch0)  # epoch 0 again, as after a resume
    assert not torch.equal(epoch0, epoch1)
    assert torch.equal(epoch0.sort().values, epoch1.sort().values)


class _RecordLabels(Callback):
    """Records the labels of every training batch, epoch by epoch, and the sampler."""

    def __init__(self) -> None:
        self.epochs: list[list[torch.Tensor]] = []
        self.samplers: list[object] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append([])
        self.samplers.append(getattr(trainer.train_dataloader, "sampler", None))

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.epochs[-1].append(batch[1])


def test_a_real_fit_visits_a_new_order_every_epoch(datamodule: MNISTDataModule) -> None:
    recorder = _RecordLabels()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[recorder])  # fmt: skip
    trainer.fit(MNISTClassifier(), datamodule)
    labels = datamodule.splits["train"][1]
    visited = [torch.cat(epoch) for epoch in recorder.epochs]
    # Each epoch is the permutation drawn from seed + epoch, so all three differ.
    for epoch, seen in enumerate(visited):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(3 + epoch))
        assert torch.equal(seen, labels[order])
    assert not torch.equal(visited[0], visited[1]) and not torch.equal(visited[1], visited[2])


def test_validation_and_test_are_not_shuffled(datamodule: MNISTDataModule) -> None:
    loader = datamodule.val_dataloader()
    assert isinstance(loader, DataLoader)
    assert torch.equal(_all_labels(loader), datamodule.splits["val"][1])
    assert torch.equal(_all_labels(datamodule.test_dataloader()), datamodule.splits["test"][1])


def _fit(datamodule: MNISTDataModule, **trainer_options: Any) -> tuple[L.Trainer, _RecordLabels]:
    recorder = _RecordLabels()
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[recorder], accelerator="cpu",
                        **trainer_options)  # fmt: skip
    trainer.fit(MNISTClassifier(), datamodule)
    return trainer, recorder


def test_under_ddp_the_order_is_the_data_modules_seed_and_lightning_shards_the_rest(
    datamodule: MNISTDataModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One process of DDP: Lightning keeps the training loader's DistributedSampler, seeded
    # by the data module (not seed_everything), and puts its own on the evaluation loaders
    # (tests/test_multinode.py runs two processes).
    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK",
                 "PL_GLOBAL_SEED"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    L.seed_everything(5)
    try:
        trainer, recorder = _fit(datamodule, strategy="ddp", devices=1, max_epochs=2)
    finally:
        torch.distributed.destroy_process_group()
    train, val = recorder.samplers[0], getattr(trainer.val_dataloaders, "sampler", None)
    assert isinstance(train, DistributedSampler) and train.shuffle
    assert train.seed == datamodule.seed != 5
    assert isinstance(val, DistributedSampler) and not val.shuffle
    # Its order: the permutation of seed + epoch, new every epoch.
    labels = datamodule.splits["train"][1]
    for epoch, seen in enumerate(recorder.epochs):
        seed = datamodule.seed + epoch
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(torch.cat(seen), labels[order])


def test_overfit_batches_takes_the_same_first_batches_every_epoch(
    datamodule: MNISTDataModule,
) -> None:
    _, recorder = _fit(datamodule, overfit_batches=3, max_epochs=2)
    labels = datamodule.splits["train"][1]
    for seen in recorder.epochs:
        assert torch.equal(torch.cat(seen), labels[: 3 * 32])


def test_limit_train_batches_stops_each_epoch_early(datamodule: MNISTDataModule) -> None:
    trainer, recorder = _fit(datamodule, limit_train_batches=4, limit_val_batches=2, max_epochs=2)
    assert [len(seen) for seen in recorder.epochs] == [4, 4]
    assert trainer.num_val_batches == [2]


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"batch_size": 0}, r"^batch_size must"), ({"val_size": -1}, r"^val_size must")],
)
def test_bad_options_are_named(kwargs: dict, option: str) -> None:
    with pytest.raises(ValueError, match=option):
        MNISTDataModule(**kwargs)


def test_missing_data_offline_says_where_files_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) refuses the connection at once: the same as no internet.
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    dm = MNISTDataModule(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError) as error:
        dm.prepare_data()
    message = str(error.value)
    assert message.startswith(f"data_dir {tmp_path / 'nowhere'} holds no MNIST")
    assert "copy the four files train-images-idx3-ubyte.gz" in message
    assert f"into {tmp_path / 'nowhere' / 'MNIST' / 'raw'}/" in message


def test_evaluation_takes_larger_batches_than_training(fake_mnist_dir: Path) -> None:
    dm = MNISTDataModule(str(fake_mnist_dir), batch_size=16, eval_batch_size=64, val_size=100)
    dm.setup()
    assert [len(labels) for _, labels in dm.val_dataloader()] == [64, 36]
    assert len(next(iter(dm.train_dataloader()))[1]) == 16


def _setup(data_dir: Path, **options: Any) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=str(data_dir), val_size=100, **options)
    dm.setup()
    return dm


def _flipped_images(noisy: MNISTDataModule, clean: MNISTDataModule) -> set[bytes]:
    changed = noisy.splits["train"][1] != clean.splits["train"][1]
    return {image.numpy().tobytes() for image in noisy.splits["train"][0][changed]}


@pytest.mark.parametrize("share", [0.3, 0.1234])  # 150 and 61.7 -> 62 labels
def test_label_noise_moves_the_exact_share_of_training_labels_only(
    fake_mnist_dir: Path, share: float
) -> None:
    clean = _setup(fake_mnist_dir, seed=3)
    noisy = _setup(fake_mnist_dir, seed=3, label_noise=share)
    # The same split: the noise comes after it and touches only the training labels.
    for split in ("train", "val", "test"):
        assert torch.equal(noisy.splits[split][0], clean.splits[split][0]), split
    for split in ("val", "test"):
        assert torch.equal(noisy.splits[split][1], clean.splits[split][1]), split
    labels, noisy_labels = clean.splits["train"][1], noisy.splits["train"][1]
    changed = labels != noisy_labels
    # round(share * 500) labels drawn, and every one of them moved to another class.
    assert changed.sum() == round(share * 500)
    shifts = (noisy_labels[changed] - labels[changed]) % 10
    assert set(shifts.tolist()) == set(range(1, 10))  # to any other class


def test_label_noise_is_the_same_for_a_seed_and_another_for_another(
    fake_mnist_dir: Path,
) -> None:
    def flipped(seed: int) -> set[bytes]:
        noisy = _setup(fake_mnist_dir, seed=seed, label_noise=0.2)
        return _flipped_images(noisy, _setup(fake_mnist_dir, seed=seed))

    assert len(flipped(3)) == 100
    assert flipped(3) == flipped(3)
    assert flipped(3) != flipped(4)


@pytest.mark.parametrize("share", [-0.1, 1.0, float("nan")])
def test_label_noise_outside_zero_to_one_is_named(share: float) -> None:
    with pytest.raises(ValueError, match=r"^label_noise is the share .* got"):
        MNISTDataModule(label_noise=share)
