"""The parts of ``mnist-lit serve`` on their own: the prepared image on its way to a worker,
and JSON arrays that Python reads but no client should send."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from mnist_lit.serve.inputs import InputError, Limits, forwarded_body, forwarded_image, prepare
from tests.cli_helpers import REPO


def test_the_prepared_image_reaches_the_worker_unchanged() -> None:
    digit = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    assert torch.equal(forwarded_image(json.loads(forwarded_body(digit))), digit)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" + b"[" * 100_000, "the body is not valid JSON"),
        (("[" + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]").encode(),
         "row 0 holds NaN"),
        (("[" + ",".join(["[" + ",".join(["Infinity"] * 28) + "]"] * 28) + "]").encode(),
         "row 0 holds Infinity"),
        (("[" + ",".join(["[" + ",".join(["true"] * 28) + "]"] * 28) + "]").encode(),
         "row 0 holds true"),
        (b"\xff\xfe[[0]]", "the body is not valid JSON"),
    ],
    ids=["deeply-nested", "nan", "infinity", "booleans", "not-utf8"],
)  # fmt: skip
def test_json_that_python_reads_but_is_no_image_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(InputError) as refused:
        prepare(body, "application/json", Limits())
    assert refused.value.status in (400, 422) and message in refused.value.message


@pytest.mark.slow
def test_the_page_is_installed_with_the_package(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building writes into the source tree
    shutil.copytree(REPO / "mnist_lit", source / "mnist_lit",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(tmp_path / "wheel"), str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("mnist_lit-*.whl")
    installed = set(zipfile.ZipFile(wheel).namelist())
    static = REPO / "mnist_lit" / "serve" / "static"
    assert {p.name for p in static.iterdir()} == {"index.html", "page.css", "page.js"}
    for page_file in static.iterdir():
        assert f"mnist_lit/serve/static/{page_file.name}" in installed
