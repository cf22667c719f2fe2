"""The files a well-kept repository has, and that they agree with each other: the license
in the SPDX form, the pre-commit hooks running what ``make lint`` runs, the hosted CI
running what ``.ci/run`` runs, and the package's type hints shipped."""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads TOML itself")

REPO = Path(__file__).resolve().parents[1]


def _lint_commands() -> list[str]:
    """The commands of the Makefile's ``lint`` target, without ``$(BIN)/``."""
    lines = (REPO / "Makefile").read_text().split("\nlint:")[1].split("\n\n")[0].splitlines()
    return [line.strip().removeprefix("$(BIN)/") for line in lines[1:] if line.startswith("\t")]


def test_the_license_is_declared_once_in_the_spdx_form() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["license"] == "MIT" and citation["version"] == project["version"]


def _program(command: str) -> str:
    """``ruff check .`` -> ``ruff check``, ``mypy`` -> ``mypy``: the program and its
    subcommand, if it has one."""
    words = command.split()
    return " ".join(words[:2]) if len(words) > 1 and words[1].isalpha() else words[0]


def test_pre_commit_runs_what_make_lint_runs() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    hooks = [h["entry"].removeprefix(".venv/bin/") for r in config["repos"] for h in r["hooks"]]
    commands = _lint_commands()
    assert len(commands) >= 5
    for command in commands:
        assert any(hook.startswith(_program(command)) for hook in hooks), (command, hooks)


def test_hosted_ci_runs_what_ci_runs() -> None:
    workflows = list((REPO / ".github" / "workflows").glob("*.yml"))
    assert workflows
    steps = [
        step.get("run", "")
        for workflow in workflows
        for job in yaml.safe_load(workflow.read_text())["jobs"].values()
        for step in job["steps"]
    ]
    assert "bash .ci/run" in steps
    assert "make check" in (REPO / ".ci" / "run").read_text()
    # The data step puts MNIST where .ci/run finds it.
    assert any(re.search(r"\.\./shared/data/MNIST/raw", step) for step in steps)


def test_the_package_ships_its_type_hints() -> None:
    assert (REPO / "mnist_lit" / "py.typed").is_file()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in data["package-data"]["mnist_lit"]


def test_the_readme_and_pyproject_name_the_same_tested_versions() -> None:
    def versions(text: str) -> dict[str, str]:
        return dict(re.findall(r"\b(torch|torchvision|lightning|torchmetrics|jsonargparse|"
                               r"optuna|Optuna) (\d+\.\d+(?:\.\d+)?)\b", text))  # fmt: skip

    readme = versions(" ".join((REPO / "README.md").read_text().split()))
    pyproject = versions(" ".join((REPO / "pyproject.toml").read_text().replace("#", "").split()))
    pyproject["optuna"] = pyproject.pop("Optuna", "")  # "tested with 5.1" follows its name
    assert readme, "the README names no tested versions"
    for name in ("torch", "torchvision", "lightning", "torchmetrics", "jsonargparse"):
        assert readme[name] == pyproject[name], (name, readme, pyproject)


def test_the_readme_shows_the_answer_as_a_committed_figure_the_study_draws() -> None:
    readme = (REPO / "README.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme)
    assert figures, "the README shows no figure"
    for figure in figures:
        assert (REPO / figure).stat().st_size > 10_000, figure
    # The first one is the study's own picture, and the README names what draws it.
    assert Path(figures[0]).name in (REPO / "mnist_lit" / "study" / "report.py").read_text()
    assert (
        "mnist-lit study --data-dir data --workers 2` as `outputs/study/accuracy.png"
        in " ".join(readme.split())
    )


def test_one_environment_variable_names_the_data_folder() -> None:
    """The tests, the notebooks, CI and the docs read the same variable."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    names: set[str] = set()
    for path in tracked:
        if (
            Path(path).suffix in (".py", ".ipynb", ".md", ".yml", ".yaml", "")
            and (REPO / path).is_file()
        ):
            text = (REPO / path).read_text(errors="ignore")
            names |= set(re.findall(r"\bMNIST\w*DATA_DIR\b", text))
    assert names == {"MNIST_LIT_DATA_DIR"}, names


def test_every_extra_asked_of_a_dependency_is_one_it_provides() -> None:
    """pip warns of an extra a package does not provide (and installs nothing for it); the
    name is compared as the package's metadata spells it."""
    from importlib import metadata

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [
        *project["dependencies"],
        *itertools.chain(*project["optional-dependencies"].values()),
    ]
    checked = 0
    for requirement in map(Requirement, wanted):
        if not requirement.extras or requirement.name == project["name"]:
            continue
        try:
            provided = metadata.metadata(requirement.name).get_all("Provides-Extra") or []
        except metadata.PackageNotFoundError:
            continue
        assert requirement.extras <= set(provided), (str(requirement), provided)
        checked += 1
    assert checked >= 2  # jsonargparse[signatures] and optuna-integration[pytorch-lightning]


def _marked_answer(text: str) -> list[str]:
    """The table between the README's answer markers."""
    block = text.split("<!-- the answer:")[1].split("<!-- end of the answer -->")[0]
    return [line for line in block.splitlines() if line.startswith("|")]


def test_the_readmes_answer_is_the_committed_studys_report() -> None:
    """The README quotes the table the report wrote, not a reading of it by hand."""
    readme = (REPO / "README.md").read_text()
    summary = (REPO / "docs" / "study" / "default" / "summary.md").read_text().splitlines()
    table = list(itertools.takewhile(lambda line: line.startswith("|"), summary[2:]))
    assert len(table) >= 9, "the report starts with no answer table"
    assert _marked_answer(readme) == table


def test_the_loss_studys_page_quotes_each_published_report() -> None:
    """docs/loss_study.md carries each published study's summary.md as the report wrote it:
    the answer table, and the per-network sections (their headings two levels down)."""
    page = (REPO / "docs" / "loss_study.md").read_text()
    for name in ("default", "contenders"):
        summary = (REPO / "docs" / "study" / name / "summary.md").read_text()
        body = summary[summary.index("\n## ") + 1 : summary.index("\n\nTraining time recorded")]
        marker = f"<!-- docs/study/{name}/summary.md -->\n"
        quoted = page.split(marker)[1].split(f"\n<!-- end of docs/study/{name}/summary.md -->")[0]
        assert quoted == body.replace("## ", "#### "), name
        lines = summary.splitlines()[2:]
        table = list(itertools.takewhile(lambda line: line.startswith("|"), lines))
        assert "\n".join(table) in page, name
