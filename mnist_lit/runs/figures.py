"""The project's figures: arrays or tensors in, a matplotlib :class:`~matplotlib.figure.Figure`
out, built on its own Agg canvas without pyplot, so no global state is left behind and nothing
needs a display; save with ``figure.savefig(path)``, show one in a notebook by making it a
cell's last value."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray
from torchmetrics.functional.classification import multiclass_confusion_matrix

from mnist_lit.data.mnist import NUM_CLASSES
from mnist_lit.models.diagnostics import reliability_bins


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches on an Agg canvas, outside pyplot."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _array(values: ArrayLike) -> NDArray[Any]:
    """A NumPy array of tensors (on any device) or array-likes."""
    to_cpu = getattr(values, "detach", None)
    if to_cpu is not None:
        values = to_cpu().cpu()
    return np.asarray(values)


def confusion_counts(
    target: ArrayLike, predicted: ArrayLike, num_classes: int = NUM_CLASSES
) -> NDArray[np.int64]:
    """``(num_classes, num_classes)`` counts: rows the true class, columns the predicted."""
    true, guess = (torch.as_tensor(_array(x)).long() for x in (target, predicted))
    return multiclass_confusion_matrix(guess, true, num_classes).numpy()


def confusion_matrix(matrix: ArrayLike, title: str = "confusion matrix") -> Figure:
    """The confusion matrix ``matrix`` (rows: true class, columns: predicted), each cell
    with its count; colours on a log scale, so that the few mistakes show beside the many
    right answers on the diagonal."""
    counts = _array(matrix)
    n = len(counts)
    figure = new_figure(0.45 * n + 1.2, 0.45 * n + 1.0)
    ax = figure.subplots()
    ax.imshow(np.log1p(counts), cmap="Blues")
    bright = np.log1p(counts) > 0.6 * np.log1p(counts.max())
    for (i, j), count in np.ndenumerate(counts):
        colour = "white" if bright[i, j] else "black"
        ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=6, color=colour)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true")
    ax.set_title(f"{title} (accuracy {accuracy:.2%})", fontsize=9)
    return figure


def per_class_accuracy(matrices: Mapping[str, ArrayLike]) -> Figure:
    """Bars of each class's accuracy (recall), one bar per model, from each model's
    confusion matrix; the dashed lines are the models' overall accuracies."""
    figure = new_figure(7, 3)
    ax = figure.subplots()
    width = 0.8 / max(len(matrices), 1)
    lowest = 1.0
    for k, (name, matrix) in enumerate(matrices.items()):
        counts = _array(matrix).astype(float)
        accuracy = np.diag(counts) / np.maximum(counts.sum(axis=1), 1)
        overall = np.trace(counts) / max(counts.sum(), 1)
        positions = np.arange(len(counts)) + (k - (len(matrices) - 1) / 2) * width
        bars = ax.bar(positions, accuracy, width, label=f"{name} ({overall:.2%})")
        ax.axhline(overall, color=bars.patches[0].get_facecolor(), linestyle="--", lw=0.8)
        lowest = min(lowest, float(accuracy.min()))
    ax.set(xticks=range(len(counts)), xlabel="true class", ylabel="accuracy")
    ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
    ax.set_title("accuracy per class", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return figure


def confident_mistakes(
    images: ArrayLike,
    target: ArrayLike,
    predicted: ArrayLike,
    confidence: ArrayLike,
    count: int = 12,
    title: str | None = None,
) -> Figure:
    """The ``count`` wrong predictions made with the highest confidence, six to a row, each
    image titled ``true -> predicted`` and the confidence (the probability given to the
    predicted class). ``images`` are ``(N, H, W)`` or ``(N, 1, H, W)``, any scaling: each is
    shown on its own grey scale. The title defaults to the number of mistakes among the N."""
    true, guess, sure = _array(target), _array(predicted), _array(confidence)
    pictures = _array(images).reshape(len(true), *np.shape(images)[-2:])
    wrong = np.flatnonzero(true != guess)
    shown = wrong[np.argsort(-sure[wrong], kind="stable")][:count]
    columns = 6
    rows = max(1, math.ceil(len(shown) / columns))
    figure = new_figure(1.3 * columns, 1.5 * rows + 0.3)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown, strict=False):
        ax.imshow(pictures[i], cmap="gray_r")
        ax.set_title(f"{true[i]} → {guess[i]}, {sure[i]:.0%}", fontsize=8)
    title = title or f"most confident mistakes ({len(wrong)} of {len(true)} wrong)"
    figure.suptitle(title, fontsize=9)
    return figure


