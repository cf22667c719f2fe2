"""Run folders: fits started at the same moment in one folder each get a version of their
own, claimed atomically, with nothing of one run in another's folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mnist_lit.cli import main
from mnist_lit.runs.tracking import claim_version
from tests.cli_helpers import CONSOLE_SCRIPT, TUTORIAL, fake_data

FITS = 4


def test_each_claim_gets_a_new_version_folder(tmp_path: Path) -> None:
    (tmp_path / "runs" / "version_3").mkdir(parents=True)
    assert [claim_version(tmp_path / "runs") for _ in range(3)] == [4, 5, 6]
    assert claim_version(tmp_path / "new") == 0 and (tmp_path / "new" / "version_0").is_dir()


@pytest.mark.slow
def test_fits_started_together_each_get_a_run_folder_of_their_own(
    fake_mnist_dir: Path, tmp_path: Path
) -> None:
    command = [CONSOLE_SCRIPT, "fit", "--config", TUTORIAL, "--trainer.max_epochs=1",
               *fake_data(fake_mnist_dir)]  # fmt: skip
    fits = [
        subprocess.Popen(command, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(FITS)
    ]  # fmt: skip
    outputs = [fit.communicate(timeout=300) for fit in fits]
    for fit, (_, err) in zip(fits, outputs, strict=True):
        assert fit.returncode == 0, err[-3000:]
        assert "will be deleted" not in err, err  # Lightning's warning of a folder in use
    runs = tmp_path / "logs" / "seed_cross_entropy"
    folders = sorted(p.name for p in runs.iterdir())
    assert folders == [f"version_{n}" for n in range(FITS)]
    said = sorted(line for out, _ in outputs for line in out.splitlines() if "run folder" in line)
    assert len({line.split(",")[0] for line in said}) == FITS, said
    for folder in runs.iterdir():
        assert len(list(folder.glob("events.out.tfevents.*"))) == 1, list(folder.iterdir())
        assert (folder / "config.yaml").is_file()
        assert len(list(folder.glob("checkpoints/best*.ckpt"))) == 1
        rows = (folder / "metrics.csv").read_text().splitlines()
        assert len(rows) == 3  # the header, and one epoch's training and validation rows


def test_default_root_dir_is_where_the_run_goes(
    fake_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    here, root = tmp_path / "here", tmp_path / "root"
    here.mkdir()
    monkeypatch.chdir(here)
    rooted = [*fake_data(fake_mnist_dir), f"--trainer.default_root_dir={root}"]
    main(["fit", "--config", TUTORIAL, "--trainer.max_epochs=1", *rooted])
    run = root / "logs" / "seed_cross_entropy" / "version_0"
    assert (run / "metrics.csv").is_file()
    (best,) = run.glob("checkpoints/best*.ckpt")
    assert f"run folder {run}" in capsys.readouterr().out
    assert list(here.iterdir()) == []
    main(["test", "--config", TUTORIAL, "--ckpt_path=best", *rooted])
    assert f"--ckpt_path best: {best}" in capsys.readouterr().err
