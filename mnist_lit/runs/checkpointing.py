"""Checkpoints: written whole or not at all, named, found again, and checked before use.

Every ``mnist-lit fit`` writes two files per run folder: the best epoch by validation
accuracy (``best-epochEE-accA.AAAA.ckpt``) and ``last.ckpt``, rewritten after every epoch
by a second ``ModelCheckpoint``. ``--ckpt_path best|last`` finds them again in a new
process (:func:`find_checkpoint`).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jsonargparse import Namespace
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.runs.tracking import runs_folder, version_number

# As configs/defaults.yaml names the two checkpoints (checkpoint, last_checkpoint).
LAST_FILENAME = "last"
_PATTERNS = {"best": "best-*.ckpt", "last": f"{LAST_FILENAME}*.ckpt"}
# Lightning's name for the checkpoint saved when SLURM stops a job: hpc_ckpt_<N>.ckpt.
HPC_PREFIX = "hpc_ckpt_"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write a checkpoint whole or not at all, and make it durable.

    The checkpoint is serialised in memory first, so a failure or a kill while it is being
    built touches no file. The bytes then go to a hidden file in the target's folder, are
    flushed to disk, and the file is renamed over the target: a rename within one folder is
    atomic, so the target is only ever replaced by a complete file and a crash keeps the
    previous checkpoint whole. (Lightning's default writer stages in the system's temporary
    folder, which can sit on another disk, where the move becomes a copy, and does not
    flush.)
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options.")
        target = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per target: a partial file left by a kill is overwritten here.
        partial = target.with_name(f".{target.name}.partial")
        try:
            with open(partial, "wb") as file:
                file.write(buffer.getbuffer())
                file.flush()
                os.fsync(file.fileno())  # the bytes are on disk before the name points at them
            os.replace(partial, target)
            _fsync_folder(target.parent)  # and so is the new name
        finally:
            partial.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def checkpoint_folders(config: Namespace) -> tuple[list[Path], str]:
    """Where runs of a subcommand's ``config`` keep their checkpoints, the newest run
    first, and a description of that place for messages; as Lightning places them."""
    dirpath = config.get("checkpoint.dirpath")
    if dirpath:
        return [Path(dirpath)], str(dirpath)
    if config.get("trainer.logger") is False:  # no logger: no run folders
        root = Path(config.get("trainer.default_root_dir") or ".") / "checkpoints"
        return [root], str(root)
    runs = runs_folder(config)
    return run_checkpoint_folders(runs), f"{runs}/version_*/checkpoints"


def continued_run(config: Namespace, path: Path, checkpoint: dict[str, Any]) -> int | None:
    """N when ``checkpoint`` (read from ``path``) stopped run ``version_N`` of ``config``: the
    run's ``last.ckpt``, or the hpc checkpoint Lightning saved when SLURM stopped the run.
    A fit resumed from it continues that run, in its folder. (From any other checkpoint, a
    fit starts a run of its own from those weights.)"""
    if config.get("checkpoint.dirpath"):
        return None
    if is_hpc_checkpoint(path):
        folder = _checkpoints_folder(checkpoint)
    elif path.name == f"{LAST_FILENAME}.ckpt":
        folder = path.resolve().parent
    else:
        return None
    folders, _ = checkpoint_folders(config)
    if folder is None or not any(folder == run.resolve() for run in folders):
        return None
    version = version_number(folder.parent)
    return version if version >= 0 else None


def _checkpoints_folder(checkpoint: dict[str, Any]) -> Path | None:
    """The folder the run's ModelCheckpoints wrote into, as the checkpoint's states say."""
    for state in checkpoint.get("callbacks", {}).values():
        if isinstance(state, dict) and state.get("dirpath"):
            return Path(state["dirpath"]).resolve()
    return None


def hpc_checkpoint(config: Namespace) -> Path | None:
    """The checkpoint Lightning resumes a fit on SLURM from, if any: the newest
    ``hpc_ckpt_<N>.ckpt`` in ``trainer.default_root_dir``, saved there when SLURM signalled
    the job to stop (``--signal=SIGUSR1@90``, ``scancel --signal=USR1``) before it was
    requeued."""
    root = Path(config.get("trainer.default_root_dir") or ".")
    found = [path for path in root.glob(f"{HPC_PREFIX}*.ckpt") if is_hpc_checkpoint(path)]
    return max(found, key=_hpc_number, default=None)


def is_hpc_checkpoint(path: Path) -> bool:
    return re.fullmatch(rf"{HPC_PREFIX}\d+\.ckpt", path.name) is not None


def _hpc_number(path: Path) -> int:
    return int(path.name.removeprefix(HPC_PREFIX).removesuffix(".ckpt"))


def remove_hpc_checkpoints(resumed: Path) -> None:
    """Remove ``resumed`` and the hpc checkpoints numbered before it in its folder: those
    of the same job's earlier stops, once the fit they resumed has ended."""
    for path in resumed.parent.glob(f"{HPC_PREFIX}*.ckpt"):
        if is_hpc_checkpoint(path) and _hpc_number(path) <= _hpc_number(resumed):
            path.unlink(missing_ok=True)


