"""The study folder: what each fit of the study gave, written by the study's own process
as each result arrives, and read back by the next run of the same command (the resume).
Its layout is written here and nowhere else:

```
<study-dir>/study.yaml                                   the plan, checked on every rerun
<study-dir>/tuning/<network>/<loss>/round_<k>/lr_<rate>/ result.json, config.yaml
<study-dir>/tuning/<network>/<loss>/best.yaml            the chosen rate's config
<study-dir>/runs/<network>/<loss>/seed_<s>/              result.json, config.yaml,
                                                         test_predictions.npy, best.ckpt
<study-dir>/test_labels.npy                              the 10,000 test labels, in order
<study-dir>/invocations.csv                              each invocation's wall time
<study-dir>/study.lock                                   held by the study running on it
```

Every file is written atomically (a temporary file beside it, then a rename), so a full
disk or a kill leaves the file before or the file after, never a part. A fit's
``result.json`` is written last: a folder without one holds no result, and its fit runs
again. A record found damaged (cut short, say, by a copy that ran out of space) is set
aside as ``<name>.damaged`` and its fit runs again.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import fcntl
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.fit import FitResult
from mnist_lit.runs.records import differences, make_folder
from mnist_lit.study.plan import Plan

MANIFEST = "study.yaml"
RESULT = "result.json"
INVOCATIONS = "invocations.csv"
INVOCATION_COLUMNS = ["started", "seconds", "workers", "host", "ended"]
LOCK = "study.lock"
PREDICTIONS = "test_predictions.npy"


@dataclass(frozen=True)
class TuningFit:
    """A fit of the tuning: one rate of one network and loss, for one round's epochs."""

    network: str
    loss: str
    lr: float
    round: int
    epochs: int

    def __str__(self) -> str:
        return f"{self.network}, {self.loss}, lr {self.lr:.3g}, {self.epochs} epochs"


@dataclass(frozen=True)
class SeedFit:
    """A fit at the tuned rate with one seed, for the network's full epochs, tested once."""

    network: str
    loss: str
    seed: int
    lr: float

    def __str__(self) -> str:
        return f"{self.network}, {self.loss}, seed {self.seed}"


# A result is its fit and what the fit gave: its ``result.json`` holds the fields of both.
@dataclass(frozen=True)
class TuningResult(TuningFit):
    """What a tuning fit gave: its validation curve, and whether it diverged."""

    val_acc: list[float]
    val_ce: list[float]
    diverged: bool
    seconds: float

    @property
    def value(self) -> float | None:
        """The best epoch's validation accuracy; None when the fit diverged."""
        return None if self.diverged else max(self.val_acc)


@dataclass(frozen=True)
class SeedResult(SeedFit):
    """One seed of one network and loss, trained at the tuned rate and tested once."""

    test_acc: float
    test_ce: float
    test_ece: float
    test_brier: float
    test_ce_scaled: float  # the probability metrics after temperature scaling
    test_ece_scaled: float
    test_brier_scaled: float
    temperature: float  # fitted on the validation split
    val_acc_best: float
    best_epoch: int
    epochs_to_threshold: int | None
    threshold: float
    val_acc: list[float]
    diverged: bool
    seconds: float


def record_of(
    fit: TuningFit | SeedFit, result: FitResult, threshold: float
) -> TuningResult | SeedResult:
    """What ``fit`` gave, as its ``result.json`` keeps it (``threshold``: its network's)."""
    run = {name: getattr(result, name) for name in ("val_acc", "diverged", "seconds")}
    if isinstance(fit, TuningFit):
        if not result.val_acc and not result.diverged:
            raise MnistLitError(f"{fit}: the fit ran no validation epoch.")
        return TuningResult(**asdict(fit), val_ce=result.val_ce, **run)
    assert result.test is not None, "a seed's fit is tested"
    metrics: dict[str, Any] = result.test.metrics  # test_acc to temperature
    return SeedResult(
        **asdict(fit),
        **metrics,
        val_acc_best=max(result.val_acc, default=float("nan")),
        best_epoch=result.best_epoch,
        epochs_to_threshold=epochs_to_reach(result.val_acc, threshold),
        threshold=threshold,
        **run,
    )


