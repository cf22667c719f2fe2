"""``mnist-lit lr_find`` on the fake data: the suggested model.optimizer.lr for any optimiser,
the plot and the numbers in the run folder; and the refusal of batch-size scaling."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mnist_lit.cli import main
from mnist_lit.losses import CrossEntropy
from tests.cli_helpers import REPO, TUTORIAL, cli_error, console, fake_data

RUN = Path("logs/seed_cross_entropy/version_0")
STEPS = "--lr_find.num_training=30"  # 8 batches an epoch: within the tutorial's 10 epochs


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _lr_find(data_dir: Path, *options: str) -> None:
    main(["lr_find", "--config", TUTORIAL, *fake_data(data_dir), STEPS, *options])


def _results(run: Path = RUN) -> list[tuple[float, float]]:
    with open(run / "lr_find.csv") as f:
        return [(float(row["lr"]), float(row["loss"])) for row in csv.DictReader(f)]


def _suggested(out: str, option: str) -> float:
    match = re.search(rf"train with {re.escape(option)} (\S+)", out)
    assert match, out
    return float(match.group(1))


def test_lr_find_suggests_the_rate_and_keeps_its_curve(
    fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lr_find(fake_mnist_dir, "--lr_find.min_lr=1e-4", "--lr_find.max_lr=10")
    suggested = _suggested(capsys.readouterr().out, "--model.optimizer.lr")
    results = _results()
    rates = [lr for lr, _ in results]
    assert len(results) == 30
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(10)
    assert rates == sorted(rates)
    assert any(math.isclose(suggested, lr, rel_tol=1e-2) for lr in rates)
    assert (RUN / "lr_find.png").stat().st_size > 10_000
    assert (RUN / "config.yaml").is_file()


def test_lr_find_says_nothing_of_loading_its_own_checkpoint(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    said = console("lr_find", "--config", TUTORIAL, *fake_data(fake_mnist_dir), STEPS, cwd=tmp_path)
    assert "train with --model.optimizer.lr" in said.stdout, said.stderr
    assert "weights_only" not in said.stdout + said.stderr, said.stderr


def test_lr_find_with_an_optimizer_finds_the_optimizers_rate(
    fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lr_find(fake_mnist_dir, "--model.optimizer=Adam", "--model.optimizer.lr=0.001",
             "--lr_find.max_lr=0.1")  # fmt: skip
    assert 0 < _suggested(capsys.readouterr().out, "--model.optimizer.lr") <= 0.1
    # The range replaced Adam's own rate: it went all the way to max_lr.
    assert _results()[-1][0] == pytest.approx(0.1)


class BreaksAtLargeLogits(CrossEntropy):
    """Cross-entropy that becomes NaN once a logit passes 100, as a diverging run does."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, target)
        return torch.where(logits.abs().max() > 100, torch.full_like(loss, math.nan), loss)


def test_a_diverging_loss_ends_the_search_not_the_run(
    fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lr_find(fake_mnist_dir, "--model.loss=tests.test_lr_find.BreaksAtLargeLogits",
             "--lr_find.max_lr=1e6", "--lr_find.early_stop_threshold=null")  # fmt: skip
    # Filed under the loss given on the command line.
    results = _results(Path("logs/seed_cross_entropy-BreaksAtLargeLogits/version_0"))
    assert len(results) < 30 and math.isnan(results[-1][1])
    diverged_at = results[-1][0]
    assert _suggested(capsys.readouterr().out, "--model.optimizer.lr") < diverged_at


def test_lr_find_lists_its_own_options_and_fits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lr_find", "--help"])
    out = capsys.readouterr().out
    assert "--lr_find.min_lr" in out and "--lr_find.num_training" in out
    assert "--trainer.max_epochs" in out and "--model.optimizer.lr" in out


def test_batch_size_scaling_is_refused_with_the_reason(
    fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = cli_error(["scale_batch_size", "--config", TUTORIAL], capsys)
    assert "batch-size scaling is not offered" in err and "--data.batch_size" in err
    err = cli_error(["fit", "--config", TUTORIAL, *fake_data(fake_mnist_dir),
                     "--trainer.callbacks+=BatchSizeFinder"], capsys)  # fmt: skip
    assert "trainer.callbacks (BatchSizeFinder): batch-size scaling is not offered" in err
    # The help's line points to the reason.
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = " ".join(capsys.readouterr().out.split())
    assert "(mnist-lit scale_batch_size says why)" in listed and "(why)" not in listed


def test_too_few_rates_for_a_suggestion_is_one_message_and_still_a_plot(
    fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The suggestion leaves out the first 10 rates and the last: 5 leave nothing.
    err = cli_error(["lr_find", "--config", TUTORIAL, *fake_data(fake_mnist_dir),
                     "--lr_find.num_training=5"], capsys)  # fmt: skip
    assert "lr_find found no rate to suggest" in err
    assert len(_results()) == 5 and (RUN / "lr_find.png").is_file()


def test_lr_find_refuses_fast_dev_run(
    fake_mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast_dev_run = str(REPO / "configs" / "debug" / "fast_dev_run.yaml")
    err = cli_error(["lr_find", "--config", TUTORIAL, "--config", fast_dev_run,
                     *fake_data(fake_mnist_dir)], capsys)  # fmt: skip
    assert "lr_find does not run with --trainer.fast_dev_run" in err


def test_the_suggestion_is_the_fall_not_noise_on_a_flat_stretch() -> None:
    """A CNN's range test: a start the smoothing drags up, a long flat stretch with noise,
    then the fall (fastest near 0.05), then the rise of too large rates."""
    import numpy as np

    from mnist_lit.tuning.lr_find import steepest_fall

    lrs = np.geomspace(1e-8, 1, 200)
    x = np.log10(lrs)
    fall = 0.6 / (1 + np.exp(-(x - np.log10(0.05)) * 5))  # 0.6 lower past 0.05
    noise = np.random.default_rng(0).normal(0, 0.003, 200)
    start = 1.1 * np.exp(-np.arange(200) / 8)  # the smoothing's climb to the plateau
    losses = 2.29 - start - fall + noise + np.where(lrs > 0.3, 10 * (x - np.log10(0.3)), 0)
    suggested = steepest_fall(lrs.tolist(), losses.tolist())
    assert suggested is not None and 0.02 < suggested < 0.12, suggested
    assert steepest_fall(lrs.tolist(), (2.0 + noise * 0).tolist()) is None  # never falls
