"""What the CLI tests share: the tutorial's config, quiet-run flags, and a failed run's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_lit.cli import main

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = str(REPO / "configs" / "seed_cross_entropy.yaml")
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``mnist-lit args`` in-process; it must fail as a user's mistake: exit 2, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def fake_data(data_dir: Path) -> list[str]:
    """Options that point a run at the fake data, quietly."""
    return [f"--data.data_dir={data_dir}", "--data.val_size=100", *FAST]


def fit_one_epoch(data_dir: Path) -> None:
    """Fit the tutorial's config for one epoch in the current folder (logs/ goes there)."""
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=1", *fake_data(data_dir)])
