"""The command table and ``main``: parse the line, run the command, turn the user's mistakes
into one line on stderr (exit code 2) and Ctrl-C into one line (exit code 130)."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import NoReturn

from nas.cli.baselines import BaselinesCommand
from nas.cli.calibrate import CalibrateCommand
from nas.cli.command import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    USER_ERRORS,
    Command,
    Output,
)
from nas.cli.data import DataCommand
from nas.cli.estimate import EstimateCommand
from nas.cli.evaluate import EvaluateCommand
from nas.cli.export import ExportCommand
from nas.cli.parser import Parser
from nas.cli.search import SearchCommand
from nas.cli.targets import TargetsCommand
from nas.cli.train import TrainCommand
from nas.cli.views import ParetoCommand, ShowCommand

COMMANDS: dict[str, type[Command]] = {
    cmd.name: cmd for cmd in (TargetsCommand, BaselinesCommand, EstimateCommand, DataCommand,
                              TrainCommand, EvaluateCommand, ExportCommand, CalibrateCommand,
                              SearchCommand, ParetoCommand, ShowCommand)
}


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every command takes. Added to each command's parser, not shared through
    argparse's ``parents=`` (which copies actions past ``add_argument``), so that the parser
    knows every option it has (see :mod:`nas.cli.parser`)."""
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def make_parser() -> Parser:
    parser = Parser(prog="tinynas", description="Find object detectors that fit a microcontroller.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, cls in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=cls.help, description=cls.help)
        common_arguments(cmd_parser)
        command = cls()
        command.add_arguments(cmd_parser)
        cmd_parser.set_defaults(handler=command, command_parser=cmd_parser)
    return parser


def _refuse_unknown(parser: Parser, args: argparse.Namespace, unknown: list[str]) -> NoReturn:
    """Unknown arguments, reported by the command's own parser (``tinynas estimate: error:``,
    not ``tinynas: error:``) with the closest option when one is near."""
    own: Parser = getattr(args, "command_parser", parser)
    first = unknown[0].split("=", 1)[0]
    near = difflib.get_close_matches(first, own.option_strings, n=1)
    hint = f"; did you mean {near[0]}?" if near and first.startswith("-") else ""
    own.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _refuse_unknown(parser, args, unknown)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler.run(args, Output(args.json))
    except USER_ERRORS as exc:
        if args.debug:
            raise
        sys.stderr.write(f"tinynas {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Ctrl-C outside a command's own handling (e.g. while data loads): no traceback.
        if args.debug:
            raise
        sys.stderr.write(f"tinynas {args.command}: interrupted\n")
        return EXIT_INTERRUPTED

