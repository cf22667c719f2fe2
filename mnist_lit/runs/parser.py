"""The command line's parsers: every mistake in the options is one
:class:`~mnist_lit.runs.errors.MnistLitError` naming the option."""

from __future__ import annotations

import difflib
import re
from typing import NoReturn

from jsonargparse import ArgumentParser

from mnist_lit.runs.errors import MnistLitError


class OneMessageParser(ArgumentParser):
    """A jsonargparse parser whose errors are a :class:`MnistLitError`: the message and
    where to find the options, not the whole usage."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse trying alternatives: not the user's error
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
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
