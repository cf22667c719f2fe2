"""Folders that keep what a tune or study was asked to do, and the comparison of what is
stored there with what is asked now (a rerun continues only the same work)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_lit.runs.errors import MnistLitError


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MnistLitError(f"{folder}: cannot create it ({error.strerror}).") from None


def differences(old: Any, new: Any, key: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested dictionaries.

    >>> differences({"model": {"lr": 0.5, "net": "MLP"}}, {"model": {"lr": 0.1, "net": "MLP"}})
    ['model.lr']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for name in sorted(set(old) | set(new), key=str):
            dotted = f"{key}.{name}" if key else str(name)
            found += differences(old.get(name), new.get(name), dotted)
        return found
    return [] if old == new else [key]