@dataclass(frozen=True)
class CalibrationBins:
    """Predictions sorted into equal-width confidence bins: per bin, the count, the sum of
    the confidences and the number right. Sums, so that the bins of several processes (or
    batches) combine by adding them."""

    count: NDArray[np.float64]
    confidence: NDArray[np.float64]
    correct: NDArray[np.float64]

    @classmethod
    def of(cls, confidence: ArrayLike, correct: ArrayLike, n_bins: int = 15) -> CalibrationBins:
        """Bin predictions by ``confidence`` (the top probability), ``correct`` 0 or 1."""
        sure, right = (
            torch.as_tensor(_array(x), dtype=torch.float64) for x in (confidence, correct)
        )
        return cls.from_tensor(reliability_bins(sure, right, n_bins))

    @classmethod
    def from_tensor(cls, bins: Any) -> CalibrationBins:
        """The bins of :func:`~mnist_lit.models.diagnostics.reliability_bins`: a ``(3, n_bins)``
        tensor of counts, confidence sums and numbers right."""
        count, confidence, correct = _array(bins).astype(float)
        return cls(count, confidence, correct)

    def __add__(self, other: CalibrationBins) -> CalibrationBins:
        return CalibrationBins(
            self.count + other.count,
            self.confidence + other.confidence,
            self.correct + other.correct,
        )

    @property
    def ece(self) -> float:
        """Expected calibration error: the gap between accuracy and confidence, averaged
        over the bins weighted by their counts."""
        gap = np.abs(self.correct - self.confidence).sum()
        return float(gap / max(self.count.sum(), 1))


def reliability_diagram(models: Mapping[str, CalibrationBins]) -> Figure:
    """Accuracy against confidence per confidence bin, for each model, with the expected
    calibration error (ECE) in the legend; below, the share of predictions in each bin.
    Points under the diagonal are overconfident, above it underconfident."""
    figure = new_figure(4.8, 5.2)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], "k:", lw=1, label="perfectly calibrated")
    for name, bins in models.items():
        seen = bins.count > 0
        confidence = bins.confidence[seen] / bins.count[seen]
        accuracy = bins.correct[seen] / bins.count[seen]
        (line,) = top.plot(
            confidence, accuracy, marker="o", ms=3, label=f"{name} (ECE {bins.ece:.3f})"
        )
        edges = np.linspace(0, 1, len(bins.count) + 1)
        bottom.stairs(bins.count / max(bins.count.sum(), 1), edges, color=line.get_color())
    top.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    top.set_title("reliability diagram", fontsize=9)
    top.legend(fontsize=7, loc="upper left")
    top.grid(alpha=0.3)
    bottom.set(xlabel="confidence (top probability)", ylabel="share", yscale="log")
    return figure


@dataclass(frozen=True)
class Panel:
    """One panel of :func:`learning_curves`: the column plotted, its title, its y scale."""

    column: str
    title: str
    scale: str = "linear"


def learning_curves(
    rows: Sequence[Mapping[str, Any]],
    panels: Sequence[Panel],
    group: str = "loss",
    title: str = "",
) -> Figure:
    """One panel per column against the epoch, one curve per value of ``group`` (in order of
    appearance): the mean over the rows that share the group and epoch (seeds, say), with a
    band of one standard deviation when there are several."""
    figure = new_figure(4 * len(panels), 3.6)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    groups = list(dict.fromkeys(row[group] for row in rows))
    for ax, panel in zip(axes, panels, strict=True):
        for name in groups:
            mine = [row for row in rows if row[group] == name]
            xs = sorted({float(row["epoch"]) for row in mine})
            series = [[float(r[panel.column]) for r in mine if float(r["epoch"]) == v] for v in xs]
            mean = np.array([statistics.mean(s) for s in series])
            std = np.array([statistics.stdev(s) if len(s) > 1 else 0.0 for s in series])
            ax.plot(xs, mean, marker="o", markersize=3, label=str(name))
            ax.fill_between(xs, mean - std, mean + std, alpha=0.25)
        ax.set_yscale(panel.scale)
        ax.set_xlabel("epoch (0 = initial weights)")
        ax.set_title(panel.title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def lr_finder_curve(lrs: ArrayLike, losses: ArrayLike, suggestion: float | None = None) -> Figure:
    """The training loss against the learning rate (log scale) of a learning-rate range
    test, with the suggested rate marked."""
    rates, values = _array(lrs).astype(float), _array(losses).astype(float)
    figure = new_figure(5.5, 3.6)
    ax = figure.subplots()
    ax.plot(rates, values, lw=1.2)
    if suggestion is not None:
        nearest = int(np.argmin(np.abs(rates - suggestion)))
        label = f"suggested: {suggestion:.3g}"
        ax.plot(rates[nearest], values[nearest], "o", ms=8, color="tab:red", label=label)
        ax.legend(fontsize=8)
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss (smoothed)")
    ax.set_title("learning-rate finder", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    return figure
