"""``mnist-lit test`` draws its figures into the run folder and hands them to the trackers."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lit.cli import main
from mnist_lit.runs.evaluation_figures import EvaluationFigures
from tests.cli_helpers import REPO, TUTORIAL, console, fake_data, fit_one_epoch

TESTED = Path("logs/seed_cross_entropy/version_1")
MLFLOW = str(REPO / "configs" / "logger" / "mlflow.yaml")
WANDB = str(REPO / "configs" / "logger" / "wandb.yaml")
DDP_CPU = str(REPO / "configs" / "trainer" / "ddp_cpu.yaml")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _test(data_dir: Path, *options: str) -> None:
    main(["test", "--config", TUTORIAL, "--ckpt_path=best", *fake_data(data_dir), *options])


def _test_acc(run: Path) -> float:
    with open(run / "metrics.csv") as f:
        return float(next(row for row in csv.DictReader(f) if row.get("test/acc"))["test/acc"])


def test_test_draws_the_figures_into_the_run_folder_and_tensorboard(fake_mnist_dir: Path) -> None:
    fit_one_epoch(fake_mnist_dir)
    assert not list(Path("logs").rglob("figures"))  # fit draws none
    _test(fake_mnist_dir)
    pngs = {path.stem for path in (TESTED / "figures").glob("*.png")}
    assert pngs == set(EvaluationFigures.NAMES)
    # The whole test set (200 fake images), counted once, gives the logged accuracy.
    matrix = np.loadtxt(TESTED / "figures" / "confusion_matrix.csv", delimiter=",")
    assert matrix.shape == (10, 10) and matrix.sum() == 200
    assert np.trace(matrix) / 200 == pytest.approx(_test_acc(TESTED))
    events = EventAccumulator(str(TESTED)).Reload()
    assert set(events.Tags()["images"]) == {f"test/{name}" for name in EvaluationFigures.NAMES}


def test_the_figures_can_be_turned_off(fake_mnist_dir: Path) -> None:
    fit_one_epoch(fake_mnist_dir)
    _test(fake_mnist_dir, "--figures.enabled=false")
    assert TESTED.is_dir() and not (TESTED / "figures").exists()


def test_mlflow_keeps_the_figures_as_artifacts(fake_mnist_dir: Path) -> None:
    fit_one_epoch(fake_mnist_dir)
    _test(fake_mnist_dir, "--config", MLFLOW)
    client = MlflowClient(f"sqlite:///{Path('logs/mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("seed_cross_entropy")
    (run,) = client.search_runs([experiment.experiment_id])
    figures = {artifact.path for artifact in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == {f"figures/{name}.png" for name in EvaluationFigures.NAMES}


def test_wandb_keeps_the_figures(fake_mnist_dir: Path, tmp_path: Path) -> None:
    fit_one_epoch(fake_mnist_dir)
    # In a process of its own: W&B writes its records out when the process ends.
    test = console("test", "--config", TUTORIAL, "--config", WANDB, "--ckpt_path=best",
                   *fake_data(fake_mnist_dir), cwd=tmp_path)  # fmt: skip
    assert test.returncode == 0, test.stderr
    (records,) = Path("logs/wandb").glob("offline-run-*/run-*.wandb")
    data = records.read_bytes()  # no public reader: the records name the images
    assert all(f"test/{name}".encode() in data for name in EvaluationFigures.NAMES)


@pytest.mark.slow
def test_two_processes_count_every_test_image_once(fake_mnist_dir: Path, tmp_path: Path) -> None:
    fit_one_epoch(fake_mnist_dir)
    test = ["test", "--config", TUTORIAL, "--ckpt_path=best", *fake_data(fake_mnist_dir)]
    result = console(*test, "--config", DDP_CPU, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Starting with 2 processes" in result.stderr + result.stdout
    _test(fake_mnist_dir)
    ddp, single = (np.loadtxt(f"logs/seed_cross_entropy/version_{n}/figures/confusion_matrix.csv",
                              delimiter=",") for n in (1, 2))  # fmt: skip
    assert ddp.sum() == 200
    assert (ddp == single).all()
