import functools
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins import MixedPrecision
from torch import nn

from mnist_lit import MNISTClassifier, MNISTDataModule, Quadratic, SoftmaxRegression
from mnist_lit.losses import SigmoidQuadratic
from mnist_lit.models.diagnostics import output_probabilities, saturated_share
from mnist_lit.models.divergence import Diverged
from tests.fake_mnist import square


def sgd(lr: float) -> functools.partial[torch.optim.SGD]:
    return functools.partial(torch.optim.SGD, lr=lr)


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
    model = MNISTClassifier(SoftmaxRegression(), Quadratic(), sgd(0.5))
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


def _perfect_net() -> SoftmaxRegression:
    """Softmax regression that reads the fake digits' squares: 100% accurate on them."""
    net = SoftmaxRegression()
    with torch.no_grad():
        net.linear.bias.zero_()
        for label in range(10):
            mask = torch.zeros(28, 28)
            mask[square(label)] = 1.0
            net.linear.weight[label] = mask.flatten()
    return net


class _MislabelOnTrainStart(Callback):
    """Records the accuracy the sanity check saw, then, when training starts, shifts every
    class's weights to the next class: each digit is now read as its neighbour."""

    sanity_acc = 0.0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            assert isinstance(pl_module, MNISTClassifier)
            self.sanity_acc = float(pl_module.metric("val", "acc").compute())

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        weight = pl_module.net.linear.weight
        with torch.no_grad():
            weight.copy_(weight.roll(1, dims=0))


def test_best_accuracy_ignores_the_sanity_check(datamodule: MNISTDataModule) -> None:
    # Perfect during the sanity check, then wrong about every digit and hardly trained:
    # the best accuracy must be the epoch's, not the sanity check's 100%.
    model = MNISTClassifier(_perfect_net(), optimizer=sgd(1e-12))
    mislabel = _MislabelOnTrainStart()
    trainer = _trainer(max_epochs=1, num_sanity_val_steps=-1, callbacks=[mislabel])
    trainer.fit(model, datamodule)
    assert mislabel.sanity_acc == 1.0
    logged = trainer.callback_metrics
    assert logged["val/acc"] < 0.2
    assert logged["val/acc_best"] == logged["val/acc"]


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
    with pytest.raises(ValueError, match=r"^net \(_CountingBatches\) must output 10 logits"):
        _trainer(max_epochs=1).fit(model, datamodule)
    # Rejected on a dummy batch of 2 images, before any real batch (of 32) was seen.
    assert net.batch_sizes == [2]


def test_a_bad_optimizer_option_is_one_message_before_training() -> None:
    with pytest.raises(ValueError, match=r"^optimizer \(SGD\): Invalid learning rate"):
        MNISTClassifier(optimizer=sgd(-1))
    restarts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts
    with pytest.raises(ValueError, match=r"^lr_scheduler \(Cosine\w+\): Expected positive"):
        MNISTClassifier(lr_scheduler=functools.partial(restarts, T_0=0))


def test_parts_built_in_python_are_saved_as_class_paths() -> None:
    schedule = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    hparams = MNISTClassifier(optimizer=sgd(0.1), lr_scheduler=schedule).hparams
    assert hparams["optimizer"]["class_path"] == "torch.optim.sgd.SGD"
    assert hparams["optimizer"]["init_args"]["lr"] == 0.1
    assert hparams["lr_scheduler"]["init_args"] == {"step_size": 2, "gamma": 0.5}
    # The default, a lambda, is described as what it builds: the tutorial's SGD at 0.5.
    assert MNISTClassifier().hparams["optimizer"]["init_args"]["lr"] == 0.5


def _fp16_with_loss_scale() -> dict[str, object]:
    # Lightning turns "16-mixed" on the CPU into bf16, which has no loss scale: the plugin
    # is asked for, with a scale of 2**10 on the loss it backpropagates.
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    return {"plugins": [MixedPrecision("16-mixed", "cpu", scaler)]}


