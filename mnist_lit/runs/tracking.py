"""Where a run's results go: its folder ``logs/<experiment>/version_<N>/``, and the trackers
(TensorBoard, MLflow, W&B) that follow it under the same names.

Every logger of a run takes its names from the one ``experiment`` option: CSV and
TensorBoard write into the same run folder, MLflow files the run under the experiment with
the folder's version as its name, W&B groups it by experiment.
"""

from __future__ import annotations

import csv
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import (
    CSVLogger,
    Logger,
    MLFlowLogger,
    TensorBoardLogger,
    WandbLogger,
)
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure

from mnist_lit.runs.errors import MnistLitError

# Loggers that write into the run folder itself: <save_dir>/<name>/version_<N>.
_FOLDER_LOGGERS = ("CSVLogger", "TensorBoardLogger")
# The extra of this package that brings a tracker's own package.
EXTRAS = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}


def logger_configs(config: Namespace) -> list[Namespace]:
    """The ``class_path``/``init_args`` of every logger in a subcommand's ``config``."""
    loggers = config.get("trainer.logger")
    loggers = loggers if isinstance(loggers, list) else [loggers]
    return [logger for logger in loggers if isinstance(logger, Namespace)]


def runs_folder(config: Namespace) -> Path:
    """``<save_dir>/<experiment>``, where this config's runs get their version folders; a
    relative ``save_dir`` lies in ``trainer.default_root_dir`` (default: here)."""
    root = Path(config.get("trainer.default_root_dir") or ".")
    for logger in logger_configs(config):
        save_dir = logger.get("init_args.save_dir")
        if _kind(logger) in _FOLDER_LOGGERS and save_dir:
            return root / save_dir / config["experiment"]
    return root / config["experiment"]


def name_the_run(config: Namespace, claim: bool = True, version: int | None = None) -> Path | None:
    """Give every logger of ``config`` the experiment's name and one version number:
    ``version`` (a run continued in its own folder), or the next free one. With ``claim``,
    a new version's folder is created for this run alone when the run folder's loggers need
    one: returned, for the run to remove if it is left empty."""
    name_the_loggers(config)
    unnamed = [
        logger.init_args
        for logger in logger_configs(config)
        if _kind(logger) in _FOLDER_LOGGERS and logger.init_args.get("version") is None
    ]
    folder = runs_folder(config)
    claimed = version is None and unnamed and claim and getattr(rank_zero_only, "rank", 0) == 0
    if version is None:
        version = claim_version(folder) if claimed else next_version(folder)
    for args in unnamed:
        args.version = version
    root = config.get("trainer.default_root_dir")
    for logger in logger_configs(config):
        args, kind = logger.init_args, _kind(logger)
        if kind in _FOLDER_LOGGERS and root and args.get("save_dir"):
            # Absolute, so that the config saved with the run starts the same run again.
            args.save_dir = str((Path(root) / args.save_dir).resolve())
        elif kind == "MLFlowLogger":
            args.run_name = args.get("run_name") or f"version_{version}"
            args.tracking_uri = absolute_sqlite(args.get("tracking_uri"))
        elif kind == "WandbLogger":
            args.name = args.get("name") or f"{config['experiment']}/version_{version}"
    return folder / f"version_{version}" if claimed else None


def hide_from_step(config: Namespace, step: int) -> None:
    """TensorBoard hides what a continued run logged at ``step`` and after, before it
    stopped: the steps past its checkpoint, which the run now takes again (SummaryWriter's
    ``purge_step``). The CSV rows are kept as :func:`keep_rows_before` says."""
    for logger in logger_configs(config):
        if _kind(logger) == "TensorBoardLogger" and logger.init_args.get("purge_step") is None:
            logger.init_args.purge_step = step


@rank_zero_only
def keep_rows_before(logger: CSVLogger, step: int) -> None:
    """Keep the rows of ``logger``'s ``metrics.csv`` logged before ``step``, when a run
    continues in its own folder. Lightning's CSV logger deletes the file of a folder it
    writes into again, so the rows are read first and logged anew; a copy of the file is
    kept until they are on disk again, and read instead if a crash left it."""
    path = Path(logger.log_dir) / "metrics.csv"
    copy = path.with_name(f".{path.name}.earlier")
    if not copy.exists():
        if not path.exists():
            return
        shutil.copyfile(path, copy)
    with copy.open(newline="") as file:
        rows = [parsed for row in csv.DictReader(file) if (parsed := _parsed(row))]
    with warnings.catch_warnings():  # "Previous log files ... will be deleted": kept here
        warnings.filterwarnings("ignore", "Experiment logs directory")
        for row_step, values in rows:
            if row_step < step:
                logger.log_metrics(values, row_step)
        logger.save()
    copy.unlink()


