"""The losses and networks a user names for ``mnist-lit study``: the catalogue's, or their
own, and the checks that each works before any fit starts.

A loss is ``[LABEL=]LOSS[:ARG=VALUE,...]``: ``LOSS`` a catalogue name (``ce``, ``focal``)
or a class path (``my_losses.Hinge``, importable from the working folder), its arguments
read as YAML values (``my_losses.Hinge:margin=2,squared=true``). A network is a catalogue
name or a config file that ``mnist-lit fit --config`` trains (``nets/wide.yaml``), with
its own learning-rate range as ``nets/wide.yaml:0.001,1`` (else the MLP's).

>>> parse_loss("focal:gamma=1").name, parse_loss("focal:gamma=1").init_args
('focal_gamma=1', (('gamma', 1),))
>>> loss = parse_loss("wide=my_losses.Hinge:margin=2")
>>> loss.name, loss.class_path, loss.label
('wide', 'my_losses.Hinge', 'wide')
>>> parse_loss("my_losses.Hinge").label
'Hinge'
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from mnist_lit.runs.catalog import LOSSES, NETWORKS, config_path
from mnist_lit.runs.errors import MnistLitError, first_line
from mnist_lit.study.plan import STUDY_NETWORKS, Loss, Network, Plan, catalogue_loss

LOSS_SYNTAX = "[LABEL=]NAME_OR_CLASS_PATH[:ARG=VALUE,...]"
NETWORK_SYNTAX = "NAME_OR_CONFIG[:LOW_LR,HIGH_LR]"
# A user's network: the epoch of reaching this validation accuracy is reported.
OWN_THRESHOLD = 0.96
UNSAFE = re.compile(r"[^\w.=,+-]")  # characters kept out of the study's folder names


def parse_loss(spec: str) -> Loss:
    """A loss of ``--losses`` (see the module's docstring)."""
    label = ""
    head, _, arguments = spec.partition(":")
    if "=" in head:
        label, _, head = head.partition("=")
    if not head or (label and not re.fullmatch(r"[\w.+-]+", label)):
        raise MnistLitError(
            f"--losses {spec}: write a loss as {LOSS_SYNTAX}, e.g. ce, my_losses.Hinge or "
            "margin2=my_losses.Hinge:margin=2 (a label of letters, digits, _ . + -)."
        )
    init_args = tuple(_argument(spec, a) for a in arguments.split(",")) if arguments else ()
    if head in LOSSES:
        loss = replace(catalogue_loss(head), init_args=init_args)
    elif "." in head:
        loss = Loss(head, head, init_args, head.rpartition(".")[2])
    else:
        raise MnistLitError(
            f"--losses {spec}: {head} is neither a loss of the catalogue "
            f"({', '.join(LOSSES)}) nor a class path (module.Class)."
        )
    if init_args:
        shown = ", ".join(f"{k}={v}" for k, v in init_args)
        name = loss.name + "".join(f"_{k}={v}" for k, v in init_args)
        loss = replace(loss, name=UNSAFE.sub("_", name), label=f"{loss.label} ({shown})")
    return replace(loss, name=label or loss.name, label=label or loss.label, given=spec)


def _argument(spec: str, text: str) -> tuple[str, Any]:
    key, equals, value = text.partition("=")
    if not equals or not key.isidentifier():
        raise MnistLitError(f"--losses {spec}: {text!r} is not ARG=VALUE ({LOSS_SYNTAX}).")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        return key, value


def parse_network(spec: str) -> Network:
    """A network of ``--networks`` (see the module's docstring)."""
    if spec in STUDY_NETWORKS:
        return STUDY_NETWORKS[spec]
    head, colon, rates = spec.rpartition(":") if ":" in spec else (spec, "", "")
    try:
        low, high = (float(rate) for rate in rates.split(",")) if colon else (0.0, 0.0)
    except ValueError:
        low, high = -1.0, 0.0
    if colon and not 0 < low < high:
        raise MnistLitError(
            f"--networks {spec}: give the rate range as {NETWORK_SYNTAX}, two rates, the "
            "lower first, e.g. nets/wide.yaml:0.001,1."
        )
    path = Path(head)
    if not path.is_file():
        raise MnistLitError(
            f"--networks {spec}: neither a network of the catalogue ({', '.join(NETWORKS)}) "
            "nor a config file."
        )
    config = yaml.safe_load(config_path(head).read_text()) or {}
    ranges = STUDY_NETWORKS["mlp"].lr_ranges
    if colon:
        ranges = dict.fromkeys(ranges, (low, high))
    epochs = (config.get("trainer") or {}).get("max_epochs")
    return Network(
        UNSAFE.sub("_", path.stem), dict(ranges), OWN_THRESHOLD, str(path.resolve()), epochs
    )


def distinct(names: Sequence[str], option: str) -> None:
    """One message for two choices of the same name in the study's files."""
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise MnistLitError(
            f"{option}: {', '.join(twice)} given twice (or named alike); give each once, or "
            "a label of its own (LABEL=...)."
        )


def check_choices(plan: Plan, data_dir: str, accelerator: str) -> None:
    """Build each user's loss and network as its fits will, and try it on a batch: one
    message for the first that fails, before any fit starts."""
    for loss in plan.losses:
        if loss.name not in LOSSES or loss.init_args:
            option = f"--losses {loss.given or loss.name}"
            _import(loss.class_path, option)
            _try(plan, plan.networks[0], loss, option, data_dir, accelerator)
    for network in plan.networks:
        if network.config:
            _try(plan, network, plan.losses[0], f"--networks {network.name}", data_dir, accelerator)


def _import(class_path: str, option: str) -> None:
    module_name, _, name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise MnistLitError(
            f"{option}: cannot import {module_name} ({first_line(error)}); put {module_name}.py "
            "in the working folder or install it."
        ) from None
    found = getattr(module, name, None)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise MnistLitError(
            f"{option}: {module_name} has no torch.nn.Module named {name}; a loss is a "
            "module's class, called as loss(logits, target)."
        )


def _try(
    plan: Plan, network: Network, loss: Loss, option: str, data_dir: str, accelerator: str
) -> None:
    from mnist_lit.runs.fit import FitCLI

    try:
        cli = FitCLI(plan.fit(network, loss, data_dir, accelerator))
        cli.model.check_net_output()
        cli.model.check_loss()
    except (MnistLitError, ValueError, TypeError) as error:
        raise MnistLitError(f"{option}: {_innermost(str(error))}") from None


def _innermost(message: str) -> str:
    """The line of a nested jsonargparse message that says what is wrong, with the
    argument it is about: ``margin: Expected a <class 'float'>. Got value: x``, ``Option
    'width' is not accepted``."""
    lines = [line.strip() for line in message.strip().splitlines()]
    lines = lines[: next((i for i, x in enumerate(lines) if x.startswith("Given value")), None)]
    if len(lines) < 2:
        return lines[0] if lines else message
    key = re.fullmatch(r'Parser key "(\w+)":', lines[-2])
    return f"{key.group(1)}: {lines[-1]}" if key else lines[-1]
