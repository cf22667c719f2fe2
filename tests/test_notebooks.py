"""Every notebook runs top to bottom (on the fake data, so in seconds)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.fake_mnist import write_fake_mnist

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# What each notebook must print, beyond running without errors.
EXPECTED_TEXT = {
    "00_quickstart": "test accuracy",
    "01_entropy_and_cross_entropy": "0.9163 nats = 1.3219 bits",
    "02_loss_comparison": "test accuracy",
    "03_loss_study": "seeds per network and loss",
}
# Notebooks whose plots must render (as PNG outputs), and how many at least.
EXPECTED_PLOTS = {"01_entropy_and_cross_entropy": 3, "02_loss_comparison": 5, "03_loss_study": 2}


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The notebooks hold out the default 5,000 validation images: leave 600 to train on.
    monkeypatch.setenv("MNIST_LIT_DATA_DIR", str(write_fake_mnist(tmp_path, n_train=5_600)))
    monkeypatch.setenv("MNIST_LIT_EPOCHS", "1")
    monkeypatch.setenv("MNIST_LIT_VAL_SIZE", "100")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=300, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
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
        assert any(EXPECTED_TEXT[path.stem] in o.get("text", "") for o in outputs), path.name
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) >= EXPECTED_PLOTS.get(path.stem, 0), path.name
        assert path.stat().st_size < 1_500_000, f"{path.name}: keep its outputs small"
        text = path.read_text()
        checkout = str(Path(__file__).resolve().parents[1])
        assert checkout not in text and str(Path.home()) not in text, path.name
