"""Shell completion: ``mnist-lit --print_completion bash|zsh|tcsh`` prints a script that
completes the subcommands, every option of each, and file names where a file is wanted.

The script is made by shtab from the command line's own parser. jsonargparse has a
``--print_completion`` of its own, but it also lists every subclass that each class option
accepts, recursively, which for ``model.net`` (any ``nn.Module``) never ends; this one
leaves the class names to ``--model.net.help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import shtab

SHELLS = ("bash", "zsh", "tcsh")
# Options that name a file or a folder, completed as such.
_FILES = ("--config", "--ckpt_path", "--data.predict_path", "--predictions.path")
_FOLDERS = ("--data.data_dir", "--trainer.default_root_dir", "--checkpoint.dirpath")


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``parser`` and its subcommands for ``shell``, for the
    ``mnist-lit`` command however the parser was started (``python -m mnist_lit``, say)."""
    parser.prog = "mnist-lit"
    for each in _parsers(parser):
        for action in each._actions:
            if any(" " in option for option in action.option_strings):
                action.help = argparse.SUPPRESS  # a link between two options, not an option
            elif set(action.option_strings) & set(_FILES):
                action.complete = shtab.FILE  # type: ignore[attr-defined]
            elif set(action.option_strings) & set(_FOLDERS):
                action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return shtab.complete(parser, shell)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield from _parsers(subparser)


class PrintCompletion(argparse.Action):
    """``--print_completion SHELL``: print the completion script and exit."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "Print the shell completion script and exit, e.g. "
                          "`mnist-lit --print_completion bash > ~/.mnist-lit-completion.bash`, "
                          "then `source` it from ~/.bashrc.")  # fmt: skip
        kwargs.setdefault("default", argparse.SUPPRESS)  # no "(default: null)" in the help
        super().__init__(option_strings, dest=argparse.SUPPRESS, choices=SHELLS, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        print(completion_script(parser, str(values)))
        parser.exit(0)
