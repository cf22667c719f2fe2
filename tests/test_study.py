"""``mnist-lit study`` on tiny generated data: every output, resuming, and one message for a
study folder of another configuration."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from mnist_lit.cli import main
from mnist_lit.study.plan import NETWORKS, make_plan
from mnist_lit.study.runner import epochs_to_reach
from tests.cli_helpers import cli_error


def _study(data: Path, study: Path, *extra: str) -> list[str]:
    return [
        "study", "--quick", "--study-dir", str(study), "--data-dir", str(data),
        "--val-size", "100", "--n-trials", "2", "--seeds", "0", "1", *extra,
    ]  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def _seed_files(study: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in study.glob("runs/*/*/seed_*/result.json")}


@pytest.fixture(scope="module")
def quick_study(fake_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    study = tmp_path_factory.mktemp("study") / "out"
    main(_study(fake_mnist_dir, study, "--networks", "softmax_regression", "cnn",
                "--losses", "ce", "square_logits"))  # fmt: skip
    return study


def test_study_writes_results_comparisons_summary_and_pictures(quick_study: Path) -> None:
    rows = _rows(quick_study / "results.csv")
    assert {(r["network"], r["loss"], r["seed"]) for r in rows} == {
        (n, loss, s) for n in ("softmax_regression", "cnn") for loss in ("ce", "square_logits")
        for s in ("0", "1")
    }  # fmt: skip
    for row in rows:
        assert 0 <= float(row["test_acc"]) <= 1 and float(row["test_ce"]) >= 0
        assert float(row["lr"]) > 0
    # Each loss is tuned with the same number of trials, on the validation split only.
    trials = _rows(quick_study / "tuning_trials.csv")
    assert len(trials) == 2 * 2 * 2
    for metrics in quick_study.glob("tuning/*/*/trials/trial_*/metrics.csv"):
        assert "test/" not in metrics.read_text().splitlines()[0]
    # The rate each seed trained with is the tuned one, read back from best.yaml.
    best = yaml.safe_load((quick_study / "tuning/cnn/ce/best.yaml").read_text())
    cnn_ce = [r for r in rows if (r["network"], r["loss"]) == ("cnn", "ce")]
    assert float(cnn_ce[0]["lr"]) == best["optimizer"]["init_args"]["lr"]
    assert best["lr_scheduler"]["init_args"]["T_max"] == 1
    comparisons = _rows(quick_study / "comparisons.csv")
    assert len(comparisons) == 2
    assert all(c["verdict"] for c in comparisons)
    summary = (quick_study / "summary.md").read_text()
    assert "| cross-entropy |" in summary and "| square loss (logits) |" in summary
    assert "cross-entropy vs square loss (logits)" in summary and "95% t-interval" in summary
    for name in ("rate_sensitivity.png", "accuracy.png"):
        assert (quick_study / name).stat().st_size > 10_000


def test_a_rerun_resumes_without_training_again(
    quick_study: Path, fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _seed_files(quick_study)
    dropped = quick_study / "runs/cnn/ce/seed_1/result.json"
    dropped.unlink()  # as if killed while training this seed
    main(_study(fake_mnist_dir, quick_study, "--networks", "softmax_regression", "cnn",
                "--losses", "ce", "square_logits"))  # fmt: skip
    after = _seed_files(quick_study)
    assert {p: t for p, t in after.items() if p != dropped} == {
        p: t for p, t in before.items() if p != dropped
    }
    assert dropped in after
    assert len(_rows(quick_study / "tuning_trials.csv")) == 8  # no new trial
    assert "seed 1: test acc" in capsys.readouterr().out


def test_study_folder_of_another_configuration_is_one_message(
    quick_study: Path, fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _study(fake_mnist_dir, quick_study, "--networks", "softmax_regression", "cnn",
                  "--losses", "ce", "square_logits")  # fmt: skip
    args[args.index("--seeds") + 1 : args.index("--seeds") + 3] = ["0", "1", "2"]
    err = cli_error(args, capsys)
    assert err.count("mnist-lit: error: ") == 1
    assert "holds a study of another configuration (budget.seeds differ)" in err, err


def test_default_budget_and_plan() -> None:
    plan = make_plan(quick=False)
    assert plan.networks == ("softmax_regression", "mlp", "cnn")
    assert plan.losses == ("ce", "softmax_twice", "quadratic", "square_logits")
    assert len(plan.budget.seeds) >= 5 and plan.budget.n_trials == 8
    assert NETWORKS["cnn"].lr_key == "optimizer.lr"
    assert epochs_to_reach([0.5, 0.97, 0.99], 0.96) == 2
    with pytest.raises(Exception, match="at least 2 seeds"):
        make_plan(quick=True, seeds=[0])
