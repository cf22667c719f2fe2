"""The study's pictures: its results in, a matplotlib ``Figure`` out; no study logic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from matplotlib.figure import Figure

from mnist_lit.runs.figures import new_figure
from mnist_lit.study.folder import SeedResult, TuningResult
from mnist_lit.study.stats import t_interval

Result = TypeVar("Result", TuningResult, SeedResult)


def _by_network(
    results: Sequence[Result], labels: Mapping[str, str]
) -> dict[str, dict[str, list[Result]]]:
    """``results`` by network, then by loss (its label), in the order they come."""
    grouped: dict[str, dict[str, list[Result]]] = {}
    for r in results:
        grouped.setdefault(r.network, {}).setdefault(labels[r.loss], []).append(r)
    return grouped


def _panels(count: int, width: float = 4.6) -> tuple[Figure, list]:
    figure = new_figure(width * count, 3.8)
    axes = figure.subplots(1, count, squeeze=False)[0]
    return figure, list(axes)


def rate_sensitivity(trials: Sequence[TuningResult], labels: Mapping[str, str]) -> Figure:
    """Validation accuracy against learning rate (log axis) per loss, a panel per network.

    The trials of a round that did not diverge are joined by a line in order of rate,
    dotted for the first round and solid for the last; diverged ones are crosses at 0.
    """
    by_network = _by_network(trials, labels)
    figure, axes = _panels(len(by_network))
    for ax, (network, by_loss) in zip(axes, by_network.items(), strict=True):
        last = max(t.round for mine in by_loss.values() for t in mine)
        for index, (loss, mine) in enumerate(by_loss.items()):
            color = f"C{index}"
            for k in sorted({t.round for t in mine}):
                done = sorted((t.lr, t.value) for t in mine if t.value and t.round == k)
                if done:
                    style = "o-" if k == last else "o:"
                    label = loss if k == last else None
                    alpha = 1.0 if k == last else 0.35 + 0.3 * k / max(last, 1)
                    xy = zip(*done, strict=True)
                    ax.plot(*xy, style, color=color, label=label, markersize=4, alpha=alpha)
            diverged = [t.lr for t in mine if t.value is None]
            if diverged:
                ax.scatter(diverged, [0.0] * len(diverged), marker="x", color=color, s=22)
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


def accuracy_intervals(results: Sequence[SeedResult], labels: Mapping[str, str]) -> Figure:
    """Test accuracy (%) with its 95% interval per loss, a panel per network."""
    by_network = _by_network(results, labels)
    figure, axes = _panels(len(by_network), width=4.0)
    for ax, (network, by_loss) in zip(axes, by_network.items(), strict=True):
        for index, runs in enumerate(by_loss.values()):
            value = t_interval([r.test_acc for r in runs])
            error = [[100 * (value.mean - value.low)], [100 * (value.high - value.mean)]]
            ax.errorbar(
                [index], [100 * value.mean], yerr=error, fmt="o", color=f"C{index}", capsize=4
            )
        ax.set_xticks(range(len(by_loss)), list(by_loss), rotation=25, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(by_loss) - 0.5)
        ax.set_title(network, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("test accuracy (%), 95% interval")
    return figure
