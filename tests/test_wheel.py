"""The built wheel: what it holds, and that it trains the tutorial's model by itself,
from a folder that is not a clone, with the README's own `--config configs/...`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.cli_helpers import REPO, fake_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")  # a copy: building writes into the source
    # Links are followed, as a checkout's mnist_lit/configs -> ../configs.
    shutil.copytree(REPO / "mnist_lit", source / "mnist_lit",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    built = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(built), str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    (found,) = built.glob("mnist_lit-*.whl")
    return found


def test_the_wheel_holds_the_page_the_configs_the_type_hints_and_the_license(wheel: Path) -> None:
    installed = set(zipfile.ZipFile(wheel).namelist())
    static = REPO / "mnist_lit" / "serve" / "static"
    assert {p.name for p in static.iterdir()} == {"index.html", "page.css", "page.js"}
    for page_file in static.iterdir():
        assert f"mnist_lit/serve/static/{page_file.name}" in installed
    configs = {str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.yaml")}
    assert len(configs) > 20 and {f"mnist_lit/{c}" for c in configs} <= installed
    assert "mnist_lit/py.typed" in installed
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in installed), installed


def test_the_installed_wheel_trains_the_tutorials_config_from_any_folder(
    wheel: Path, fake_mnist_dir: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
         str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"  # no configs/ here: they come from the wheel
    elsewhere.mkdir()
    program = (
        f"import mnist_lit; assert mnist_lit.__file__.startswith({str(site)!r})\n"
        "from mnist_lit.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, "fit", "--config", "configs/cross_entropy.yaml",
         *fake_data(fake_mnist_dir), "--trainer.max_epochs=1"],
        cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fit: run folder logs/" in done.stdout, done.stdout
    assert list((elsewhere / "logs").rglob("best*.ckpt"))
