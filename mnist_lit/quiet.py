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
# Lightning's notices that every run would repeat: seeds, devices, batch counts.
RUN_NOTICES = {"lightning.pytorch": logging.WARNING, "lightning.fabric": logging.WARNING}


class _LightningChatter(logging.Filter):
    """Drops Lightning's tips that advertise cloud services, and its notice that it loads a
    checkpoint with ``weights_only=False``: it loads lr_find's own, or one that
    :func:`~mnist_lit.checkpointing.read_checkpoint` has checked first."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("💡 Tip", "`weights_only` was not set"))


@contextlib.contextmanager
def quiet(levels: Mapping[str, int] | None = None, ignore: Iterable[str] = NOISE) -> Iterator[None]:
    """Within the block: the loggers named in ``levels`` at those levels, the warnings
    matching ``ignore`` silenced, Lightning's chatter dropped. All restored on exit."""
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
        for message in ignore:
            warnings.filterwarnings("ignore", message=message)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(no_chatter)
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
