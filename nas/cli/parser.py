"""The argument parser every ``tinynas`` command (and sub-action) uses: errors in one line,
and a word that starts with a dash and a digit read as the value it is.

Why the second: argparse takes ``--flash -1KiB`` for ``--flash`` followed by an unknown option
``-1KiB`` and reports "--flash: expected one argument", which hides what is wrong; read as
``--flash``'s value, the budget parser says the budget cannot be negative. argparse already
reads a plain negative number (``-3``) as a value; words such as ``-1KiB`` or ``-1e3`` need
this. No option of tinynas starts with a dash and a digit, so such a word is always a value.

It is done through public methods only (no argparse internals), before argparse reads the
words: each parser records which of its options take a value as they are added;
:meth:`Parser.parse_known_args` joins such an option and a following dash-digit word with
``=`` (argparse's own spelling of the same thing), and hands any other dash-digit word to
argparse as a stand-in that does not start with a dash (a positional, as argparse reads a
negative number), restored in the result and in error messages.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from nas.cli.command import EXIT_USAGE

# A dash then a digit: a (possibly bad) value such as "-1KiB" or "-3", never an option name.
_DASH_VALUE = re.compile(r"-\d")
# Marks a stand-in for a dash-digit word: a NUL cannot occur in a real command line.
_STAND_IN = "\0"


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Filled before argparse's own __init__, which adds -h/--help through add_argument.
        self._takes_value: dict[str, bool] = {}
        self._has_commands = False
        super().__init__(*args, **kwargs)

    @property
    def option_strings(self) -> list[str]:
        """Every option string of this parser, in the order added (``-h``, ``--help``, ...)."""
        return list(self._takes_value)

    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message names what was wrong (with the
        # word as typed: argparse quotes a stand-in as '\x00-1x').
        for quote in "'\"":
            message = message.replace(quote + repr(_STAND_IN)[1:-1], quote)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        self._has_commands = True
        return super().add_subparsers(**kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return self._record(super().add_argument(*args, **kwargs))

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        return self._recording(super().add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, **kwargs: Any) -> Any:
        return self._recording(super().add_mutually_exclusive_group(**kwargs))

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        # A subcommand's parser is called here too (by argparse's subparsers action), with
        # the words after the command: each parser joins its own options.
        words = list(args) if args is not None else sys.argv[1:]
        parsed, extras = super().parse_known_args(self._dash_values(words), namespace)
        for key, value in vars(parsed).items():
            if isinstance(value, str):
                setattr(parsed, key, _restore(value))
        return parsed, [_restore(word) for word in extras]

    def _record(self, action: argparse.Action) -> argparse.Action:
        for option in action.option_strings:
            # nargs 0: a flag (store_true, help, ...); None, "?" or 1: one value.
            self._takes_value[option] = action.nargs not in (0, "*", "+") and not (
                isinstance(action.nargs, int) and action.nargs > 1)
        return action

    def _recording(self, group: Any) -> Any:
        """``group``, its ``add_argument`` recording into this parser too."""
        add = group.add_argument

        def add_argument(*args: Any, **kwargs: Any) -> argparse.Action:
            return self._record(add(*args, **kwargs))

        group.add_argument = add_argument
        return group

    def _option(self, word: str) -> str | None:
        """The option ``word`` names, as argparse resolves it (exactly, or a long option by an
        unambiguous prefix); None for anything else."""
        if word in self._takes_value:
            return word
        if not word.startswith("--") or "=" in word or not self.allow_abbrev:
            return None
        found = [option for option in self._takes_value if option.startswith(word)]
        return found[0] if len(found) == 1 else None

    def _dash_values(self, words: list[str]) -> list[str]:
        """``words`` with each dash-digit word joined to the option before it when that one
        takes a value, else replaced by its stand-in (a positional to argparse). A parser of
        commands only looks at the words before its command: the rest is the command's."""
        done: list[str] = []
        for i, word in enumerate(words):
            previous = done[-1] if done else None
            option = self._option(previous) if previous is not None else None
            if "--" in done or not _DASH_VALUE.match(word):
                done.append(word)
            elif option is not None and self._takes_value[option]:
                done[-1] = f"{previous}={word}"
            else:
                done.append(_STAND_IN + word)
            is_value = option is not None and self._takes_value[option] and done[-1] == word
            if self._has_commands and not done[-1].startswith("-") and not is_value:
                return done + words[i + 1:]  # the command (or a stand-in for one)
        return done


def _restore(word: str) -> str:
    return word.removeprefix(_STAND_IN)
