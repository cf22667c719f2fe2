"""Problems a user can fix: bad data, a bad option, a wrong file.

The CLI prints their message alone, ``mnist-lit: error: ...``, without a traceback, and
exits with status 2.
"""

from __future__ import annotations

import re
from typing import NoReturn

from jsonargparse import ArgumentParser


class MnistLitError(Exception):
    """A problem with the user's input; the message names the thing and the fix."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (or its type), to quote inside ours."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class OneMessageParser(ArgumentParser):
    """A jsonargparse parser whose errors are a :class:`MnistLitError`: the message and
    where to find the options, not the whole usage."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse trying alternatives: not the user's error
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        raise MnistLitError(f"{_tidy(message)}\n`{prog} --help` lists the options.")


# Lines of jsonargparse's messages about union types that never help a user.
_NOISE = re.compile(
    r"Does not validate against any of the Union subtypes|Subtypes: |Given value type: "
    r"|- Expected a <class 'NoneType'>|- Import path .* does not correspond to a subclass"
)


def _tidy(message: str) -> str:
    return "\n".join(line for line in message.strip().splitlines() if not _NOISE.search(line))
