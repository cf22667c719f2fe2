"""The study's report: per network and loss, the tuned rate and the test metrics with
their intervals (the probability metrics temperature-scaled and raw); between losses,
paired tests and a verdict.

One loss is called better than another, in the direction of the mean accuracy
difference, only when two tests agree, each corrected (Holm) for every pair of the study
and below 0.05: the seed-level paired t-test on test accuracy (does the difference
survive a new training run?), and the exact McNemar test on the same 10,000 test images,
run on each seed and summarised by its median p-value over the seeds (does a typical
seed's difference survive a new test set?). Otherwise: "no significant difference".
"""

from __future__ import annotations

import csv
import io
import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_lit.runs.catalog import LEARNING_RATE, LOSSES, NETWORKS
from mnist_lit.study.folder import SeedResult, StudyFolder, TuningResult, write_atomically
from mnist_lit.study.plots import accuracy_intervals, rate_sensitivity
from mnist_lit.study.stats import holm, mcnemar_exact, paired_t_test, t_interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mnist_lit.study.schedule import NetworkAndLoss

ALPHA = 0.05
RESULT_COLUMNS = [f.name for f in fields(SeedResult) if f.name != "val_acc"]


@dataclass(frozen=True)
class Comparison:
    """Two losses on one network: the tests and the verdict."""

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

    @property
    def verdict(self) -> str:
        if max(self.mcnemar_p_holm, self.t_test_p_holm) >= ALPHA or not self.mean_difference:
            return "no significant difference"
        better = self.loss_a if self.mean_difference > 0 else self.loss_b
        return f"{LOSSES[better].label} better"


def write_report(folder: StudyFolder, pairs: Sequence[NetworkAndLoss], kind: str) -> None:
    """Write each pair's ``best.yaml``, the CSVs, the pictures and ``summary.md``; print
    the summary."""
    results = [pair.tested[seed] for pair in pairs for seed in pair.seeds]
    trials = [pair.tuning[f.lr, f.round] for pair in pairs for f in pair.tuning_fits()]
    for pair in pairs:
        folder.write_best_config(pair.best())
    labels = np.load(folder.test_labels)
    correct = {(r.network, r.loss, r.seed): folder.predictions(r) == labels for r in results}
    comparisons = compare_losses(pairs, correct)
    root = folder.root
    rows = [
        [*(getattr(r, name) for name in RESULT_COLUMNS), " ".join(f"{v:.4f}" for v in r.val_acc)]
        for r in results
    ]
    _write_csv(root / "results.csv", [*RESULT_COLUMNS, "val_acc"], rows)
    names = [f.name for f in fields(Comparison)]
    rows = [[*(getattr(c, n) for n in names), c.verdict] for c in comparisons]
    _write_csv(root / "comparisons.csv", [*names, "verdict"], rows)
    _write_csv(root / "tuning_trials.csv", TUNING_COLUMNS, _tuning_rows(trials))
    _write_png(root / "rate_sensitivity.png", rate_sensitivity(trials))
    _write_png(root / "accuracy.png", accuracy_intervals(results))
    recorded = sum(r.seconds for r in results) + sum(t.seconds for t in trials)
    title = f"The loss {kind}: tuned learning rates, {len({r.seed for r in results})} seeds"
    text = summary_markdown(results, comparisons, title, trials)
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
    pairs: Sequence[NetworkAndLoss], correct: Mapping[tuple[str, str, int], Sequence[bool]]
) -> list[Comparison]:
    """Every two losses of a network, paired by seed, with Holm's correction over all of
    them; ``correct`` says which test images each network, loss and seed gets right."""
    comparisons = []
    for a, b in itertools.combinations(pairs, 2):
        if a.network != b.network:
            continue
        seeds = sorted(a.seeds)
        acc_a = [a.tested[s].test_acc for s in seeds]
        acc_b = [b.tested[s].test_acc for s in seeds]
        tests = [
            mcnemar_exact(correct[a.network, a.loss, s], correct[b.network, b.loss, s])
            for s in seeds
        ]
        comparison = Comparison(
            a.network,
            a.loss,
            b.loss,
            mean_difference=statistics.fmean(acc_a) - statistics.fmean(acc_b),
            only_a=sum(t.only_a for t in tests),
            only_b=sum(t.only_b for t in tests),
            mcnemar_p=statistics.median(t.p_value for t in tests),
            t_test_p=paired_t_test(acc_a, acc_b),
        )
        comparisons.append(comparison)
    mcnemar = holm([c.mcnemar_p for c in comparisons])
    t_test = holm([c.t_test_p for c in comparisons])
    return [
        replace(c, mcnemar_p_holm=m, t_test_p_holm=t)
        for c, m, t in zip(comparisons, mcnemar, t_test, strict=True)
    ]


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
) -> str:
    """The Markdown report: per network, a table of the losses, one of their pairs, and
    one of how each loss's rate was chosen (from the tuning's fits)."""
    lines = [f"# {title}", ""]
    for network in dict.fromkeys(r.network for r in results):
        entry = NETWORKS[network]
        lines += [f"## {network}: {entry.label} (configs/{entry.config})", ""]
        lines += loss_table([r for r in results if r.network == network])
        lines += ["", *pair_table([c for c in comparisons if c.network == network]), ""]
        mine = [r for r in results if r.network == network and r.seed == results[0].seed]
        lines += [*tuning_table(mine, [t for t in trials if t.network == network]), ""]
    lines.append(
        f"Holm's correction runs over all {len(comparisons)} pairs of the study, for each "
        f"test; a loss is called better when both adjusted p-values are below {ALPHA}."
    )
    return "\n".join(lines)


def loss_table(rows: Sequence[SeedResult]) -> list[str]:
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
            f"| {LOSSES[loss].label} | {runs[0].lr:.3g} | "
            f"{_interval([r.test_acc for r in runs], 100, '.2f')}{note} | "
            f"{' | '.join(scaled_and_raw)} | "
            f"{_interval([r.temperature for r in runs], 1, '.3f')} | {_epochs(runs)} |"
        )
    n_seeds = len({r.seed for r in rows})
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
            f"| {LOSSES[c.loss_a].label} vs {LOSSES[c.loss_b].label} "
            f"| {100 * c.mean_difference:+.2f} | {c.only_a} / {c.only_b} | "
            f"{_p(c.mcnemar_p)} ({_p(c.mcnemar_p_holm)}) | {_p(c.t_test_p)} "
            f"({_p(c.t_test_p_holm)}) | {c.verdict} |"
        )
    return lines


def tuning_table(chosen: Sequence[SeedResult], trials: Sequence[TuningResult]) -> list[str]:
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
            f"| {LOSSES[result.loss].label} | {tried[0]:.3g} to {tried[-1]:.3g} ({len(tried)}) "
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
