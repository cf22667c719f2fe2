"""``mnist-lit study`` on tiny generated data: every output, resuming, and one message for a
study folder of another configuration."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mnist_lit import MNISTClassifier, MNISTDataModule
from mnist_lit.cli import main
from mnist_lit.runs.catalog import OPTIMIZERS
from mnist_lit.runs.checkpointing import read_checkpoint
from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.evaluation import TEMPERATURE_RANGE, calibrate
from mnist_lit.runs.fit import FitCLI
from mnist_lit.study.folder import StudyFolder, epochs_to_reach
from mnist_lit.study.halving import step_beyond
from mnist_lit.study.plan import STUDY_NETWORKS, catalogue_loss, make_plan
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
    # The control: ce again on as many other seeds, at ce's rate.
    assert {(r["network"], r["loss"], r["seed"]) for r in rows} == {
        (n, loss, s) for n in ("softmax_regression", "cnn") for loss in ("ce", "square_logits")
        for s in ("0", "1")
    } | {(n, "ce_control", s) for n in ("softmax_regression", "cnn")
         for s in ("2", "3")}  # fmt: skip
    for row in rows:
        assert 0 <= float(row["test_acc"]) <= 1 and float(row["test_ce"]) >= 0
        assert float(row["lr"]) > 0
        assert 0 < float(row["temperature"]) < math.inf
        for name in ("test_ce", "test_ece", "test_brier"):
            assert float(row[f"{name}_scaled"]) >= 0 and float(row[name]) >= 0
        assert float(row["test_brier"]) <= 2
    # Each loss is tuned with the same number of trials, on the validation split only.
    trials = _rows(quick_study / "tuning_trials.csv")
    assert len(trials) == 2 * 2 * 2
    tuning_fits = list(quick_study.glob("tuning/*/*/round_*/lr_*/"))
    assert len(tuning_fits) == len(trials)
    for fit in tuning_fits:
        assert sorted(p.name for p in fit.iterdir()) == ["config.yaml", "result.json"], fit
        assert "test_acc" not in json.loads((fit / "result.json").read_text())
    # The rate each seed trained with is the tuned one, read back from best.yaml.
    best = yaml.safe_load((quick_study / "tuning/cnn/ce/best.yaml").read_text())
    cnn_ce = [r for r in rows if (r["network"], r["loss"]) == ("cnn", "ce")]
    assert float(cnn_ce[0]["lr"]) == best["model"]["optimizer"]["init_args"]["lr"]
    assert best["model"]["lr_scheduler"]["init_args"]["T_max"] == 1
    for network in ("softmax_regression", "cnn"):
        rates = {(r["loss"], r["lr"]) for r in rows if r["network"] == network}
        assert dict(rates)["ce_control"] == dict(rates)["ce"]
    assert not (quick_study / "tuning" / "cnn" / "ce_control").exists()  # no tuning of its own
    comparisons = _rows(quick_study / "comparisons.csv")
    assert [(c["loss_a"], c["loss_b"]) for c in comparisons] == [
        ("ce", "square_logits"), ("ce", "ce_control")
    ] * 2  # fmt: skip
    assert all(c["verdict"] and c["test_brier_scaled_verdict"] for c in comparisons)
    summary = (quick_study / "summary.md").read_text()
    assert "| cross-entropy |" in summary and "| square loss (logits) |" in summary
    assert "cross-entropy vs square loss (logits)" in summary and "95% t-interval" in summary
    assert "over rounds of 1 epoch (" in summary and "finalists at 1 epoch |" in summary
    assert "| test cross-entropy, scaled (raw) |" in summary and "| temperature |" in summary
    # Every yardstick, both ways, tested; the best on each; the control's reading.
    assert summary.count("| yardstick | best (mean over seeds) |") == 2
    for yardstick in ("accuracy", "NLL, raw", "NLL, scaled", "Brier, raw", "ECE, scaled"):
        assert (
            f"| {yardstick} | " in summary
            and f"{yardstick}: A - B (Holm p)" * (yardstick != "accuracy") in summary
        )
    assert "| cross-entropy (control) |" in summary
    assert summary.count("- Negative control: cross-entropy trained again on seeds 2, 3") == 2
    assert "all 32 tests of the study: its 4 pairs" in summary
    for name in ("rate_sensitivity.png", "accuracy.png"):
        assert (quick_study / name).stat().st_size > 10_000


def test_the_speed_table_reads_a_finished_study(quick_study: Path, tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "study_table.py"
    table = tmp_path / "speed.csv"
    result = subprocess.run(
        [sys.executable, str(script), str(quick_study), "--csv", str(table)],
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = _rows(table)
    # 4 of the seeds' fits are the control's.
    assert (row["tuning_fits"], row["seed_fits"]) == ("8", "12") and int(row["invocations"]) >= 1
    assert float(row["wall_minutes"]) > 0 and row["met"] == ""  # no target for this name
    assert f"| {quick_study.name} | sgd; label noise 0%; softmax_regression, cnn;" in result.stdout


def test_a_rate_chosen_at_the_edge_of_its_grid_has_the_rate_beyond_tried(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "edge"
    # Not --quick: the default budget may grow a grid; of two rates, either is an edge.
    main(["study", "--study-dir", str(study), "--data-dir", str(fake_mnist_dir),
          "--val-size", "100", "--n-trials", "2", "--seeds", "0", "1", "--epochs", "1",
          "--networks", "softmax_regression", "--losses", "ce", "--no-control"])  # fmt: skip
    plan = make_plan(False, ["softmax_regression"], ["ce"], n_trials=2, seeds=[0, 1], epochs=1)
    grid = plan.rates(STUDY_NETWORKS["softmax_regression"])
    tried = {float(t["lr"]) for t in _rows(study / "tuning_trials.csv")}
    beyond = tried - set(grid)
    below, above = [min(grid)], [max(grid)]  # each rate a step past the one before
    for _ in range(plan.budget.extensions):
        below.append(step_beyond(grid, below[-1], up=False))
        above.append(step_beyond(grid, above[-1], up=True))
    assert beyond and beyond <= {*below[1:], *above[1:]}
    (chosen,) = {float(r["lr"]) for r in _rows(study / "results.csv")}
    inside = min(tried) < chosen < max(tried)
    summary = (study / "summary.md").read_text()
    assert ("| yes |" if inside else "| **no, at the edge** |") in summary


def test_the_temperature_is_fitted_on_the_validation_split(quick_study: Path) -> None:
    inside = 0  # runs whose temperature lies inside the range searched
    for row in _rows(quick_study / "results.csv"):
        run = quick_study / "runs" / row["network"] / row["loss"] / f"seed_{row['seed']}"
        best = run / "best.ckpt"
        model = MNISTClassifier.load_from_checkpoint(best)
        datamodule = MNISTDataModule.load_from_checkpoint(best)
        datamodule.setup()
        temperature = float(row["temperature"])
        assert temperature == calibrate(model, datamodule, "val"), run
        if TEMPERATURE_RANGE[0] * 1.01 < temperature < TEMPERATURE_RANGE[1] / 1.01:
            inside += 1
            assert temperature != pytest.approx(calibrate(model, datamodule, "test")), run
    assert inside >= 2


def test_a_rerun_trains_nothing_again_and_restores_a_lost_result(
    quick_study: Path, fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _seed_files(quick_study)
    lost = quick_study / "runs/cnn/ce/seed_1/result.json"
    kept = lost.read_text()
    lost.unlink()  # a fit without its result.json has no result: it runs again
    capsys.readouterr()
    main(_study(fake_mnist_dir, quick_study, "--networks", "softmax_regression", "cnn",
                "--losses", "ce", "square_logits"))  # fmt: skip
    assert _seed_files(quick_study).keys() == before.keys()
    assert {p: t for p, t in _seed_files(quick_study).items() if p != lost} == {
        p: t for p, t in before.items() if p != lost
    }
    again, first = json.loads(lost.read_text()), json.loads(kept)
    assert {**again, "seconds": 0} == {**first, "seconds": 0}  # the same fit, the same numbers
    assert len(_rows(quick_study / "tuning_trials.csv")) == 8  # no new trial
    fit_lines = [line for line in capsys.readouterr().out.splitlines() if ": test acc" in line]
    assert [line.split(":")[0] for line in fit_lines] == ["cnn, ce, seed 1"]  # that fit only
    # The wall time is the sum of the invocations'.
    invocations = _rows(quick_study / "invocations.csv")
    assert [row["ended"] for row in invocations] == ["True", "True"]
    minutes = sum(float(row["seconds"]) for row in invocations) / 60
    summary = (quick_study / "summary.md").read_text()
    assert f"wall time: {minutes:.1f} min in 2 invocations (1 worker)." in summary


def test_study_folder_of_another_configuration_is_one_message(
    quick_study: Path, fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _study(fake_mnist_dir, quick_study, "--networks", "softmax_regression", "cnn",
                  "--losses", "ce", "square_logits")  # fmt: skip
    args[args.index("--seeds") + 1 : args.index("--seeds") + 3] = ["0", "1", "2"]
    err = cli_error(args, capsys)
    assert err.count("mnist-lit: error: ") == 1
    assert "holds a study of another configuration (budget.seeds, control_seeds differ)" in err, err


def test_default_budget_and_plan() -> None:
    plan = make_plan(quick=False)
    assert [n.name for n in plan.networks] == ["softmax_regression", "mlp", "cnn"]
    assert [loss.name for loss in plan.losses] == [
        "ce",
        "softmax_twice",
        "quadratic",
        "square_logits",
    ]
    assert len(plan.budget.seeds) >= 5 and plan.budget.n_trials == 8
    assert STUDY_NETWORKS["cnn"].schedule_ends_with_training()
    assert not STUDY_NETWORKS["mlp"].schedule_ends_with_training()
    assert epochs_to_reach([0.5, 0.97, 0.99], 0.96) == 2
    with pytest.raises(Exception, match="at least 2 seeds"):
        make_plan(quick=True, seeds=[0])


def test_label_noise_reaches_every_fit_and_the_plan(tmp_path: Path) -> None:
    plan = make_plan(quick=True, label_noise=0.2)
    for network in STUDY_NETWORKS.values():
        assert plan.fit(network, plan.losses[0], "data", "cpu").values()["data.label_noise"] == 0.2
    StudyFolder(tmp_path).check_plan(plan)
    with pytest.raises(MnistLitError, match=r"another configuration \(label_noise differ\)"):
        StudyFolder(tmp_path).check_plan(make_plan(quick=True))


def test_a_study_with_adam_and_label_noise_fits_every_run_so(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    study = tmp_path / "adam"
    main(_study(fake_mnist_dir, study, "--networks", "softmax_regression", "--losses", "ce",
                "quadratic", "--optimizer", "adam", "--label-noise", "0.1",
                "--no-control"))  # fmt: skip
    plan = yaml.safe_load((study / "study.yaml").read_text())
    assert plan["optimizer"] == "adam" and plan["label_noise"] == 0.1
    # Two trials: the ends of Adam's own range, not SGD's.
    adam_range = STUDY_NETWORKS["softmax_regression"].lr_ranges["adam"]
    assert plan["search"]["softmax_regression"]["rates"] == list(adam_range)
    fits = [*study.glob("tuning/*/*/round_*/lr_*/"), *study.glob("runs/*/*/seed_*/")]
    assert len(fits) == 2 * 2 + 2 * 2  # two losses, each with two trials and two seeds
    for fit in fits:
        config = yaml.safe_load((fit / "config.yaml").read_text())
        assert config["model"]["optimizer"]["class_path"] == "torch.optim.Adam", fit
        assert config["data"]["label_noise"] == 0.1, fit
    best = read_checkpoint(study / "runs/softmax_regression/ce/seed_0/best.ckpt")
    assert "exp_avg" in best["optimizer_states"][0]["state"][0]  # Adam's moment estimates
    assert {float(r["lr"]) for r in _rows(study / "results.csv")} <= set(adam_range)
    assert "(Adam, 10% of the training labels wrong)" in (study / "summary.md").read_text()


@pytest.mark.parametrize(("optimizer", "momentum"), [("adam", None), ("sgd", 0.9)])
def test_the_cnns_momentum_goes_to_sgd_only(
    optimizer: str, momentum: float | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = make_plan(quick=True, optimizer=optimizer).fit(
        STUDY_NETWORKS["cnn"], catalogue_loss("ce"), str(tmp_path), "cpu"
    )
    run = replace(run, lr=0.003)
    cli = FitCLI(run)
    spec = cli.model.hparams["optimizer"]
    assert spec["class_path"] == OPTIMIZERS[optimizer].class_path
    assert spec["init_args"]["lr"] == 0.003 and spec["init_args"].get("momentum") == momentum
    built = cli.model.configure_optimizers()["optimizer"]
    assert f"torch.optim.{type(built).__name__}" == OPTIMIZERS[optimizer].class_path
    assert built.defaults.get("momentum") == momentum


def test_the_quick_study_has_a_folder_of_its_own(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = _study(fake_mnist_dir, tmp_path, "--networks", "softmax_regression", "--losses",
                  "ce", "quadratic", "--no-control")  # fmt: skip
    del args[args.index("--study-dir") : args.index("--study-dir") + 2]
    main(args)
    assert (tmp_path / "outputs" / "study_quick" / "results.csv").is_file()
    assert not (tmp_path / "outputs" / "study").exists()  # free for the full study
