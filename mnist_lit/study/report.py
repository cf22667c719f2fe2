"""The study's report: per network and loss, the tuned rate and the test metrics with
their intervals (the probability metrics temperature-scaled and raw); between losses,
paired tests on every yardstick, the best loss on each, and verdicts said from them.

The yardsticks: test accuracy, and the probabilities' test cross-entropy (NLL), Brier
score and expected calibration error (ECE), each raw and after temperature scaling (which
changes no prediction, so accuracy has no scaled twin). NLL is cross-entropy's own proper
scoring rule; the Brier score is the quadratic cost's (the quadratic cost is the Brier
score / 10).

One loss is called better than another on accuracy, in the direction of the mean
difference, only when two tests agree, each corrected (Holm) and below 0.05: the
seed-level paired t-test on test accuracy (does the difference survive a new training
run?), and the exact McNemar test on the same 10,000 test images, run on each seed and
summarised by its median p-value over the seeds (does a typical seed's difference survive
a new test set?). On a probability yardstick, by the paired t-test over seeds, corrected.
Holm's correction runs over every test the study makes: every pair of every network, the
negative control's included, on every yardstick. Otherwise: "no significant difference".
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_lit.runs.catalog import LEARNING_RATE
from mnist_lit.study.folder import SeedResult, StudyFolder, TuningResult, write_atomically
from mnist_lit.study.plan import Plan
from mnist_lit.study.plots import accuracy_intervals, rate_sensitivity
from mnist_lit.study.stats import holm, mcnemar_exact, paired_t_test, t_interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mnist_lit.study.schedule import NetworkAndLoss

ALPHA = 0.05
RESULT_COLUMNS = [f.name for f in fields(SeedResult) if f.name != "val_acc"]
NO_DIFFERENCE = "no significant difference"


@dataclass(frozen=True)
class Yardstick:
    """A test metric losses are judged on: its column in results.csv, its name here."""

    column: str
    label: str
    higher_is_better: bool = False


ACCURACY = Yardstick("test_acc", "accuracy", higher_is_better=True)
# The probabilities' yardsticks, each raw and temperature-scaled.
PROBABILITY = tuple(
    Yardstick(f"test_{name}{suffix}", f"{label}{words}")
    for name, label in (("ce", "NLL"), ("brier", "Brier"), ("ece", "ECE"))
    for suffix, words in (("", ", raw"), ("_scaled", ", scaled"))
)
YARDSTICKS = (ACCURACY, *PROBABILITY)


@dataclass(frozen=True)
class MetricTest:
    """A probability yardstick's paired t-test over seeds of one pair."""

    difference: float  # A minus B, mean over seeds
    p: float
    p_holm: float = 1.0


@dataclass(frozen=True)
class Comparison:
    """Two losses on one network: the tests and the verdicts."""

    network: str
    loss_a: str
    loss_b: str
    mean_difference: float  # accuracy of A minus B, mean over seeds
    only_a: int  # test images A alone gets right, summed over seeds
    only_b: int
    mcnemar_p: float  # median over seeds of the exact McNemar p-value
    t_test_p: float
    mcnemar_p_holm: float = 1.0
    t_test_p_holm: float = 1.0
    label_a: str = ""
    label_b: str = ""
    metrics: dict[str, MetricTest] = field(default_factory=dict)  # by yardstick column

    def better(self, yardstick: Yardstick) -> str | None:
        """The loss significantly better on ``yardstick``, if either is."""
        if yardstick == ACCURACY:
            difference = self.mean_difference
            significant = max(self.mcnemar_p_holm, self.t_test_p_holm) < ALPHA
        else:
            test = self.metrics[yardstick.column]
            difference, significant = test.difference, test.p_holm < ALPHA
        if not significant or not difference or math.isnan(difference):
            return None
        return self.loss_a if (difference > 0) == yardstick.higher_is_better else self.loss_b

    def verdict_on(self, yardstick: Yardstick) -> str:
        better = self.better(yardstick)
        if better is None:
            return NO_DIFFERENCE
        return f"{self.label_a if better == self.loss_a else self.label_b} better"

    @property
    def verdict(self) -> str:
        return self.verdict_on(ACCURACY)

    def holm_values(self) -> list[float]:
        return [self.mcnemar_p, self.t_test_p, *(t.p for t in self.metrics.values())]

    def adjusted(self, values: Sequence[float]) -> Comparison:
        """This comparison with ``values`` (as :meth:`holm_values` orders them) adjusted."""
        metrics = {
            name: replace(test, p_holm=p)
            for (name, test), p in zip(self.metrics.items(), values[2:], strict=True)
        }
        return replace(self, mcnemar_p_holm=values[0], t_test_p_holm=values[1], metrics=metrics)


