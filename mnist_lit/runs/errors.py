"""Problems a user can fix: bad data, a bad option, a wrong file. The CLI prints their
message alone (``mnist-lit: error: ...``, no traceback) and exits with status 2."""

from __future__ import annotations


class MnistLitError(Exception):
    """A problem with the user's input; the message names the thing and the fix."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (or its type), to quote inside ours."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