def _parsed(row: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    """A row of metrics.csv as it was logged (``3`` stays an int, the epoch), or None for
    one that is not whole: cut short by a kill (fields missing), or damaged."""
    if None in row or None in row.values():
        return None
    try:
        values = {key: _number(value) for key, value in row.items() if value}
        return int(values.pop("step")), values
    except (KeyError, ValueError):
        return None


def _number(text: str) -> float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def name_the_loggers(config: Namespace) -> None:
    """File every logger of ``config`` under the experiment's name (no version: a config
    printed or saved for later runs must not fix one)."""
    experiment = config["experiment"]
    for logger in logger_configs(config):
        args, kind = logger.init_args, _kind(logger)
        if kind in _FOLDER_LOGGERS:
            args.name = experiment
        elif kind == "MLFlowLogger":
            args.experiment_name = experiment
        elif kind == "WandbLogger":
            args.group = experiment


def absolute_sqlite(uri: str | None) -> str | None:
    """``sqlite:///relative/path`` made absolute, other URIs as they are. MLflow keeps one
    database connection per URI for the life of the process, so a relative one would go on
    writing into the folder of the first run started (a notebook that changes folder)."""
    prefix = "sqlite:///"
    if uri and uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri.removeprefix(prefix)).resolve())
    return uri


def claim_version(folder: Path) -> int:
    """The first ``version_<N>`` free in ``folder``, created now: runs that start together
    each get one of their own, as creating a folder is atomic. (The other processes of a
    distributed run take the version their first process broadcasts.)"""
    folder.mkdir(parents=True, exist_ok=True)
    version = next_version(folder)
    while True:
        try:
            (folder / f"version_{version}").mkdir()
            return version
        except FileExistsError:  # another run took it a moment ago
            version += 1


def next_version(folder: Path) -> int:
    """The first ``version_<N>`` not yet in ``folder``."""
    numbers = [version_number(path) for path in folder.glob("version_*")]
    return max(numbers, default=-1) + 1


def version_number(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match.group(1)) if match else -1


def _kind(logger: Namespace) -> str:
    return str(logger.get("class_path", "")).rsplit(".", 1)[-1]


class ConfigToTrackers(SaveConfigCallback):
    """Saves the resolved config as ``config.yaml`` in the run folder, as LightningCLI does,
    and gives it to every tracker too; the model's and data's hyperparameters reach them
    through Lightning itself."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Overridden: a run folder that holds a run already (the working folder itself,
        # with --trainer.logger false) is one message, not Lightning's traceback.
        try:
            super().setup(trainer, pl_module, stage)
        except RuntimeError as error:
            if "to NOT exist" not in str(error):
                raise
            folder = trainer.log_dir
            raise MnistLitError(
                f"{folder} holds a run already ({self.config_filename}, its checkpoints), and "
                "this run would write over it: with --trainer.logger false a run writes into "
                "--trainer.default_root_dir itself. Give another --trainer.default_root_dir, "
                "or keep the logger (each run its own logs/<experiment>/version_<N>/)."
            ) from None

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config, skip_unset=False)
        for logger in trainer.loggers:  # as each tracker keeps files
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("config", f"```yaml\n{text}```")
            elif isinstance(logger, MLFlowLogger):
                logger.experiment.log_text(logger.run_id, text, "config.yaml")
            elif isinstance(logger, WandbLogger):
                logger.experiment.config.update({"config_yaml": text}, allow_val_change=True)


def log_figure(logger: Logger, name: str, figure: Figure, path: Path, step: int = 0) -> None:
    """Record ``figure``, already saved as the PNG ``path``, with ``logger``'s run under
    ``name`` (e.g. ``test/confusion_matrix``), as that tracker keeps images."""
    if isinstance(logger, TensorBoardLogger):
        logger.experiment.add_figure(name, figure, global_step=step, close=False)
    elif isinstance(logger, MLFlowLogger):
        logger.experiment.log_figure(logger.run_id, figure, f"figures/{path.name}")
    elif isinstance(logger, WandbLogger):
        logger.log_image(key=name, images=[str(path)])