COMPARISON_COLUMNS = [f.name for f in fields(Comparison) if f.name != "metrics"]


def _comparison_row(c: Comparison) -> list[object]:
    row: list[object] = [*(getattr(c, name) for name in COMPARISON_COLUMNS), c.verdict]
    for yardstick in PROBABILITY:
        test = c.metrics[yardstick.column]
        row += [test.difference, test.p, test.p_holm, c.verdict_on(yardstick)]
    return row


def _comparison_header() -> list[str]:
    header = [*COMPARISON_COLUMNS, "verdict"]
    for y in PROBABILITY:
        header += [f"{y.column}_{part}" for part in ("difference", "p", "p_holm", "verdict")]
    return header


def write_report(
    folder: StudyFolder, pairs: Sequence[NetworkAndLoss], kind: str, plan: Plan
) -> None:
    """Write each pair's ``best.yaml``, the CSVs, the pictures and ``summary.md``; print
    the summary."""
    results = [pair.tested[seed] for pair in pairs for seed in pair.seeds]
    trials = [pair.tuning[f.lr, f.round] for pair in pairs for f in pair.tuning_fits()]
    for pair in pairs:
        if plan.loss(pair.loss).control_of is None:
            folder.write_best_config(pair.best())
    labels = np.load(folder.test_labels)
    correct = {(r.network, r.loss, r.seed): folder.predictions(r) == labels for r in results}
    comparisons = compare_losses(pairs, correct, plan)
    root = folder.root
    rows = [
        [*(getattr(r, name) for name in RESULT_COLUMNS), " ".join(f"{v:.4f}" for v in r.val_acc)]
        for r in results
    ]
    _write_csv(root / "results.csv", [*RESULT_COLUMNS, "val_acc"], rows)
    rows = [_comparison_row(c) for c in comparisons]
    _write_csv(root / "comparisons.csv", _comparison_header(), rows)
    _write_csv(root / "tuning_trials.csv", TUNING_COLUMNS, _tuning_rows(trials))
    names = {loss.name: loss.label for loss in plan.all_losses()}
    _write_png(root / "rate_sensitivity.png", rate_sensitivity(trials, names))
    _write_png(root / "accuracy.png", accuracy_intervals(results, names))
    recorded = sum(r.seconds for r in results) + sum(t.seconds for t in trials)
    title = f"The loss {kind}: tuned learning rates, {len(plan.budget.seeds)} seeds"
    text = summary_markdown(results, comparisons, title, trials, plan)
    text += (
        f"\n\nTraining time recorded: {recorded / 60:.1f} min (tuning and seeds); wall time: "
        f"{folder.wall_time()}.\n"
    )
    write_atomically(root / "summary.md", text.encode())
    print("\n" + text)
    print(
        f"wrote {root}/results.csv, comparisons.csv, tuning_trials.csv, summary.md, "
        "rate_sensitivity.png, accuracy.png"
    )


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    write_atomically(path, text.getvalue().encode())


def _write_png(path: Path, figure: Figure) -> None:
    picture = io.BytesIO()
    figure.savefig(picture, format="png", dpi=80)
    write_atomically(path, picture.getvalue())


def compare_losses(
    pairs: Sequence[NetworkAndLoss],
    correct: Mapping[tuple[str, str, int], Sequence[bool]],
    plan: Plan,
) -> list[Comparison]:
    """Every two losses of a network, and each control with its loss, paired by seed (the
    n-th seed of one with the n-th of the other), with Holm's correction over every test of
    every comparison; ``correct`` says which test images each network, loss and seed gets
    right."""
    comparisons = []
    for a, b in itertools.combinations(pairs, 2):
        control = plan.loss(b.loss).control_of
        if a.network == b.network and control in (None, a.loss):
            comparisons.append(_compare(a, b, correct, plan))
    adjusted = iter(holm([_finite(p) for c in comparisons for p in c.holm_values()]))
    return [c.adjusted([next(adjusted) for _ in c.holm_values()]) for c in comparisons]


