from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mnist_lit.data.mnist import RAW_FILES
from tests.fake_mnist import write_fake_mnist

REPO = Path(__file__).resolve().parents[1]


# What may change in the checkout while the tests run: git's and the tools' own folders.
_NOT_WATCHED = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                ".import_linter_cache"}  # fmt: skip


def _checkout_files() -> dict[str, float]:
    """Every file of the checkout (but the tools' folders), with its time of change."""
    files = {}
    for folder, subfolders, names in os.walk(REPO):
        subfolders[:] = [s for s in subfolders if s not in _NOT_WATCHED]
        for name in names:
            path = os.path.join(folder, name)
            with contextlib.suppress(FileNotFoundError):
                files[os.path.relpath(path, REPO)] = os.stat(path).st_mtime
    return files


@pytest.fixture(scope="session", autouse=True)
def _checkout_untouched() -> Iterator[None]:
    """No test writes outside its own temporary folder: not into the user's runs, data or
    sources (a writer flushed after its test has left its folder once did)."""
    before = _checkout_files()
    yield
    after = _checkout_files()
    changed = sorted(p for p in after.keys() | before.keys() if after.get(p) != before.get(p))
    assert not changed, f"the tests wrote into the checkout: {changed[:20]}"


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Runs inside the test process set variables (Lightning's PL_GLOBAL_SEED, W&B's
    WANDB_SERVICE) that later tests, and the processes they start, would inherit."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def fake_mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir with 600 training and 200 test images in the IDX format."""
    return write_fake_mnist(tmp_path_factory.mktemp("fake_mnist"))


@pytest.fixture(scope="session")
def one_worker(fake_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny study of tests.study_helpers with one worker (in this process), and what it
    printed: the numbers every other way of running it must give."""
    from tests.study_helpers import run_one_worker

    return run_one_worker(fake_mnist_dir, tmp_path_factory.mktemp("one") / "out")


def _real_mnist_source() -> Path | None:
    candidates = [
        os.environ.get("MNIST_LIT_DATA_DIR"),
        REPO / "data",
        REPO.parent / "shared" / "data",
    ]
    for candidate in candidates:
        if candidate and all((Path(candidate) / "MNIST" / "raw" / f).is_file() for f in RAW_FILES):
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def real_mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the real MNIST files (torchvision extracts next to them). Skipped
    where they are not found, unless ``MNIST_LIT_REQUIRE_DATA=1`` makes that a failure."""
    source = _real_mnist_source()
    if source is None:
        reason = (
            "real MNIST not found: set MNIST_LIT_DATA_DIR to a folder with MNIST/raw/*.gz "
            "(or put the four files in data/MNIST/raw/)"
        )
        if os.environ.get("MNIST_LIT_REQUIRE_DATA") == "1":  # `make check` sets it
            pytest.fail(reason)
        pytest.skip(reason)
    copy = tmp_path_factory.mktemp("real_mnist")
    shutil.copytree(source / "MNIST" / "raw", copy / "MNIST" / "raw")
    for f in (copy / "MNIST" / "raw").iterdir():
        f.chmod(0o644)
    return copy


@pytest.fixture(scope="session")
def postgres() -> Iterator[Callable[[], str]]:
    """A real PostgreSQL server on a loopback port (tests.postgres); ``postgres()`` creates
    a new database on it and gives its URL."""
    from tests.postgres import postgres_server

    with postgres_server() as new_database:
        yield new_database


@pytest.fixture(scope="session")
def small_checkpoints(
    fake_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """One-epoch checkpoints on the fake data: ``tutorial`` (softmax regression, pixels in
    [0, 1]) and ``mlp`` (normalised pixels), for the export and serving tests."""
    from tests.serve_helpers import train_small_checkpoints

    return train_small_checkpoints(fake_mnist_dir, tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def served_url(
    small_checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`mnist-lit serve` with both small checkpoints on a loopback port, with small size
    limits (tests.serve_helpers.MAX_BYTES, MAX_PIXELS); its base URL."""
    from tests.serve_helpers import MAX_BYTES, MAX_PIXELS, serving

    limits = ["--max_bytes", str(MAX_BYTES), "--max_pixels", str(MAX_PIXELS)]
    with serving(small_checkpoints, *limits, cwd=tmp_path_factory.mktemp("serve")) as url:
        yield url
