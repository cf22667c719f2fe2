"""Every loss of the study can be chosen from the command line or YAML by ``class_path``."""

from pathlib import Path

import pytest

from mnist_lit.runs.lightning_cli import MNISTLightningCLI


@pytest.mark.parametrize(
    ("class_path", "options", "attribute", "value"),
    [
        ("mnist_lit.losses.SigmoidQuadratic", [], "activation", "sigmoid"),
        ("mnist_lit.losses.BinaryCrossEntropy", [], "activation", "sigmoid"),
        (
            "mnist_lit.losses.LabelSmoothingCrossEntropy",
            ["--model.loss.smoothing=0.2"],
            "smoothing",
            0.2,
        ),
        ("mnist_lit.losses.FocalLoss", ["--model.loss.gamma=1.5"], "gamma", 1.5),
    ],
)
def test_loss_by_class_path(
    class_path: str,
    options: list[str],
    attribute: str,
    value: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--model.loss", class_path, *options, "--trainer.logger=false"]
    cli = MNISTLightningCLI(args=args, run=False)
    assert type(cli.model.loss).__name__ == class_path.rsplit(".", 1)[1]
    assert getattr(cli.model.loss, attribute) == value
    expected_activation = (
        "sigmoid" if "Sigmoid" in class_path or "Binary" in class_path else "softmax"
    )
    assert cli.model.output_activation == expected_activation
