"""The study's report on made-up results (no training): every yardstick tested, one Holm
family over every test of the study, the best loss on each yardstick, and the verdicts and
the negative control's reading said from the tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mnist_lit.study.folder import SeedResult
from mnist_lit.study.plan import make_plan
from mnist_lit.study.report import (
    ACCURACY,
    PROBABILITY,
    YARDSTICKS,
    answer_table,
    best_losses,
    best_table,
    compare_losses,
    verdicts,
)
from mnist_lit.study.stats import holm

SEEDS = (0, 1, 2, 3, 4)
CONTROL_SEEDS = (5, 6, 7, 8, 9)
IMAGES = 200


def _result(loss: str, seed: int, acc: float, brier: float, jitter: float) -> SeedResult:
    probability: dict[str, Any] = {y.column: 0.2 + jitter for y in PROBABILITY}
    probability["test_brier"] = probability["test_brier_scaled"] = brier + jitter
    return SeedResult(
        network="mlp", loss=loss, seed=seed, lr=0.1, test_acc=acc + jitter, **probability,
        temperature=1.0, val_acc_best=0.9, best_epoch=1, epochs_to_threshold=1,
        threshold=0.96, val_acc=[0.9], diverged=False, seconds=1.0,
    )  # fmt: skip


def _pair(loss: str, seeds: tuple[int, ...], acc: float, brier: float) -> SimpleNamespace:
    # A little spread, the same for every loss: differences are then exact, and tested.
    tested = {s: _result(loss, s, acc, brier, 0.001 * (i % 3)) for i, s in enumerate(seeds)}
    return SimpleNamespace(network="mlp", loss=loss, seeds=seeds, tested=tested)


def _correct(pairs: list[SimpleNamespace]) -> dict[tuple[str, str, int], list[bool]]:
    """Each run's right answers on IMAGES images, as many as its accuracy says."""
    return {
        (p.network, p.loss, s): [i < round(r.test_acc * IMAGES) for i in range(IMAGES)]
        for p in pairs
        for s, r in p.tested.items()
    }


@pytest.fixture
def study() -> tuple[Any, list[Any], list[Any]]:
    """ce ahead on accuracy by far; quadratic far ahead on the Brier score; square_logits
    level with ce on accuracy; and ce's control the same as ce."""
    plan = make_plan(
        False, ["mlp"], ["ce", "quadratic", "square_logits"], seeds=list(SEEDS), control=True
    )
    pairs = [
        _pair("ce", SEEDS, 0.95, 0.30),
        _pair("quadratic", SEEDS, 0.80, 0.10),
        _pair("square_logits", SEEDS, 0.95, 0.30),
        _pair("ce_control", CONTROL_SEEDS, 0.95, 0.30),
    ]
    comparisons = compare_losses(pairs, _correct(pairs), plan)  # type: ignore[arg-type]
    return plan, pairs, comparisons


def test_holm_runs_over_every_test_of_every_pair_and_the_control(study: Any) -> None:
    _, _, comparisons = study
    assert [(c.loss_a, c.loss_b) for c in comparisons] == [
        ("ce", "quadratic"), ("ce", "square_logits"), ("ce", "ce_control"),
        ("quadratic", "square_logits"),
    ]  # fmt: skip
    # Two tests on accuracy and one on each of the six probability yardsticks, per pair.
    raw = [p for c in comparisons for p in c.holm_values()]
    assert len(raw) == 4 * (2 + len(PROBABILITY))
    adjusted = [
        p
        for c in comparisons
        for p in (c.mcnemar_p_holm, c.t_test_p_holm, *(t.p_holm for t in c.metrics.values()))
    ]
    assert adjusted == holm(raw)  # one family: not one per test, not one per yardstick
    smallest = min(raw)
    assert smallest < 0.05 and min(adjusted) == pytest.approx(len(raw) * smallest)


