"""The parser reads a word that starts with a dash and a digit as a value, through public
argparse methods only (``nas/cli/parser.py``)."""

from __future__ import annotations

import argparse
import inspect

import pytest

from nas.cli.parser import Parser


def _parser() -> Parser:
    parser = Parser(prog="t")
    parser.add_argument("name", nargs="?")
    parser.add_argument("--flash")
    parser.add_argument("--count", type=int)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--proxy", nargs="?", const="")
    group = parser.add_argument_group("g")
    group.add_argument("--grouped")
    exclusive = parser.add_mutually_exclusive_group()
    exclusive.add_argument("--one")
    return parser


@pytest.mark.parametrize(("argv", "key", "value"), [
    (["--flash", "-1KiB"], "flash", "-1KiB"),
    (["--fla", "-1KiB"], "flash", "-1KiB"),  # an abbreviation, as argparse resolves it
    (["--flash=-1KiB"], "flash", "-1KiB"),
    (["--count", "-3"], "count", -3),
    (["--proxy", "-1x"], "proxy", "-1x"),
    (["--grouped", "-1e3"], "grouped", "-1e3"),
    (["--one", "-2x"], "one", "-2x"),
    (["-1x", "--flash", "1KiB"], "name", "-1x"),  # a positional, restored as typed
    (["--json", "-1x"], "name", "-1x"),
    (["--", "-1x"], "name", "-1x"),
])
def test_a_dash_digit_word_is_a_value(argv, key, value):
    args, extras = _parser().parse_known_args(argv)
    assert getattr(args, key) == value and extras == []


def test_an_extra_dash_digit_word_is_reported_as_typed():
    args, extras = _parser().parse_known_args(["a", "-1x"])
    assert args.name == "a" and extras == ["-1x"]


def test_errors_name_the_word_as_typed(capsys):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_known_args(["--count", "-1x"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err == "t: error: argument --count: invalid int value: '-1x' (see --help)\n"


def test_a_command_word_stand_in_is_restored_in_the_error(capsys):
    parser = Parser(prog="t")
    parser.add_subparsers(dest="command", parser_class=Parser).add_parser("go")
    with pytest.raises(SystemExit):
        parser.parse_known_args(["-1x"])
    assert "invalid choice: '-1x'" in capsys.readouterr().err


def test_every_option_is_recorded():
    assert _parser().option_strings == ["-h", "--help", "--flash", "--count", "--json",
                                        "--proxy", "--grouped", "--one"]


def test_no_argparse_internals_are_overridden():
    # Only public ArgumentParser methods may be overridden (issue 21): a private one can
    # change or vanish in any Python release.
    overridden = [name for name, _ in inspect.getmembers(Parser, inspect.isfunction)
                  if name in vars(Parser) and hasattr(argparse.ArgumentParser, name)]
    assert overridden and all(not name.startswith("_") or name == "__init__"
                              for name in overridden), overridden