def epochs_to_reach(val_acc: list[float], threshold: float) -> int | None:
    """The first epoch (from 1) whose validation accuracy reaches ``threshold``, if any.

    >>> epochs_to_reach([0.85, 0.91, 0.93], 0.9), epochs_to_reach([0.85], 0.9)
    (2, None)
    """
    return next((epoch for epoch, acc in enumerate(val_acc, 1) if acc >= threshold), None)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, flushed to the disk
    before it replaces ``path``: a full disk fails here, leaving the file before intact."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with partial.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # where the disk allocates late, a full one fails here
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        error.filename = error.filename or str(path)
        raise


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def set_aside(path: Path, problem: str) -> None:
    """Rename a damaged record to ``<name>.damaged``, out of the study's way, and say so."""
    aside = path.with_name(path.name + ".damaged")
    path.replace(aside)
    print(f"{path}: damaged ({problem}); set aside as {aside.name}, its fit runs again.")


class StudyFolder:
    """The files of one study (see the module's docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._invocations: list[list[str]] = []  # invocations.csv, this one last
        self._started = 0.0  # this invocation's start, on the monotonic clock
        self.workers = 0  # this invocation's fits at once

    def tuning_dir(self, network: str, loss: str) -> Path:
        return self.root / "tuning" / network / loss

    def fit_dir(self, fit: TuningFit | SeedFit) -> Path:
        if isinstance(fit, TuningFit):
            return self.tuning_dir(fit.network, fit.loss) / f"round_{fit.round}" / f"lr_{fit.lr!r}"
        return self.root / "runs" / fit.network / fit.loss / f"seed_{fit.seed}"

    @property
    def test_labels(self) -> Path:
        return self.root / "test_labels.npy"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock for the block: a second study started on the same folder
        is refused, naming the process that holds it. The lock is the kernel's (flock), so
        it ends with its process, killed or not."""
        if self.root.exists() and not self.root.is_dir():
            raise MnistLitError(
                f"--study-dir {self.root} is a file, not a folder: choose a folder (a new one, "
                "or the folder of the study to continue)."
            )
        make_folder(self.root)
        with (self.root / LOCK).open("a+") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "another process"
                raise MnistLitError(
                    f"--study-dir {self.root} is in use by another study ({holder}): wait for "
                    "it to end, or give another --study-dir."
                ) from None
            with contextlib.suppress(OSError):  # on a full disk the lock holds unsigned
                file.truncate(0)
                file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
                file.flush()
            yield  # the lock ends when the file closes

    def check_plan(self, plan: Plan) -> None:
        """Record the plan in a new study folder; in an old one, insist on the same plan."""
        make_folder(self.root)
        path = self.root / MANIFEST
        wanted = plan.describe()
        if path.is_file():
            stored = yaml.safe_load(path.read_text())
            if stored != wanted:
                raise MnistLitError(
                    f"--study-dir {self.root} holds a study of another configuration "
                    f"({', '.join(differences(stored, wanted))} differ). Give a new "
                    f"--study-dir, or the options it was started with (see {path})."
                )
            return
        if any(p.name != LOCK for p in self.root.iterdir()):
            raise MnistLitError(
                f"--study-dir {self.root} is not empty and holds no {MANIFEST}: give a new or "
                "empty folder."
            )
        write_atomically(path, yaml.safe_dump(wanted, sort_keys=False).encode())

    def write(self, record: TuningResult | SeedResult, result: FitResult) -> None:
        """Keep what a fit gave: its config, for a seed its test predictions and best
        checkpoint, and last, atomically, its ``result.json``."""
        folder = self.fit_dir(record)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RESULT).unlink(missing_ok=True)
        write_atomically(folder / "config.yaml", result.config.encode())
        tested = result.test
        if tested is not None:
            write_atomically(folder / PREDICTIONS, npy_bytes(tested.predictions))
            if tested.checkpoint is not None:
                write_atomically(folder / "best.ckpt", tested.checkpoint)
            if not self.test_labels.is_file():
                write_atomically(self.test_labels, npy_bytes(tested.labels))
        write_atomically(folder / RESULT, json.dumps(asdict(record), indent=1).encode())
        self._save_invocation(ended=False)  # a kill now still counts the time until here

    def read(self, network: str, loss: str) -> tuple[list[TuningResult], list[SeedResult]]:
        """Every tuning fit and every seed of ``network`` and ``loss`` written so far; one
        found damaged is set aside, and so not among them."""
        tuning = self.tuning_dir(network, loss).glob(f"round_*/lr_*/{RESULT}")
        seeds = (self.root / "runs" / network / loss).glob(f"seed_*/{RESULT}")
        tuned = [_read_record(TuningResult, p) for p in sorted(tuning)]
        tested = [_read_record(SeedResult, p) for p in sorted(seeds)]
        return (
            [r for r in tuned if r is not None],
            [r for r in tested if r is not None and self._predictions_readable(r)],
        )

    def _predictions_readable(self, result: SeedResult) -> bool:
        """Whether a seed's test predictions load; if not, its result is set aside too."""
        path = self.fit_dir(result) / PREDICTIONS
        try:
            np.load(path)
        except (OSError, ValueError, EOFError) as error:
            set_aside(path, f"{type(error).__name__}: {first_line(error)}")
            (path.parent / RESULT).replace(path.parent / f"{RESULT}.damaged")
            return False
        return True

    def predictions(self, result: SeedResult) -> np.ndarray:
        return np.load(self.fit_dir(result) / PREDICTIONS)

    def write_best_config(self, best: TuningResult) -> None:
        """The chosen rate's last-round config, as ``mnist-lit fit --config`` takes it."""
        path = self.tuning_dir(best.network, best.loss) / "best.yaml"
        header = (
            f"# The rate chosen for {best.network} with {best.loss}: lr {best.lr:g}, "
            f"validation accuracy {best.value:.4f} after {best.epochs} epochs.\n"
            f"# Train it again: mnist-lit fit --config {path}\n"
        )
        text = header + (self.fit_dir(best) / "config.yaml").read_text()
        write_atomically(path, text.encode())

    def begin_invocation(self, workers: int) -> None:
        """Add this invocation to ``invocations.csv``, as not ended: one that is killed
        stays there with the time until its last result. A study resumed after a stop took
        the sum of its invocations."""
        self._invocations = self._invocation_rows()
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self._invocations.append([started, "0.0", "", socket.gethostname(), "False"])
        self._started, self.workers = time.monotonic(), workers
        self._save_invocation(ended=False)

    def end_invocation(self, ended: bool) -> None:
        """This invocation's wall time, and whether it ran to its end."""
        self._save_invocation(ended)

    def _save_invocation(self, ended: bool) -> None:
        if not self._invocations:  # no invocation begun: a fit written by a test
            return
        seconds = time.monotonic() - self._started
        row = self._invocations[-1]
        row[1:] = [f"{seconds:.1f}", str(self.workers), socket.gethostname(), str(ended)]
        text = io.StringIO()
        csv.writer(text).writerows([INVOCATION_COLUMNS, *self._invocations])
        write_atomically(self.root / INVOCATIONS, text.getvalue().encode())

    def _invocation_rows(self) -> list[list[str]]:
        """The rows of ``invocations.csv`` so far, without its header; a row cut short (or
        a file that lost its header) loses no other row."""
        path = self.root / INVOCATIONS
        if not path.is_file():
            return []
        with path.open(newline="") as file:
            rows = list(csv.reader(file))
        return [row for row in rows if len(row) == len(INVOCATION_COLUMNS)
                and row != INVOCATION_COLUMNS and _is_number(row[1])]  # fmt: skip

    def wall_time(self) -> str:
        """``18.5 min in 2 invocations (2 workers)``, from ``invocations.csv``, with those
        that did not run to their end (stopped, failed or killed) named."""
        rows = [dict(zip(INVOCATION_COLUMNS, row, strict=True)) for row in self._invocation_rows()]
        minutes = sum(float(r["seconds"]) for r in rows) / 60
        workers = ", ".join(dict.fromkeys(r["workers"] for r in rows))
        count = f"{len(rows)} invocation{'s' * (len(rows) != 1)}"
        text = f"{minutes:.1f} min in {count} ({workers} worker{'s' * (workers != '1')})"
        unfinished = [f"{r['started']} on {r['host']}" for r in rows if r["ended"] != "True"]
        if unfinished:
            text += f"; not run to their end (stopped or killed): {', '.join(unfinished)}"
        return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_record(kind: type[TuningResult] | type[SeedResult], path: Path) -> Any:
    """The record in ``path``; None, with the file set aside, where it does not read."""
    try:
        return kind(**json.loads(path.read_text()))
    except (ValueError, TypeError, UnicodeDecodeError) as error:  # cut short, or not ours
        set_aside(path, f"{type(error).__name__}: {first_line(error)}")
        return None
