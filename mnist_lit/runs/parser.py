"""The command line's parsers: every mistake in the options is one
:class:`~mnist_lit.runs.errors.MnistLitError` naming the option."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import NoReturn

from jsonargparse import ArgumentParser

from mnist_lit.runs.catalog import CONFIG_OPTIONS, missing_config
from mnist_lit.runs.errors import MnistLitError


class OneMessageParser(ArgumentParser):
    """A jsonargparse parser whose errors are a :class:`MnistLitError`: the message and
    where to find the options, not the whole usage."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse trying alternatives: not the user's error
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        missing = _missing_config(message)
        if missing:
            raise MnistLitError(missing)
        wrong_type = _wrong_type(message)
        if wrong_type:
            raise MnistLitError(f"{wrong_type} `{prog} --help` lists the options.")
        hint = _nearest_option(parser, message)
        tidy = "\n".join(line for line in message.strip().splitlines() if not _NOISE.search(line))
        raise MnistLitError(f"{tidy}{hint}\n`{prog} --help` lists the options.")


# Lines of jsonargparse's messages about union types that never help a user.
_NOISE = re.compile(
    r"Does not validate against any of the Union subtypes|Subtypes: |Given value type: "
    r"|- Expected a <class 'NoneType'>|- Import path .* does not correspond to a subclass"
)


def _nearest_option(parser: ArgumentParser, message: str) -> str:
    """`` (did you mean --X?)`` for the option that ``message`` does not recognise: the
    option whose last part is nearest the one typed, and of those the nearest in full."""
    typed = re.search(r"(?:unrecognized arguments|ambiguous option): (--[\w.]+)", message)
    if typed is None:
        return ""
    try:
        keys = parser.get_defaults().keys()
    except Exception:  # defaults that cannot be built: no hint rather than a second error
        return ""
    options = {"--" + k.replace(".init_args", "").removesuffix(".class_path") for k in keys}
    last = {option.rsplit(".", 1)[-1] for option in options}
    tails = difflib.get_close_matches(typed.group(1).rsplit(".", 1)[-1], sorted(last), cutoff=0.6)
    candidates = sorted(o for o in options if o.rsplit(".", 1)[-1] in tails) or sorted(options)
    nearest = difflib.get_close_matches(typed.group(1), candidates, n=1, cutoff=0.4)
    return f" (did you mean {nearest[0]}?)" if nearest else ""


def _missing_config(message: str) -> str | None:
    """The project's configs, for a ``--config`` file that does not exist."""
    keys = "|".join(option.removeprefix("--") for option in CONFIG_OPTIONS)
    found = re.search(rf'Parser key "({keys})": File does not exist: \'([^\']+)\'', message)
    if found is None:
        return None
    path = found.group(2)
    if Path(path).is_relative_to(Path.cwd()):
        path = os.path.relpath(path)  # as typed: jsonargparse made it absolute
    return f"--{found.group(1)} {missing_config(path)}"


def _wrong_type(message: str) -> str | None:
    """``model.optimizer.lr: expected a float, got 'abc'.`` for jsonargparse's nested
    message about a value of the wrong type (the option's parts are named level by level)."""
    types = [t for t in re.findall(r"Expected a <class '([\w.]+)'>", message) if t != "NoneType"]
    given = re.search(r"(?:Given|Got) value: (.*?)(?:\. Got value: .*)?$", message, re.MULTILINE)
    if not types or given is None:
        return None
    keys = re.findall(r'Parser key "([^"]+)"', message)
    option = ".".join(keys).replace("init_args.", "")
    expected = " or ".join(f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in dict.fromkeys(types))
    return f"{option}: expected {expected}, got {given.group(1)!r}."
