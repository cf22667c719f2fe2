"""What the CLI tests share: the tutorial's config, quiet-run flags, and ways to run the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_lit.cli import main

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = str(REPO / "configs" / "seed_cross_entropy.yaml")
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
CONSOLE_SCRIPT = str(Path(sys.executable).with_name("mnist-lit"))


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``mnist-lit args`` in-process; it must fail as a user's mistake: exit 2, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def console(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script ``mnist-lit`` as a user does, in a new process."""
    return subprocess.run(
        [CONSOLE_SCRIPT, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def console_error(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run the console script; it must fail as a user's mistake. Return its stderr."""
    result = console(*args, cwd=cwd, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def with_pythonpath(folder: Path) -> dict[str, str]:
    """The environment for a run that imports a module the test wrote into ``folder``."""
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def fake_data(data_dir: Path) -> list[str]:
    """Options that point a run at the fake data, quietly."""
    return [f"--data.data_dir={data_dir}", "--data.val_size=100", *FAST]


def fit_one_epoch(data_dir: Path) -> None:
    """Fit the tutorial's config for one epoch in the current folder (logs/ goes there)."""
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=1", *fake_data(data_dir)])


def free_port() -> int:
    """A loopback port nothing listens on (LitServe wants 1024 or above)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