@pytest.mark.parametrize(
    "options",
    [{}, {"accumulate_grad_batches": 2}, "fp16"],
    ids=["plain", "accumulated", "fp16-loss-scale"],
)
def test_logs_dcdz_saturation_calibration_and_brier(
    fake_mnist_dir: Path, options: dict[str, object] | str
) -> None:
    # One batch per epoch and a learning rate too small to move anything: the logged dC/dz
    # must be the per-sample gradient at the initial weights, computed here by hand, the
    # same whatever Lightning divides or scales its backward pass by.
    datamodule = MNISTDataModule(data_dir=str(fake_mnist_dir), batch_size=1000, val_size=100)
    L.seed_everything(0)
    model = MNISTClassifier(SoftmaxRegression(), SigmoidQuadratic(), sgd(1e-12))
    initial = [p.detach().clone() for p in model.parameters()]
    fp16 = options == "fp16"
    trainer = _trainer(max_epochs=1, **(_fp16_with_loss_scale() if fp16 else options))
    trainer.fit(model, datamodule)
    images, labels = datamodule.splits["train"]
    net = SoftmaxRegression()
    with torch.no_grad():
        for param, value in zip(net.parameters(), initial, strict=True):
            param.copy_(value)
    logits = net(datamodule.preprocess(images)).detach().requires_grad_()
    (grad,) = torch.autograd.grad(SigmoidQuadratic()(logits, labels), logits)
    logged = trainer.callback_metrics
    expected_dcdz = grad.abs().mean() * len(labels)
    rtol = 1e-2 if fp16 else 1e-4  # half-precision logits
    torch.testing.assert_close(logged["train/dcdz"], expected_dcdz, rtol=rtol, atol=0)
    if fp16:  # the rest is the plain run's
        return
    sigmoid = logits.detach().sigmoid()
    expected_saturated = ((sigmoid < 0.01) | (sigmoid > 0.99)).float().mean()
    torch.testing.assert_close(logged["train/saturated"], expected_saturated)
    assert 0 < logged["val/ece"] < 1
    val_images, val_labels = datamodule.splits["val"]
    probs = net(datamodule.preprocess(val_images)).detach().softmax(-1)
    one_hot = torch.eye(10)[val_labels]
    expected_brier = ((probs - one_hot) ** 2).sum(-1).mean()
    torch.testing.assert_close(logged["val/brier"], expected_brier, rtol=1e-4, atol=0)
    (result,) = trainer.test(model, datamodule, verbose=False)
    assert 0 < result["test/ece"] < 1 and 0 < result["test/brier"] < 2


def test_saturation_is_read_through_the_losss_activation() -> None:
    logits = torch.tensor([[8.0, -8.0, 0.0]])
    # Sigmoid: 8 and -8 saturate, 0 does not. Softmax: 0.9997, 3e-7 and 3e-4 all saturate.
    sigmoid = MNISTClassifier(loss=SigmoidQuadratic())
    assert sigmoid.output_activation == "sigmoid"
    assert saturated_share(output_probabilities(logits, "sigmoid")).item() == pytest.approx(2 / 3)
    assert MNISTClassifier(loss=Quadratic()).output_activation == "softmax"
    assert saturated_share(output_probabilities(logits, "softmax")).item() == 1.0


def test_compile_option_compiles_the_network_in_place_after_its_check(
    datamodule: MNISTDataModule, monkeypatch: pytest.MonkeyPatch
) -> None:
    # nn.Module.compile runs as it is; torch.compile is replaced by a wrapper that records
    # the batch size of every call of the compiled network, and runs it eagerly.
    compiled_calls: list[int] = []

    def fake_compile(call, *args, **kwargs):  # type: ignore[no-untyped-def]
        def compiled(images: torch.Tensor) -> torch.Tensor:
            compiled_calls.append(len(images))
            return call(images)

        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = MNISTClassifier(compile=True)
    net = model.net
    _trainer(max_epochs=1, limit_val_batches=1, num_sanity_val_steps=0).fit(model, datamodule)
    assert model.net is net  # compiled in place: checkpoint keys unchanged
    assert "net.linear.weight" in model.state_dict()
    # The training and validation batches ran compiled; the check's dummy batch of 2, run
    # on the CPU before the model moves to its device, did not.
    assert 32 in compiled_calls and 2 not in compiled_calls
    compiled_calls.clear()
    _trainer(max_epochs=1, limit_val_batches=1).fit(MNISTClassifier(), datamodule)
    assert compiled_calls == []


class _RecordingDtype(nn.Module):
    """Wraps a network and records the dtype of the logits of every training batch."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.dtypes: set[torch.dtype] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        if self.training:
            self.dtypes.add(logits.dtype)
        return logits


def test_bf16_mixed_precision_trains_on_cpu(datamodule: MNISTDataModule) -> None:
    net = _RecordingDtype(SoftmaxRegression())
    model = MNISTClassifier(net)
    _trainer(fast_dev_run=2, precision="bf16-mixed").fit(model, datamodule)
    assert net.dtypes == {torch.bfloat16}  # the forward pass ran in bfloat16
    assert net.net.linear.weight.dtype == torch.float32  # the master weights stay float32


def test_diagnostics_are_measured_on_every_nth_batch(
    fake_mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datamodule = MNISTDataModule(data_dir=str(fake_mnist_dir), batch_size=100, val_size=100)
    model = MNISTClassifier(diagnostics_every=2)
    diagnosed: list[int] = []
    monkeypatch.setattr(model, "record_output_diagnostics", lambda *args: diagnosed.append(1))
    _trainer(max_epochs=1).fit(model, datamodule)
    assert len(diagnosed) == 3  # batches 0, 2 and 4 of 5


def test_diagnostics_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^diagnostics_every must be a positive integer, got 0"):
        MNISTClassifier(diagnostics_every=0)


def test_a_non_finite_loss_ends_a_fit_in_python_too(fake_mnist_dir: Path) -> None:
    # No callback given: the classifier's own StopOnDivergence ends the fit at that step.
    datamodule = MNISTDataModule(data_dir=str(fake_mnist_dir), batch_size=32, val_size=100)
    model = MNISTClassifier(optimizer=sgd(math.inf))
    with pytest.raises(Diverged, match=r"non-finite \(nan or inf\) in epoch 0 at step") as error:
        _trainer(max_epochs=2).fit(model, datamodule)
    assert error.value.step < 5 and int(model.nonfinite_step) == error.value.step
