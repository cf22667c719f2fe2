"""``mnist-lit study`` with a user's own loss and network, from the user's folder: the same
protocol as the catalogue's, their classes and arguments in the plan, and one message for
each way they can be wrong, before any fit starts."""

from __future__ import annotations

import csv
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mnist_lit.cli import main
from mnist_lit.runs.catalog import LOSSES, NETWORKS
from mnist_lit.runs.errors import MnistLitError
from mnist_lit.runs.fit import FitCLI
from mnist_lit.study.choices import parse_loss, parse_network
from mnist_lit.study.folder import StudyFolder
from mnist_lit.study.plan import STUDY_NETWORKS, make_plan
from tests.cli_helpers import REPO, cli_error

MY_MODULE = '''
import torch.nn.functional as F
from torch import nn


class MyLoss(nn.Module):
    """Cross-entropy of the logits times ``scale``."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, logits, target):
        return F.cross_entropy(self.scale * logits, target)


class NotReduced(nn.Module):
    def forward(self, logits, target):
        return F.cross_entropy(logits, target, reduction="none")


class FiveOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(784, 5)

    def forward(self, images):
        return self.linear(images.flatten(1))


NOT_A_CLASS = 3
'''


@pytest.fixture
def users_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's folder, the working one: my_module.py, a network config of their own
    (the tutorial's, copied), and one whose network has 5 outputs."""
    (tmp_path / "my_module.py").write_text(MY_MODULE)
    shutil.copy(REPO / "configs" / "cross_entropy.yaml", tmp_path / "my_net.yaml")
    five = yaml.safe_load((tmp_path / "my_net.yaml").read_text())
    five["model"]["net"] = "my_module.FiveOutputs"
    (tmp_path / "five.yaml").write_text(yaml.safe_dump(five))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the study adds the working folder
    monkeypatch.delitem(sys.modules, "my_module", raising=False)
    return tmp_path


def _study(data: Path, *extra: str) -> list[str]:
    return [
        "study", "--quick", "--data-dir", str(data), "--val-size", "100", "--n-trials", "2",
        "--seeds", "0", "1", "--no-control", *extra,
    ]  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_a_users_loss_and_network_go_through_the_study_from_their_folder(
    users_folder: Path, fake_mnist_dir: Path
) -> None:
    main(_study(fake_mnist_dir, "--networks", "my_net.yaml:0.1,1", "--losses", "ce",
                "my_module.MyLoss"))  # fmt: skip
    study = users_folder / "outputs" / "study_quick"
    rows = _rows(study / "results.csv")
    assert {(r["network"], r["loss"], r["seed"]) for r in rows} == {
        ("my_net", loss, seed) for loss in ("ce", "my_module.MyLoss") for seed in ("0", "1")
    }
    # The same protocol: each tuned on the network's own range, then trained on the seeds.
    trials = _rows(study / "tuning_trials.csv")
    assert {(t["loss"], float(t["lr"])) for t in trials} == {
        (loss, lr) for loss in ("ce", "my_module.MyLoss") for lr in (0.1, 1.0)
    }
    config = yaml.safe_load((study / "runs/my_net/my_module.MyLoss/seed_1/config.yaml").read_text())
    assert config["model"]["loss"]["class_path"] == "my_module.MyLoss"
    plan = yaml.safe_load((study / "study.yaml").read_text())
    assert plan["loss_classes"] == {
        "ce": {"class_path": LOSSES["ce"].class_path, "init_args": {}},
        "my_module.MyLoss": {"class_path": "my_module.MyLoss", "init_args": {}},
    }
    assert plan["network_configs"] == {"my_net": str(users_folder / "my_net.yaml")}
    assert plan["search"]["my_net"]["rates"] == [0.1, 1.0]
    summary = (study / "summary.md").read_text()
    assert f"## my_net: my_net ({users_folder / 'my_net.yaml'})" in summary
    assert "| MyLoss |" in summary and "cross-entropy vs MyLoss" in summary  # its class name
    assert "| MyLoss | 0.1 to 1 (2) |" in summary


def test_a_losss_arguments_reach_its_fits_and_another_is_another_study(
    users_folder: Path,
) -> None:
    sys.path.insert(0, str(users_folder))  # as the study does (the fixture restores the path)
    sharp = parse_loss("sharp=my_module.MyLoss:scale=2")
    assert (sharp.name, sharp.label) == ("sharp", "sharp")
    assert parse_loss("my_module.MyLoss:scale=2").label == "MyLoss (scale=2)"
    plan = make_plan(True, [parse_network("my_net.yaml")], ["ce", sharp])
    cli = FitCLI(replace(plan.fit(plan.networks[0], sharp, "data", "cpu"), lr=0.1))
    assert type(cli.model.loss).__name__ == "MyLoss" and cli.model.loss.scale == 2
    assert plan.networks[0].lr_ranges == STUDY_NETWORKS["mlp"].lr_ranges  # the default range
    StudyFolder(users_folder / "s").check_plan(plan)
    scale_3 = parse_loss("sharp=my_module.MyLoss:scale=3")
    again = make_plan(True, [parse_network("my_net.yaml")], ["ce", scale_3])
    with pytest.raises(MnistLitError, match=r"\(loss_classes.sharp.init_args.scale differ\)"):
        StudyFolder(users_folder / "s").check_plan(again)


@pytest.mark.parametrize(
    ("option", "spec", "message"),
    [
        ("--losses", "no_such_module.Loss", "--losses no_such_module.Loss: cannot import "
         "no_such_module (No module named 'no_such_module'); put no_such_module.py in the "
         "working folder or install it."),
        ("--losses", "my_module.Nope", "--losses my_module.Nope: my_module has no "
         "torch.nn.Module named Nope"),
        ("--losses", "my_module.NOT_A_CLASS", "my_module has no torch.nn.Module named NOT_A_CLASS"),
        ("--losses", "my_module.MyLoss:width=2", "--losses my_module.MyLoss:width=2: Option "
         "'width' is not accepted"),
        ("--losses", "hinge:margin=x", "--losses hinge:margin=x: model.loss.margin: expected a "
         "float, got 'x'"),
        ("--losses", "my_module.NotReduced", "--losses my_module.NotReduced: loss (NotReduced) "
         "returns shape (4,), not a scalar tensor"),
        ("--losses", "my_module.MyLoss:=2", "'=2' is not ARG=VALUE"),
        ("--losses", "a=ce a=quadratic", "--losses: a given twice (or named alike)"),
        ("--losses", "nonsense", "nonsense is neither a loss of the catalogue"),
        ("--networks", "five.yaml", "--networks five: net (FiveOutputs) must output 10 "
         "logits per image, got (2, 5)"),
        ("--networks", "missing.yaml", "--networks missing.yaml: neither a network of the "
         "catalogue"),
        ("--networks", "my_net.yaml:1,0.1", "two rates, the lower first"),
    ],
)  # fmt: skip
def test_a_bad_loss_or_network_is_one_message_before_any_fit(
    option: str,
    spec: str,
    message: str,
    users_folder: Path,
    fake_mnist_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = cli_error(_study(fake_mnist_dir, option, *spec.split()), capsys)
    assert err.count("mnist-lit: error: ") == 1 and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert not (users_folder / "outputs").exists()  # nothing written, nothing trained


def test_the_help_lists_the_catalogue_and_the_class_paths(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["study", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in (*LOSSES, *NETWORKS))
    assert "or a class path (my_losses.Hinge, from the working folder)" in text
    assert "LABEL=LOSS:ARG=VALUE" in text and "or a config file of your own" in text
    assert "--control, --no-control" in text