def run_checkpoint_folders(runs_dir: Path) -> list[Path]:
    """``runs_dir/version_*/checkpoints``, the newest run first."""
    runs = sorted(runs_dir.glob("version_*"), key=version_number, reverse=True)
    return [run / "checkpoints" for run in runs]


def find_checkpoint(which: str, folders: Sequence[Path], where: str) -> Path:
    """The ``best`` or ``last`` checkpoint in the first of ``folders`` that has one.

    ``where`` names the folders searched, for the message when there is none.
    """
    for folder in folders:
        found = sorted(folder.glob(_PATTERNS[which]), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    raise MnistLitError(
        f"--ckpt_path {which}: no {which} checkpoint under {where}. Run `mnist-lit fit` with "
        "the same --config first, or pass the path of a .ckpt file."
    )


def read_checkpoint(path: str | Path, label: str | None = None) -> dict[str, Any]:
    """Load a Lightning checkpoint on the CPU, or fail with one message naming the file.

    Only tensors and plain values are unpickled (``weights_only``), as a checkpoint from
    elsewhere may not be trusted. ``label`` is how the user named the file in the message
    (default ``--ckpt_path PATH``).
    """
    if not Path(path).is_file():
        raise MnistLitError(
            f"--ckpt_path {path}: no such file. Pass a .ckpt file, or `best` or `last` for "
            "the newest run of this config."
        )
    try:
        # Onto the CPU (the default map_location), whatever device saved it.
        checkpoint = AtomicCheckpointIO().load_checkpoint(path, weights_only=True)
    except Exception as error:  # torch reports a bad file as many kinds of error
        raise unreadable_checkpoint(path, _load_problem(error), label) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise unreadable_checkpoint(path, "it holds no state_dict", label)
    return checkpoint


def _load_problem(error: Exception) -> str:
    """torch's reason, without its advice to unpickle anything (never for a file from
    elsewhere), and saying so when the file is not torch's at all."""
    reason = first_line(error)
    if "weights_only" in reason or "Weights only load failed" in reason:
        return "it holds Python objects besides tensors and plain values; those are not loaded"
    if isinstance(error, (IndexError, KeyError, AttributeError, TypeError, EOFError)):
        return "not a file written by torch.save"  # the reader's own failure says nothing more
    if len(reason) < 20:  # e.g. an invalid load key: not a file torch.save wrote
        return f"not a file written by torch.save: {reason}"
    return reason


def unreadable_checkpoint(path: str | Path, reason: str, label: str | None = None) -> MnistLitError:
    return MnistLitError(
        f"{label or f'--ckpt_path {path}'} is not a readable Lightning checkpoint ({reason}). "
        "Pass a .ckpt file written by `mnist-lit fit`."
    )


def check_checkpoint_fits(path: str | Path, checkpoint: dict[str, Any], net: nn.Module) -> None:
    """Fail with one message if the checkpoint's network weights do not fit ``net``."""
    saved = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    if not saved:
        raise MnistLitError(
            f"--ckpt_path {path} was not written by MNISTClassifier: its weights hold no "
            "network (net.*). Pass a checkpoint written by `mnist-lit fit`."
        )
    wanted = {f"net.{k}": tuple(v.shape) for k, v in net.state_dict().items()}
    if saved == wanted:
        return
    differences = [
        f"{key}: {saved.get(key, 'absent')} in the checkpoint, {wanted.get(key, 'absent')} here"
        for key in sorted(saved.keys() | wanted.keys())
        if saved.get(key) != wanted.get(key)
    ]
    raise MnistLitError(
        f"--ckpt_path {path} does not fit model.net ({type(net).__name__}) of this config "
        f"({len(differences)} weights differ, e.g. {differences[0]}). Use the --config that "
        "trained it (its run folder has a config.yaml), or a checkpoint of this network."
    )
