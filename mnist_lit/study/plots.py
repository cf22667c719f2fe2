"""The study's pictures: plain data in, a matplotlib ``Figure`` out; no study logic.

- :func:`rate_sensitivity`: validation accuracy against learning rate, one colour per
  loss, one line per round of the tuning, one panel per network (from the tuning trials).
- :func:`accuracy_intervals`: test accuracy with its confidence interval, one marker per
  loss, one panel per network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from matplotlib.figure import Figure

from mnist_lit.figures import new_figure
from mnist_lit.study.stats import Interval


class RatePoint(NamedTuple):
    """One tuning trial: its rate, its (last) validation accuracy, how it ended
    (``"complete"``, ``"pruned"`` or ``"diverged"``; accuracy ``None`` if never measured),
    and its round (0: every rate, shortest)."""

    lr: float
    acc: float | None
    state: str
    round: int = 0


def _panels(count: int, width: float = 4.6) -> tuple[Figure, list]:
    figure = new_figure(width * count, 3.8)
    axes = figure.subplots(1, count, squeeze=False)[0]
    return figure, list(axes)


def rate_sensitivity(
    points: Mapping[str, Mapping[str, Sequence[RatePoint]]], floor: float = 0.0
) -> Figure:
    """Validation accuracy against learning rate (log axis) per loss, a panel per network.

    The complete trials of a round are joined by a line in order of rate, dotted for the
    first round and solid for the last; pruned trials are hollow markers at their last
    measured accuracy; diverged ones are crosses at ``floor``.
    """
    figure, axes = _panels(len(points))
    for ax, (network, by_loss) in zip(axes, points.items(), strict=True):
        last = max(p.round for trials in by_loss.values() for p in trials)
        for index, (loss, trials) in enumerate(by_loss.items()):
            color = f"C{index}"
            for k in sorted({p.round for p in trials}):
                done = sorted(
                    (p.lr, p.acc)
                    for p in trials
                    if p.state == "complete" and p.acc and p.round == k
                )
                if done:
                    style = "o-" if k == last else "o:"
                    label = loss if k == last else None
                    alpha = 1.0 if k == last else 0.35 + 0.3 * k / max(last, 1)
                    xy = zip(*done, strict=True)
                    ax.plot(*xy, style, color=color, label=label, markersize=4, alpha=alpha)
            pruned = [(p.lr, p.acc) for p in trials if p.state == "pruned" and p.acc is not None]
            if pruned:
                ax.scatter(*zip(*pruned, strict=True), facecolors="none", edgecolors=color, s=22)
            diverged = [p.lr for p in trials if p.state == "diverged"]
            if diverged:
                ax.scatter(diverged, [floor] * len(diverged), marker="x", color=color, s=22)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_title(network, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("best validation accuracy")
    axes[0].legend(fontsize=8)
    figure.suptitle(
        "Tuning: dotted = early rounds, solid = finalists at full length, x = diverged",
        fontsize=9,
    )
    return figure


def accuracy_intervals(intervals: Mapping[str, Mapping[str, Interval]]) -> Figure:
    """Test accuracy (%) with its 95% interval per loss, a panel per network."""
    figure, axes = _panels(len(intervals), width=4.0)
    for ax, (network, by_loss) in zip(axes, intervals.items(), strict=True):
        names = list(by_loss)
        for index, name in enumerate(names):
            value = by_loss[name]
            error = [[100 * (value.mean - value.low)], [100 * (value.high - value.mean)]]
            ax.errorbar(
                [index], [100 * value.mean], yerr=error, fmt="o", color=f"C{index}", capsize=4
            )
        ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(network, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("test accuracy (%), 95% interval")
    return figure
