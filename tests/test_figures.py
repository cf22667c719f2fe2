"""The figures module: what each figure shows, and that none is left in pyplot."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_calibration_error

from mnist_lit.models.diagnostics import ReliabilityBins
from mnist_lit.runs import figures
from mnist_lit.runs.evaluation_figures import ConfidentMistakes, EvaluationSummary, Mistakes, draw


def _predictions(n: int = 500, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 10, (n,), generator=generator)
    logits = torch.randn(n, 10, generator=generator) + 2 * torch.eye(10)[target]
    return target, logits.softmax(-1)


def _texts(figure: Figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts]


def _titles(figure: Figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes if ax.get_title()]


def test_confusion_counts_put_true_classes_in_rows() -> None:
    counts = figures.confusion_counts([0, 0, 1, 2], [0, 1, 1, 1], num_classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_the_confusion_matrix_shows_every_count_and_the_accuracy() -> None:
    target, probs = _predictions()
    counts = figures.confusion_counts(target, probs.argmax(-1))
    figure = figures.confusion_matrix(counts)
    assert [int(t) for t in _texts(figure)] == counts.flatten().tolist()
    accuracy = (probs.argmax(-1) == target).float().mean().item()
    assert f"accuracy {accuracy:.2%}" in _titles(figure)[0]


def test_the_most_confident_mistakes_come_first() -> None:
    images = torch.rand(5, 1, 28, 28)
    target = torch.tensor([1, 2, 3, 4, 5])
    predicted = torch.tensor([1, 0, 0, 0, 5])  # three wrong
    confidence = torch.tensor([0.99, 0.5, 0.9, 0.7, 0.8])
    figure = figures.confident_mistakes(images, target, predicted, confidence, count=2)
    assert _titles(figure) == ["3 → 0, 90%", "4 → 0, 70%"]
    assert "3 of 5 wrong" in figure.get_suptitle()


def test_calibration_bins_give_torchmetrics_ece_and_add_up() -> None:
    target, probs = _predictions()
    confidence, predicted = probs.max(-1)
    whole = figures.CalibrationBins.of(confidence, predicted == target)
    expected = multiclass_calibration_error(probs, target, 10, n_bins=15).item()
    assert whole.ece == pytest.approx(expected, abs=1e-6)
    halves = [figures.CalibrationBins.of(confidence[s], (predicted == target)[s]) for s in
              (slice(0, 200), slice(200, None))]  # fmt: skip
    assert (halves[0] + halves[1]).ece == pytest.approx(whole.ece)
    assert (halves[0] + halves[1]).count.sum() == 500


def test_the_reliability_diagram_plots_each_bins_accuracy() -> None:
    bins = figures.CalibrationBins.of([0.05, 0.15, 0.95, 0.95], [0, 1, 1, 0], n_bins=10)
    figure = figures.reliability_diagram({"model": bins})
    model_line = figure.axes[0].lines[1]
    assert model_line.get_xdata().tolist() == pytest.approx([0.05, 0.15, 0.95])
    assert model_line.get_ydata().tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert f"model (ECE {bins.ece:.3f})" in figure.axes[0].get_legend_handles_labels()[1]


def test_per_class_accuracy_has_one_bar_per_class_and_model() -> None:
    matrix = np.diag([10] * 10)
    matrix[3, 5] = 10  # half of class 3 wrong
    figure = figures.per_class_accuracy({"a": matrix, "b": np.diag([1] * 10)})
    heights = [bar.get_height() for bar in figure.axes[0].patches]
    assert heights[:10] == [1.0] * 3 + [0.5] + [1.0] * 6
    assert heights[10:] == [1.0] * 10


def test_learning_curves_average_over_the_rows_of_a_group() -> None:
    rows = [{"loss": loss, "epoch": epoch, "seed": seed, "acc": epoch + seed + (loss == "b")}
            for loss in ("a", "b") for seed in (0, 2) for epoch in (0, 1)]  # fmt: skip
    figure = figures.learning_curves(rows, [figures.Panel("acc", "accuracy")])
    lines = figure.axes[0].lines
    assert [line.get_label() for line in lines] == ["a", "b"]
    assert lines[0].get_ydata().tolist() == [1.0, 2.0]  # the mean over seeds 0 and 2
    assert lines[1].get_ydata().tolist() == [2.0, 3.0]


def test_the_lr_finder_curve_marks_the_suggestion() -> None:
    lrs = np.logspace(-5, 0, 20)
    figure = figures.lr_finder_curve(lrs, np.linspace(2, 1, 20), suggestion=lrs[7])
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.lines[1].get_xdata()[0] == pytest.approx(lrs[7])


def _test_figure_metrics(
    images: torch.Tensor, target: torch.Tensor, probs: torch.Tensor, keep: int = 5
) -> list[Metric]:
    """The metrics the test figures come from, updated with one share of a test set."""
    metrics: list[Metric] = [MulticlassConfusionMatrix(10), ReliabilityBins(15)]
    for metric in metrics:
        metric.update(probs, target)
    mistakes = ConfidentMistakes(keep)
    for batch in range(0, len(target), 64):  # in batches, as the test steps give them
        part = slice(batch, batch + 64)
        mistakes.update(images[part], target[part], probs[part])
    return [*metrics, mistakes]


def _summary(metrics: list[Metric]) -> EvaluationSummary:
    confusion, bins, mistakes = (metric.compute() for metric in metrics)
    return EvaluationSummary(confusion.numpy(), figures.CalibrationBins.from_tensor(bins), mistakes)


def test_the_test_figures_are_drawn_from_metrics_that_add_up() -> None:
    target, probs = _predictions(300)
    images = torch.rand(300, 1, 28, 28)
    whole = _summary(_test_figure_metrics(images, target, probs))
    first = _test_figure_metrics(images[:100], target[:100], probs[:100])
    second = _test_figure_metrics(images[100:], target[100:], probs[100:])
    for mine, theirs in zip(first, second, strict=True):
        mine.merge_state(theirs)  # what torchmetrics does across processes
    total = _summary(first)
    assert (total.confusion == figures.confusion_counts(target, probs.argmax(-1))).all()
    assert (total.confusion == whole.confusion).all()
    expected_ece = multiclass_calibration_error(probs, target, 10, n_bins=15).item()
    assert total.calibration.ece == pytest.approx(expected_ece, abs=1e-6)
    # Each process keeps its own most confident mistakes; the best of both are the best.
    confidence, predicted = probs.max(-1)
    wrong = predicted != target
    best = confidence[wrong].sort(descending=True).values[:5]
    assert total.mistakes.confidence.tolist() == pytest.approx(best.tolist())
    assert whole.mistakes.confidence.tolist() == pytest.approx(best.tolist())
    first_image = torch.flatten(images[wrong][confidence[wrong].argmax()], 0, 1)
    assert torch.equal(total.mistakes.images[0], first_image)
    drawn = draw(total, mistakes=5)
    assert set(drawn) == {"confusion_matrix", "confident_mistakes", "reliability",
                          "per_class_accuracy"}  # fmt: skip


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_no_mistakes_kept_when_nothing_was_tested() -> None:
    mistakes = ConfidentMistakes(3)
    assert all(len(values) == 0 for values in mistakes.compute())
    assert isinstance(mistakes.compute(), Mistakes)


def test_no_figure_is_left_in_pyplot() -> None:
    before = plt.get_fignums()
    target, probs = _predictions()
    summary = _summary(_test_figure_metrics(torch.rand(500, 28, 28), target, probs, keep=3))
    for figure in draw(summary).values():
        figure.savefig(io.BytesIO(), format="png")
    assert plt.get_fignums() == before
