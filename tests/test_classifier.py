from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from mnist_lit import MNISTClassifier, MNISTDataModule, Quadratic, SoftmaxRegression
from mnist_lit.errors import MnistLitError


def _trainer(**kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**defaults, **kwargs})


@pytest.fixture
def datamodule(fake_mnist_dir: Path) -> MNISTDataModule:
    return MNISTDataModule(data_dir=str(fake_mnist_dir), batch_size=32, val_size=100)


def test_learns_the_fake_digits_and_logs_every_split(datamodule: MNISTDataModule) -> None:
    L.seed_everything(0)
    model = MNISTClassifier(SoftmaxRegression(), Quadratic(), lr=0.5)
    trainer = _trainer(max_epochs=3)
    trainer.fit(model, datamodule)
    logged = trainer.callback_metrics
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/ce", "val/acc_best"):
        assert key in logged, key
    assert logged["val/acc_best"] >= logged["val/acc"]
    (result,) = trainer.test(model, datamodule, verbose=False)
    assert result["test/acc"] > 0.9
    # The comparable cross-entropy differs from the (quadratic) training loss.
    assert result["test/ce"] != pytest.approx(result["test/loss"])


def test_best_accuracy_ignores_the_sanity_check(datamodule: MNISTDataModule) -> None:
    model = MNISTClassifier(lr=1e-9)  # learns nothing: best stays at the epoch's accuracy
    trainer = _trainer(max_epochs=1, num_sanity_val_steps=-1)
    model.val_acc_best.update(torch.tensor(1.0))  # as if the sanity check had scored 100%
    trainer.fit(model, datamodule)
    assert trainer.callback_metrics["val/acc_best"] < 1.0


def test_predict_returns_digits_and_probabilities(datamodule: MNISTDataModule) -> None:
    model = MNISTClassifier()
    batches = _trainer().predict(model, datamodule)
    digits = torch.cat([b["digit"] for b in batches])
    probs = torch.cat([b["probs"] for b in batches])
    assert digits.shape == (200,) and probs.shape == (200, 10)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(200))
    assert torch.equal(probs.argmax(dim=1), digits)


class _CountingBatches(nn.Module):
    """Wraps a network and records the batch size of every forward call."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(len(x))
        return self.net(x)


def test_network_with_wrong_number_of_outputs_is_named(datamodule: MNISTDataModule) -> None:
    net = _CountingBatches(nn.Sequential(nn.Flatten(), nn.Linear(784, 7)))
    model = MNISTClassifier(net=net)
    with pytest.raises(MnistLitError, match=r"model\.net must output 10 logits"):
        _trainer(max_epochs=1).fit(model, datamodule)
    # Rejected on a dummy batch of 2 images, before any real batch (of 32) was seen.
    assert net.batch_sizes == [2]


def test_learning_rate_must_be_positive() -> None:
    with pytest.raises(MnistLitError, match=r"model\.lr"):
        MNISTClassifier(lr=0)
