"""Every run reaches its trackers: TensorBoard by default, MLflow and W&B by overlay; the
results are read back from each tracker's own files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnist_lit.cli import main
from tests.cli_helpers import (
    REPO,
    TUTORIAL,
    console,
    console_error,
    fake_data,
    fit_one_epoch,
    with_pythonpath,
)

OVERLAYS = {name: str(REPO / "configs" / "logger" / f"{name}.yaml") for name in
            ("tensorboard", "mlflow", "wandb")}  # fmt: skip
RUN = Path("logs/seed_cross_entropy/version_0")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _fit(data_dir: Path, *options: str, epochs: int = 2) -> None:
    main(["fit", "--config", TUTORIAL, f"--trainer.max_epochs={epochs}", *fake_data(data_dir),
          *options])  # fmt: skip


def test_tensorboard_holds_every_epochs_metrics_and_the_config(fake_mnist_dir: Path) -> None:
    _fit(fake_mnist_dir, epochs=3)
    events = EventAccumulator(str(RUN)).Reload()
    val_acc = [event.value for event in events.Scalars("val/acc")]
    with open(RUN / "metrics.csv") as f:
        from_csv = [float(row["val/acc"]) for row in csv.DictReader(f) if row["val/acc"]]
    assert val_acc == pytest.approx(from_csv) and len(val_acc) == 3
    assert "config/text_summary" in events.Tags()["tensors"]


def test_mlflow_holds_the_run_with_its_metrics_params_and_config(fake_mnist_dir: Path) -> None:
    _fit(fake_mnist_dir, "--config", OVERLAYS["mlflow"])
    client = MlflowClient(f"sqlite:///{Path('logs/mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("seed_cross_entropy")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "version_0"  # the run folder's name
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2
    # The optimiser the run trained with, under its one option path.
    assert run.data.params["optimizer/init_args/lr"] == "0.5"
    assert run.data.params["optimizer/class_path"] == "torch.optim.SGD"
    assert "lr" not in run.data.params
    # Not LightningCLI's record of how to rebuild the parts: the checkpoint keeps that.
    assert not [name for name in run.data.params if "instantiator" in name]
    assert run.data.params["loss/class_path"] == "mnist_lit.losses.SoftmaxTwiceCrossEntropy"
    artifacts = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert "config.yaml" in artifacts


def test_each_folder_keeps_its_own_mlflow_store(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two runs in one process (a notebook that changes folder): each in its folder's store.
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        _fit(fake_mnist_dir, "--config", OVERLAYS["mlflow"], epochs=1)
    for folder in ("a", "b"):
        client = MlflowClient(f"sqlite:///{tmp_path / folder / 'logs' / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("seed_cross_entropy")
        assert len(client.search_runs([experiment.experiment_id])) == 1


def test_wandb_keeps_an_offline_run(fake_mnist_dir: Path, tmp_path: Path) -> None:
    # In a process of its own: W&B writes its records out when the process ends.
    fit = console("fit", "--config", TUTORIAL, "--config", OVERLAYS["wandb"],
                  "--trainer.max_epochs=2", *fake_data(fake_mnist_dir), cwd=tmp_path)  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    (records,) = Path("logs/wandb").glob("offline-run-*/run-*.wandb")
    # W&B's offline format has no public reader: its records name the metrics and the run.
    data = records.read_bytes()
    assert b"val/acc" in data and b"seed_cross_entropy/version_0" in data


@pytest.mark.parametrize("overlay", [None, *OVERLAYS])
def test_best_is_found_with_every_logger(overlay: str | None, fake_mnist_dir: Path) -> None:
    options = ["--config", OVERLAYS[overlay]] if overlay else []
    _fit(fake_mnist_dir, *options, epochs=1)
    main(["test", "--config", TUTORIAL, *options, "--ckpt_path=best", *fake_data(fake_mnist_dir)])
    tested = yaml.safe_load(Path("logs/seed_cross_entropy/version_1/config.yaml").read_text())
    assert tested["ckpt_path"].startswith(str(RUN / "checkpoints" / "best-epoch00"))


def test_the_experiment_names_the_run_folder(fake_mnist_dir: Path) -> None:
    fit_one_epoch(fake_mnist_dir)
    _fit(fake_mnist_dir, "--experiment=mine", epochs=1)
    assert (RUN / "metrics.csv").is_file()
    assert Path("logs/mine/version_0/metrics.csv").is_file()


BROKEN_MLFLOW = "raise ModuleNotFoundError(\"No module named 'mlflow'\")\n"


def test_a_tracker_whose_package_is_missing_is_named(tmp_path: Path) -> None:
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "__init__.py").write_text(BROKEN_MLFLOW)
    err = console_error("fit", "--config", TUTORIAL, "--config", OVERLAYS["mlflow"],
                        cwd=tmp_path, env=with_pythonpath(tmp_path))  # fmt: skip
    assert "trainer.logger (MLFlowLogger) needs a package that is not installed" in err
    assert "pip install 'mnist-lit[mlflow]'" in err
