"""The model's parts (network, loss, optimiser, schedule) built in Python, described as
LightningCLI records them: ``class_path`` and ``init_args``."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from lightning.pytorch.core.mixins import HyperparametersMixin
from torch import nn


def describe(part: object) -> dict[str, Any] | None:
    """``part`` as ``class_path`` and ``init_args``, where they are known exactly: a class,
    a ``functools.partial`` of a class with keyword arguments, a module whose class takes
    no arguments, or one that recorded them (Lightning's ``HyperparametersMixin``); else
    None."""
    if isinstance(part, functools.partial) and not part.args:
        cls, init_args = part.func, dict(part.keywords)
    elif isinstance(part, type):
        cls, init_args = part, {}
    elif isinstance(part, HyperparametersMixin):
        cls, init_args = type(part), dict(part.hparams_initial)
    elif isinstance(part, nn.Module) and _takes_no_arguments(type(part)):
        cls, init_args = type(part), {}
    else:
        return None
    if not isinstance(cls, type) or "<locals>" in cls.__qualname__:
        return None  # not importable by its name
    if not set(init_args) <= set(inspect.signature(cls).parameters):
        return None  # recorded more than its own arguments (a subclass's, say)
    try:
        init_args = {name: _plain(value) for name, value in init_args.items()}
    except TypeError:
        return None
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}


def _takes_no_arguments(cls: type) -> bool:
    inherited = cls.__init__ is nn.Module.__init__  # type: ignore[misc]
    return inherited or not inspect.signature(cls).parameters


def _plain(value: Any) -> Any:
    """``value`` as YAML and ``torch.load(weights_only=True)`` keep it, or TypeError."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"not a plain value: {type(value).__name__}")