def _finite(p: float) -> float:
    """A p-value, or 1 where there was nothing to test (a diverged run's NaN)."""
    return 1.0 if math.isnan(p) else p


def _compare(
    a: NetworkAndLoss,
    b: NetworkAndLoss,
    correct: Mapping[tuple[str, str, int], Sequence[bool]],
    plan: Plan,
) -> Comparison:
    runs_a = [a.tested[s] for s in sorted(a.seeds)]
    runs_b = [b.tested[s] for s in sorted(b.seeds)]
    tests = [
        mcnemar_exact(correct[a.network, a.loss, x.seed], correct[b.network, b.loss, y.seed])
        for x, y in zip(runs_a, runs_b, strict=True)
    ]
    metrics = {}
    for yardstick in YARDSTICKS:
        values_a = [float(getattr(r, yardstick.column)) for r in runs_a]
        values_b = [float(getattr(r, yardstick.column)) for r in runs_b]
        difference = statistics.fmean(values_a) - statistics.fmean(values_b)
        metrics[yardstick.column] = MetricTest(difference, paired_t_test(values_a, values_b))
    accuracy = metrics.pop(ACCURACY.column)
    return Comparison(
        a.network,
        a.loss,
        b.loss,
        mean_difference=accuracy.difference,
        only_a=sum(t.only_a for t in tests),
        only_b=sum(t.only_b for t in tests),
        mcnemar_p=statistics.median(t.p_value for t in tests),
        t_test_p=accuracy.p,
        label_a=plan.loss(a.loss).label,
        label_b=plan.loss(b.loss).label,
        metrics=metrics,
    )


def _interval(values: Sequence[float], scale: float, spec: str) -> str:
    interval = t_interval(values)
    return f"{interval.mean * scale:{spec}} ± {interval.half_width * scale:{spec}}"


def _p(value: float) -> str:
    """A p-value for reading: three significant digits, tiny ones as a bound.

    >>> _p(0.01234), _p(3e-9)
    ('0.0123', '<0.0001')
    """
    return "<0.0001" if value < 1e-4 else f"{value:.3g}"


def _epochs(results: Sequence[SeedResult]) -> str:
    reached = [r.epochs_to_threshold for r in results if r.epochs_to_threshold is not None]
    if not reached:
        return f"not within {len(results[0].val_acc)}"
    share = "" if len(reached) == len(results) else f" ({len(reached)}/{len(results)} seeds)"
    return f"{statistics.fmean(reached):.1f}{share}"