def test_the_best_loss_on_each_yardstick_and_whom_it_beats(study: Any) -> None:
    plan, pairs, comparisons = study
    results = [r for p in pairs for r in p.tested.values()]
    best = {b.yardstick: b for b in best_losses(results, comparisons, plan)}
    assert list(best) == list(YARDSTICKS)
    # ce and square_logits tie on accuracy: the first of the plan is named, level with it.
    assert (best[ACCURACY].loss, best[ACCURACY].beaten) == ("ce", ("quadratic",))
    assert best[ACCURACY].level == ("square_logits",)
    brier = next(y for y in PROBABILITY if y.column == "test_brier_scaled")
    assert best[brier].loss == "quadratic"
    assert best[brier].beaten == ("ce", "square_logits") and best[brier].level == ()
    labels = {loss.name: loss.label for loss in plan.all_losses()}
    table = best_table(list(best.values()), labels)
    assert "| accuracy | cross-entropy (95.08%) | quadratic (softmax) | square loss (logits) |" in (
        table
    )
    assert "| Brier, scaled | quadratic (softmax) (0.101) | cross-entropy, square loss " in (
        "\n".join(table)
    )
    assert not any("control" in line for line in table)  # the control is no candidate


def test_the_verdicts_are_said_from_the_tests(study: Any) -> None:
    plan, pairs, comparisons = study
    results = [r for p in pairs for r in p.tested.values()]
    said = verdicts(best_losses(results, comparisons, plan), comparisons, plan)
    assert said[0] == (
        "- cross-entropy is best on accuracy (significantly better than quadratic (softmax)); "
        "also "
        "square loss (logits) better than quadratic (softmax)."
    )
    assert (
        "- quadratic (softmax) is best on Brier, raw (significantly better than "
        "cross-entropy, square loss (logits))." in said
    )
    assert "- No significant difference on NLL, raw; NLL, scaled; ECE, raw; ECE, scaled." in said
    assert said[-1].startswith(
        "- Negative control: cross-entropy trained again on seeds 5, 6, 7, 8, 9 at its tuned "
        "rate, against itself: no significant difference on any yardstick"
    )


def test_the_answer_table_gives_each_yardsticks_best_and_the_controls_reading(
    study: Any,
) -> None:
    plan, pairs, comparisons = study
    results = [r for p in pairs for r in p.tested.values()]
    table = answer_table(results, comparisons, plan)
    assert table[0].startswith("| yardstick (best mean; significantly better than) | mlp |")
    assert len(table) == 2 + len(YARDSTICKS) + 1
    assert table[2] == "| accuracy | cross-entropy, 95.08% (better than quadratic (softmax)) |"
    assert "| NLL, raw | " in table[3] and "(level with all)" in table[3]
    assert table[-1] == "| negative control | no significant difference |"


def test_a_control_that_differs_is_read_as_a_warning() -> None:
    plan = make_plan(False, ["mlp"], ["ce", "quadratic"], seeds=list(SEEDS), control=True)
    pairs = [
        _pair("ce", SEEDS, 0.95, 0.30),
        _pair("quadratic", SEEDS, 0.95, 0.30),
        _pair("ce_control", CONTROL_SEEDS, 0.80, 0.30),  # as if the protocol were too eager
    ]
    comparisons = compare_losses(pairs, _correct(pairs), plan)  # type: ignore[arg-type]
    control = comparisons[-1]
    assert (control.loss_b, control.verdict) == ("ce_control", "cross-entropy better")
    results = [r for p in pairs for r in p.tested.values()]
    said = verdicts(best_losses(results, comparisons, plan), comparisons, plan)
    assert said[-1].endswith(
        "against itself: a significant difference on accuracy: the tests find differences "
        "between two runs of the same loss, so read the verdicts above with care."
    )
    assert "- No significant difference on " + "; ".join(y.label for y in YARDSTICKS) + "." in said
    table = answer_table(results, comparisons, plan)
    assert table[-1] == "| negative control | differs on accuracy |"
