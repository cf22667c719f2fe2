"""Every notebook runs top to bottom (on the fake data, so in seconds), as the README runs
them (``jupyter nbconvert --execute``), and clean: nothing on stderr, no warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

from tests.fake_mnist import write_fake_mnist

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# The notebooks extra's front end, beside this Python.
JUPYTER = Path(sys.executable).with_name("jupyter")
# What each notebook must print, beyond running without errors.
EXPECTED_TEXT = {
    "00_quickstart": "test accuracy",
    "01_entropy_and_cross_entropy": "0.9163 nats = 1.3219 bits",
    "02_loss_comparison": "test accuracy",
    "03_loss_study": "seeds per network and loss",
}
# Notebooks whose plots must render (as PNG outputs), and how many at least.
EXPECTED_PLOTS = {
    "00_quickstart": 1,
    "01_entropy_and_cross_entropy": 3,
    "02_loss_comparison": 5,
    "03_loss_study": 2,
}
# Output that a notebook run clean never shows: warnings, Lightning's tips.
NOISE = re.compile(r"Warning\b|warnings\.warn|💡 Tip")


def _noise(notebook: NotebookNode) -> list[str]:
    """The stderr streams and the outputs that carry a warning, of every code cell."""
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    return [
        o.get("text", "") or str(o.get("data", {}).get("text/plain", ""))
        for o in outputs
        if o.get("name") == "stderr" or NOISE.search(o.get("text", ""))
    ]


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean_as_the_readme_runs_it(path: Path, tmp_path: Path) -> None:
    # The notebooks hold out the default 5,000 validation images: leave 600 to train on.
    data = write_fake_mnist(tmp_path / "data", n_train=5_600)
    env = {**os.environ, "MNIST_LIT_DATA_DIR": str(data), "MNIST_LIT_EPOCHS": "1"}
    env["MNIST_LIT_VAL_SIZE"] = "100"
    env.pop("MPLBACKEND", None)  # Jupyter's own, which draws into the notebook
    # The README's command, writing the executed copy beside the test.
    command = [str(JUPYTER), "nbconvert", "--to", "notebook", "--execute", str(path)]
    subprocess.run([*command, "--output-dir", str(tmp_path)], env=env, check=True, timeout=600)
    notebook = nbformat.read(tmp_path / path.name, as_version=4)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not _noise(notebook), _noise(notebook)
    assert any(EXPECTED_TEXT[path.stem] in o.get("text", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= EXPECTED_PLOTS.get(path.stem, 0)


def test_every_notebook_is_checked() -> None:
    assert {path.stem for path in NOTEBOOKS} == set(EXPECTED_TEXT)


def test_notebooks_are_committed_with_their_outputs_and_small() -> None:
    """Executed, so that a code-hosting site shows their plots; small, and without this
    machine's paths."""
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name
        assert not _noise(notebook), (path.name, _noise(notebook))
        assert any(EXPECTED_TEXT[path.stem] in o.get("text", "") for o in outputs), path.name
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) >= EXPECTED_PLOTS.get(path.stem, 0), path.name
        assert path.stat().st_size < 1_500_000, f"{path.name}: keep its outputs small"
        text = path.read_text()
        checkout = str(Path(__file__).resolve().parents[1])
        assert checkout not in text and str(Path.home()) not in text, path.name