def summary_markdown(
    results: Sequence[SeedResult],
    comparisons: Sequence[Comparison],
    title: str,
    trials: Sequence[TuningResult],
    plan: Plan,
) -> str:
    """The Markdown report: per network, the verdicts, the best loss on each yardstick, a
    table of the losses, two of their pairs, and one of how each loss's rate was chosen
    (from the tuning's fits)."""
    labels = {loss.name: loss.label for loss in plan.all_losses()}
    lines = [f"# {title}", "", *answer_table(results, comparisons, plan), ""]
    for network in plan.networks:
        mine = [r for r in results if r.network == network.name]
        if not mine:
            continue
        versus = [c for c in comparisons if c.network == network.name]
        best = best_losses(mine, versus, plan)
        lines += [f"## {network.name}: {network.label}", ""]
        lines += [*verdicts(best, versus, plan), "", *best_table(best, labels), ""]
        lines += loss_table(mine, labels)
        lines += ["", *pair_table(versus), "", *probability_table(versus), ""]
        chosen = [r for r in mine if r.seed == plan.budget.seeds[0]]
        tuned = [t for t in trials if t.network == network.name]
        lines += [*tuning_table(chosen, tuned, labels), ""]
    tests = sum(len(c.holm_values()) for c in comparisons)
    lines.append(
        f"Holm's correction runs over all {tests} tests of the study: its {len(comparisons)} "
        "pairs (the negative control's included), each tested on accuracy by McNemar's test "
        f"and the paired t-test, and on each of the {len(PROBABILITY)} probability "
        "yardsticks by the paired t-test over seeds. A loss is called better on accuracy "
        f"when both adjusted p-values are below {ALPHA}, on another yardstick when its "
        "t-test's is."
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Best:
    """The loss of the best mean on one yardstick of one network, and where it stands."""

    yardstick: Yardstick
    loss: str
    mean: float
    beaten: tuple[str, ...]  # the losses it is significantly better than
    level: tuple[str, ...]  # those it is not
    others: tuple[tuple[str, str], ...]  # other significant pairs: (better, worse)


def best_losses(
    results: Sequence[SeedResult], comparisons: Sequence[Comparison], plan: Plan
) -> list[Best]:
    """Per yardstick, the best of the losses of one network (the control aside)."""
    losses = [loss.name for loss in plan.losses if any(r.loss == loss.name for r in results)]
    versus = {frozenset((c.loss_a, c.loss_b)): c for c in comparisons if c.loss_b in losses}
    found = []
    for yardstick in YARDSTICKS:
        means = {
            loss: statistics.fmean(getattr(r, yardstick.column) for r in results if r.loss == loss)
            for loss in losses
        }
        sign = -1 if yardstick.higher_is_better else 1
        best = min(losses, key=lambda loss: (math.isnan(means[loss]), sign * means[loss]))
        rest = [loss for loss in losses if loss != best]
        beaten = tuple(x for x in rest if versus[frozenset((best, x))].better(yardstick) == best)
        others = []
        for c in versus.values():
            winner = c.better(yardstick)
            if winner is not None and best not in (c.loss_a, c.loss_b):
                others.append((winner, c.loss_b if winner == c.loss_a else c.loss_a))
        level = tuple(x for x in rest if x not in beaten)
        found.append(Best(yardstick, best, means[best], beaten, level, tuple(others)))
    return found


def answer_table(
    results: Sequence[SeedResult], comparisons: Sequence[Comparison], plan: Plan
) -> list[str]:
    """The study's answer at a glance: per yardstick and network, the loss of the best mean
    and whom it beats significantly, and the negative control's reading."""
    labels = {loss.name: loss.label for loss in plan.all_losses()}
    networks = [n for n in plan.networks if any(r.network == n.name for r in results)]
    columns: list[list[str]] = []
    controls: list[str] = []
    for network in networks:
        versus = [c for c in comparisons if c.network == network.name]
        mine = [r for r in results if r.network == network.name]
        columns.append(
            [
                f"{labels[b.loss]}, {_value(b.yardstick, b.mean)} "
                f"({'better than ' + _names(b.beaten, labels) if b.beaten else 'level with all'})"
                for b in best_losses(mine, versus, plan)
            ]
        )
        found = [y for c in versus if _is_control(c, plan) for y in _differences(c)]
        controls.append(
            ("differs on " + ", ".join(found)) if found else "no significant difference"
        )
    lines = [
        "| yardstick (best mean; significantly better than) | "
        + " | ".join(n.name for n in networks)
        + " |",
        "|---" * (len(networks) + 1) + "|",
    ]
    for i, yardstick in enumerate(YARDSTICKS):
        lines.append(f"| {yardstick.label} | " + " | ".join(c[i] for c in columns) + " |")
    if plan.control_seeds:
        lines.append("| negative control | " + " | ".join(controls) + " |")
    return lines


def _is_control(comparison: Comparison, plan: Plan) -> bool:
    """Whether ``comparison`` is the negative control's: the first loss against itself."""
    return plan.loss(comparison.loss_b).control_of is not None


def _differences(comparison: Comparison) -> list[str]:
    """The yardsticks on which ``comparison`` finds a significant difference."""
    return [y.label for y in YARDSTICKS if comparison.better(y) is not None]


def _names(losses: Iterable[str], labels: Mapping[str, str]) -> str:
    return ", ".join(labels[loss] for loss in losses)


def _value(yardstick: Yardstick, value: float) -> str:
    return f"{100 * value:.2f}%" if yardstick == ACCURACY else f"{value:.3f}"


def verdicts(best: Sequence[Best], comparisons: Sequence[Comparison], plan: Plan) -> list[str]:
    """The verdicts of one network, said from its tests: per yardstick the best loss and
    whom it beats significantly, the yardsticks without any significant difference, and
    the negative control's reading."""
    labels = {loss.name: loss.label for loss in plan.all_losses()}
    lines = []
    level = []
    for b in best:
        if not b.beaten and not b.level:  # one loss alone: nothing to compare it with
            continue
        if not b.beaten and not b.others:
            level.append(b.yardstick.label)
            continue
        others = "; ".join(f"{labels[x]} better than {labels[y]}" for x, y in b.others)
        if b.beaten:
            also = f"; also {others}" if others else ""
            lines.append(
                f"- {labels[b.loss]} is best on {b.yardstick.label} (significantly better "
                f"than {_names(b.beaten, labels)}){also}."
            )
        else:  # the best mean, level with the others; differences only among them
            lines.append(
                f"- {labels[b.loss]} has the best mean on {b.yardstick.label}, significantly "
                f"better than none of the others; {others}."
            )
    if level:
        lines.append(f"- No significant difference on {'; '.join(level)}.")
    for c in comparisons:
        if not _is_control(c, plan):
            continue
        seeds = ", ".join(map(str, plan.control_seeds))
        found = _differences(c)
        if found:
            reading = (
                f"a significant difference on {'; '.join(found)}: the tests find "
                "differences between two runs of the same loss, so read the verdicts above "
                "with care."
            )
        else:
            reading = (
                "no significant difference on any yardstick, as expected of the same loss: "
                "the protocol is not too eager."
            )
        lines.append(
            f"- Negative control: {c.label_a} trained again on seeds {seeds} at its tuned "
            f"rate, against itself: {reading}"
        )
    return lines


def best_table(best: Sequence[Best], labels: Mapping[str, str]) -> list[str]:
    """Which loss is best on each yardstick (by its mean over the seeds), and against whom
    that holds."""
    lines = [
        "| yardstick | best (mean over seeds) | significantly better than | no significant "
        "difference from |",
        "|---|---|---|---|",
    ]
    for b in best:
        lines.append(
            f"| {b.yardstick.label} | {labels[b.loss]} ({_value(b.yardstick, b.mean)}) | "
            f"{_names(b.beaten, labels) or '-'} | {_names(b.level, labels) or '-'} |"
        )
    return lines


def loss_table(rows: Sequence[SeedResult], labels: Mapping[str, str]) -> list[str]:
    """One line per loss of one network: tuned rate and test metrics over the seeds, the
    probability metrics temperature-scaled with the raw ones beside them."""
    lines = [
        f"| loss | tuned {LEARNING_RATE} | test accuracy (%) | test cross-entropy, scaled "
        "(raw) | test ECE, scaled (raw) | test Brier, scaled (raw) | temperature "
        f"| epochs to {rows[0].threshold:.0%} val. acc. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loss in dict.fromkeys(r.loss for r in rows):
        runs = [r for r in rows if r.loss == loss]
        diverged = sum(r.diverged for r in runs)
        note = f" ({diverged} diverged)" if diverged else ""
        scaled_and_raw = [
            f"{_interval([getattr(r, f'{name}_scaled') for r in runs], 1, '.3f')} "
            f"({_interval([getattr(r, name) for r in runs], 1, '.3f')})"
            for name in ("test_ce", "test_ece", "test_brier")
        ]
        lines.append(
            f"| {labels[loss]} | {runs[0].lr:.3g} | "
            f"{_interval([r.test_acc for r in runs], 100, '.2f')}{note} | "
            f"{' | '.join(scaled_and_raw)} | "
            f"{_interval([r.temperature for r in runs], 1, '.3f')} | {_epochs(runs)} |"
        )
    n_seeds = len({r.seed for r in rows if r.loss == rows[0].loss})
    return [
        *lines,
        "",
        f"Mean ± half-width of the 95% t-interval over {n_seeds} seeds. Scaled: the logits "
        "divided by the temperature fitted on the validation split (the cross-entropy there "
        "least); it changes no prediction.",
    ]


def pair_table(comparisons: Sequence[Comparison]) -> list[str]:
    """One line per pair of losses of one network: the tests and the verdict."""
    lines = [
        "| pair (A vs B) | A - B (pp) | test images only A / only B right (all seeds) | "
        "McNemar p (median over seeds, Holm) | paired t-test p (Holm) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.label_a} vs {c.label_b} "
            f"| {100 * c.mean_difference:+.2f} | {c.only_a} / {c.only_b} | "
            f"{_p(c.mcnemar_p)} ({_p(c.mcnemar_p_holm)}) | {_p(c.t_test_p)} "
            f"({_p(c.t_test_p_holm)}) | {c.verdict} |"
        )
    return lines


def probability_table(comparisons: Sequence[Comparison]) -> list[str]:
    """One line per pair of losses of one network: on each probability yardstick, the mean
    difference and its paired t-test's Holm-adjusted p-value (bold where significant)."""
    lines = [
        "| pair (A vs B) | " + " | ".join(f"{y.label}: A - B (Holm p)" for y in PROBABILITY) + " |",
        "|---" * (len(PROBABILITY) + 1) + "|",
    ]
    for c in comparisons:
        cells = []
        for y in PROBABILITY:
            test = c.metrics[y.column]
            cell = f"{test.difference:+.3g} ({_p(test.p_holm)})"
            cells.append(f"**{cell}**" if c.better(y) else cell)
        lines.append(f"| {c.label_a} vs {c.label_b} | {' | '.join(cells)} |")
    return [
        *lines,
        "",
        "Lower is better on each; the paired t-test over seeds, Holm-adjusted (the study "
        "keeps each test image's prediction, not its probabilities, so no per-image test).",
    ]


def tuning_table(
    chosen: Sequence[SeedResult], trials: Sequence[TuningResult], labels: Mapping[str, str]
) -> list[str]:
    """One line per loss of one network: the rates of round 0, the finalists of the last
    round with their validation accuracy, the rate chosen, and whether it lies inside the
    rates tried (``chosen``: one result per loss, for its rate)."""
    rounds = sorted({t.round for t in trials})
    epochs = [str(next(t.epochs for t in trials if t.round == k)) for k in rounds]
    lines = [
        f"Rates chosen by successive halving over rounds of {', '.join(epochs)} "
        f"epoch{'s' * (epochs != ['1'])} (validation accuracy, best epoch of the round):",
        "",
        f"| loss | rates tried | finalists at {epochs[-1]} epoch{'s' * (epochs[-1] != '1')} "
        "| chosen | inside the rates tried |",
        "|---|---|---|---|---|",
    ]
    for result in chosen:
        mine = [t for t in trials if t.loss == result.loss]
        tried = sorted({t.lr for t in mine})
        finalists = sorted((t.lr, t.value) for t in mine if t.round == rounds[-1])
        shown = ", ".join(
            f"{lr:.3g}: {100 * v:.2f}%" if v is not None else f"{lr:.3g}: diverged"
            for lr, v in finalists
        )
        inside = "yes" if tried[0] < result.lr < tried[-1] else "**no, at the edge**"
        lines.append(
            f"| {labels[result.loss]} | {tried[0]:.3g} to {tried[-1]:.3g} ({len(tried)}) "
            f"| {shown} | {result.lr:.3g} | {inside} |"
        )
    return lines


TUNING_COLUMNS = ("network", "loss", "number", "round", "lr", "state", "value", "last_val_acc",
                  "epochs", "seconds")  # fmt: skip


def _tuning_rows(trials: Sequence[TuningResult]) -> list[list[object]]:
    """One row per tuning fit, numbered per network and loss in the order the rounds
    called for them; ``epochs`` counts those it trained (fewer than its round's when it
    diverged)."""
    numbers: dict[tuple[str, str], int] = {}
    rows = []
    for t in trials:
        number = numbers[t.network, t.loss] = numbers.get((t.network, t.loss), -1) + 1
        fit = [t.network, t.loss, number, t.round, t.lr]
        state = "diverged" if t.diverged else "complete"
        value = "" if t.value is None else t.value
        last = f"{t.val_acc[-1]:.4f}" if t.val_acc else ""
        rows.append([*fit, state, value, last, len(t.val_acc), t.seconds])
    return rows
