"""The probability measurements of every run: temperature scaling (one scalar fitted on the
validation split by minimising cross-entropy) and the Brier score."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from mnist_lit import MNISTClassifier, MNISTDataModule, SoftmaxRegression
from mnist_lit.runs.evaluation import (
    TEMPERATURE_RANGE,
    calibrate,
    evaluate,
    fit_temperature,
    probability_metrics,
    split_logits,
)


def test_temperature_matches_its_closed_form() -> None:
    # Every image has logits (2, 0) and three in four belong to class 0: the cross-entropy
    # is least where softmax(2 / T)[0] = 3/4, that is 2 / T = log 3.
    logits = torch.tensor([[2.0, 0.0]] * 4)
    labels = torch.tensor([0, 0, 0, 1])
    assert fit_temperature(logits, labels) == pytest.approx(2 / math.log(3), rel=1e-5)


def brute_force_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The best of 401 temperatures from 1e-3 to 1e3, then of 401 between its neighbours."""

    def best_of(low: float, high: float) -> tuple[float, float]:
        grid = torch.logspace(math.log10(low), math.log10(high), 401, dtype=torch.float64)
        nll = F.cross_entropy(
            (logits.double() / grid[:, None, None]).transpose(1, 2),
            labels.expand(len(grid), -1),
            reduction="none",
        ).mean(1)
        return grid[nll.argmin()].item(), (grid[1] / grid[0]).item()

    best, step = best_of(1e-3, 1e3)
    return best_of(best / step, best * step)[0]


@pytest.mark.parametrize("scale", [0.05, 1.0, 30.0])
def test_temperature_matches_a_brute_force_grid(scale: float) -> None:
    # Logits on the scale of the square loss on logits (0.05), of cross-entropy (1) and of
    # an overconfident network (30), right for about half of the images.
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (500,), generator=generator)
    logits = torch.randn(500, 10, generator=generator)
    logits[torch.arange(500), labels] += 1.5
    logits *= scale
    best = brute_force_temperature(logits, labels)
    assert fit_temperature(logits, labels) == pytest.approx(best, rel=2e-4)


def test_temperature_stays_positive_and_finite() -> None:
    labels = torch.tensor([0, 1, 2])
    # Every label ranked first: sharper is always better, down to the range's end.
    separable = 5 * F.one_hot(labels, 10).float()
    assert fit_temperature(separable, labels) == pytest.approx(TEMPERATURE_RANGE[0], rel=1e-4)
    diverged = torch.full((3, 10), float("nan"))
    assert fit_temperature(diverged, labels) == 1.0


def test_brier_score_and_cross_entropy_by_hand() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1] + [0.0] * 7, [0.1, 0.6, 0.3] + [0.0] * 7])
    labels = torch.tensor([0, 2])
    metrics = probability_metrics(probs.log(), labels, "test")
    # (0.3² + 0.2² + 0.1²) and (0.1² + 0.6² + 0.7²), averaged
    assert metrics["test_brier"] == pytest.approx((0.14 + 0.86) / 2)
    assert metrics["test_ce"] == pytest.approx(-(math.log(0.7) + math.log(0.3)) / 2)


@pytest.fixture
def overconfident(fake_mnist_dir: Path) -> tuple[MNISTClassifier, MNISTDataModule]:
    """Softmax regression with large random weights, and the fake data it is measured on."""
    L.seed_everything(0)
    model = MNISTClassifier(SoftmaxRegression())
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(50)
    datamodule = MNISTDataModule(str(fake_mnist_dir), val_size=100)
    datamodule.setup()
    return model, datamodule


def test_temperature_scaling_changes_probabilities_not_predictions(
    overconfident: tuple[MNISTClassifier, MNISTDataModule],
) -> None:
    model, datamodule = overconfident
    temperature = calibrate(model, datamodule)
    assert 1 < temperature < TEMPERATURE_RANGE[1]
    raw = evaluate(model, datamodule, "test")
    scaled = evaluate(model, datamodule, "test", temperature)
    assert torch.equal(raw.predictions, scaled.predictions)
    assert scaled.metrics["test_acc"] == raw.metrics["test_acc"]
    assert scaled.metrics["temperature"] == temperature
    logits = split_logits(model, datamodule, "test")
    labels = datamodule.splits["test"][1]
    by_hand = F.cross_entropy(logits / temperature, labels).item()
    assert scaled.metrics["test_ce_scaled"] == pytest.approx(by_hand, rel=1e-5)
    assert scaled.metrics["test_ce"] == raw.metrics["test_ce"] != pytest.approx(by_hand)
    # Fitted on the validation split, T cannot do worse there than T = 1.
    val = evaluate(model, datamodule, "val", temperature).metrics
    assert val["val_ce_scaled"] < val["val_ce"]
