"""One way to quiet logs and warnings: only while a block runs, restored afterwards."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping

# Warnings that are noise wherever this project runs Lightning.
NOISE = (
    # Testing or resuming a checkpoint from an earlier run is what --ckpt_path is for.
    r"The dirpath has changed from",
    # configs/debug/overfit_batches.yaml asks for it: Lightning turns the shuffle off.
    r"You requested to overfit but enabled",
    # Lightning 2.6 against newer torch; nothing for a user to do.
    r".*LeafSpec.*is deprecated",
    # Runs from Python (tune, study, lr_find) are what it is for here.
    r"LightningCLI's args parameter",
    # Metrics are logged per epoch.
    r".*smaller than the logging interval",
    # Batches are cut from tensors in memory: no workers needed.
    r".*does not have many workers",
)
# On a machine with SLURM's `srun` (a login node), Lightning's hint that a fit was not
# started by `srun`, given for every Trainer: said by the outermost block only (a command's
# own fit, once), never by a block within it (the fits a study or tuning runs) nor where
# NOISE_AND_SRUN is ignored (a study's worker). Only the hint: a job started by `srun` still
# gets Lightning's SLURM environment.
SRUN_NOTICE = r"The `srun` command is available on your system but is not used"
NOISE_AND_SRUN = (*NOISE, SRUN_NOTICE)
# Lightning's notices that every run would repeat: seeds, devices, batch counts.
RUN_NOTICES = {"lightning.pytorch": logging.WARNING, "lightning.fabric": logging.WARNING}


class _LightningChatter(logging.Filter):
    """Drops Lightning's tips that advertise cloud services, and its notice that it loads a
    checkpoint with ``weights_only=False``: it loads lr_find's own, or one that
    :func:`~mnist_lit.runs.checkpointing.read_checkpoint` has checked first."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("💡 Tip", "`weights_only` was not set"))


_depth = 0  # quiet blocks open, one within another


@contextlib.contextmanager
def quiet(levels: Mapping[str, int] | None = None, ignore: Iterable[str] = NOISE) -> Iterator[None]:
    """Within the block: the loggers named in ``levels`` at those levels, the warnings
    matching ``ignore`` silenced, Lightning's chatter dropped. All restored on exit."""
    global _depth
    levels = levels or {}
    saved = {name: logging.getLogger(name).level for name in levels}
    # Lightning's own handler where it has one; the loader's logger for any other handler.
    loader = logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector")
    handlers = [*logging.getLogger("lightning.pytorch").handlers, loader]
    no_chatter = _LightningChatter()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for handler in handlers:
        handler.addFilter(no_chatter)
    with warnings.catch_warnings():
        # Each block resets Python's registry of the warnings already given.
        if _depth > 0:
            warnings.filterwarnings("ignore", message=SRUN_NOTICE)
        for message in ignore:
            warnings.filterwarnings("ignore", message=message)
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            for handler in handlers:
                handler.removeFilter(no_chatter)
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
