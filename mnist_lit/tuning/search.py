"""Search files (docs/tuning.md): YAML mapping dotted config keys, as ``mnist-lit fit``
takes them, to a range or a list of choices; each trial passes one value per key to its fit::

    model.optimizer.lr: {low: 1.0e-3, high: 100, log: true}     # float, log-uniform
    data.batch_size: {low: 32, high: 256, type: int, log: true}
    model.loss: {choices: [mnist_lit.losses.CrossEntropy, mnist_lit.losses.Quadratic]}

A search made of choices only is a grid: every combination is tried once, in a seeded order.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mnist_lit.runs.catalog import LEARNING_RATE
from mnist_lit.runs.errors import MnistLitError

if TYPE_CHECKING:
    import optuna

_RANGE_FIELDS = {"low", "high", "log", "step", "type"}


@dataclass(frozen=True)
class Param:
    """One searched option: a float or int range, or a list of choices."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.integer:
            step = int(self.step or 1)
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> dict[str, Any]:
        """The range as plain values, to compare with a stored study."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        kind = "int" if self.integer else "float"
        return dict(low=self.low, high=self.high, log=self.log, step=self.step, type=kind)


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of a search file, in the file's order."""

    source: str
    params: tuple[Param, ...]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """One trial's values, by dotted config key."""
        return {p.key: p.suggest(trial) for p in self.params}

    def describe(self) -> dict[str, Any]:
        return {p.key: p.describe() for p in self.params}

    def grid(self) -> dict[str, list[Any]] | None:
        """Every key's choices when the search is made of choices only, else None."""
        if any(p.choices is None for p in self.params):
            return None
        return {p.key: list(p.choices or ()) for p in self.params}

    def grid_size(self) -> int | None:
        """How many combinations a grid holds (None: not a grid)."""
        grid = self.grid()
        return None if grid is None else math.prod(len(values) for values in grid.values())


def load_search(path: str | Path) -> SearchSpace:
    """Read and check a search file; every mistake is one message naming the file and key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise MnistLitError(f"--search {path}: cannot read it ({error.strerror}).") from None
    except yaml.YAMLError as error:
        raise MnistLitError(f"--search {path} is not valid YAML: {error}".strip()) from None
    if not isinstance(data, dict) or not data:
        raise MnistLitError(
            f"--search {path} must map config keys to ranges, e.g. "
            f"`{LEARNING_RATE}: {{low: 1.0e-3, high: 30, log: true}}`."
        )
    return SearchSpace(str(path), tuple(_param(path, str(k), v) for k, v in data.items()))


def _param(path: Path, key: str, spec: Any) -> Param:
    def bad(problem: str) -> MnistLitError:
        return MnistLitError(f"--search {path}: {key}: {problem}")

    if not isinstance(spec, dict):
        raise bad("give a range {low: L, high: H[, log: true]} or {choices: [...]}")
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"}:
            raise bad("choices stand alone, without low, high or log")
        if not isinstance(choices, list) or not choices:
            raise bad("choices must be a non-empty list")
        return Param(key, choices=tuple(_number(choice) for choice in choices))
    unknown = set(spec) - _RANGE_FIELDS
    if unknown:
        fields = ", ".join(sorted(_RANGE_FIELDS))
        raise bad(f"unknown field(s) {', '.join(sorted(unknown))}; a range takes {fields}")
    if "low" not in spec or "high" not in spec:
        raise bad("a range needs both low and high")
    low, high, step = (_number(spec.get(name)) for name in ("low", "high", "step"))
    log = spec.get("log", False)
    kind = spec.get("type", "int" if _all_int(low, high, step) and step else "float")
    if kind not in ("float", "int"):
        raise bad(f"type must be float or int, got {kind!r}")
    for name, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and not _is_number(value):
            raise bad(f"{name} must be a number, got {value!r}")
    if not isinstance(log, bool):
        raise bad(f"log must be true or false, got {log!r}")
    if not low < high:
        raise bad(f"low must be below high, got low {low}, high {high}")
    if log and low <= 0:
        raise bad(f"a log range must start above 0, got low {low}")
    if step is not None and (step <= 0 or log):
        raise bad("step must be positive, and cannot go with log")
    if kind == "int" and not _all_int(low, high, step):
        raise bad("an int range needs whole numbers for low, high and step")
    return Param(key, float(low), float(high), log, step, integer=kind == "int")


def _number(value: Any) -> Any:
    """YAML reads 1e-3 (no dot) as a string: take it as the number it spells."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _all_int(*values: Any) -> bool:
    return all(v is None or (_is_number(v) and float(v).is_integer()) for v in values)
