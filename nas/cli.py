"""The ``tinynas`` command line: a table of commands, each thin over the library.

Every command takes ``--json`` (machine-readable output on stdout) and ``--debug`` (show
tracebacks). Bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from estimators.targets import list_targets
from nas import render
from nas.calibrate_command import CalibrateCommand
from nas.command import (
    EXIT_DOES_NOT_FIT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    USER_ERRORS,
    Command,
    Output,
    resolve_target,
    target_arguments,
)
from nas.estimate_proxy import proxy_arguments, proxy_request, scored_row
from nas.export_command import ExportCommand
from nas.models import UsageError, resolve_model
from nas.rows import model_row
from nas.search_command import SearchCommand
from nas.tflite_estimate import is_tflite_path, tflite_row
from nas.train_commands import DataCommand, EvaluateCommand, TrainCommand
from nas.views_command import ParetoCommand, ShowCommand
from search_space.baselines import get_baseline, list_baselines


class TargetsCommand(Command):
    name = "targets"
    help = "list the boards, their memory, default budgets and runtimes"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace, out: Output) -> int:
        rows = [render.target_row(t) for t in list_targets()]
        if out.as_json:
            out.emit(rows)
        else:
            out.console.print(render.targets_table(rows))
        return EXIT_OK


class BaselinesCommand(Command):
    name = "baselines"
    help = "list the baseline networks with their size and cost on a target"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        target_arguments(parser, required=False)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        target, budgets = resolve_target(args, out)
        rows = [model_row(get_baseline(b.name), target, budgets) for b in list_baselines()]
        if out.as_json:
            out.emit(rows)
        else:
            out.console.print(render.models_table(rows, target, budgets))
        return EXIT_OK


class EstimateCommand(Command):
    name = "estimate"
    help = "estimate params, MACs, flash and RAM of one model and check it against a budget"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("baseline", nargs="?",
                            help="a baseline name (see `baselines`) or a full-int8 MODEL.tflite")
        parser.add_argument("--genome", help="a genome JSON file instead of a baseline")
        parser.add_argument("--num-classes", type=int,
                            help="foreground classes of a --genome detector (default 20; with "
                            "--proxy: the data's)")
        target_arguments(parser, required=True)
        proxy_arguments(parser)

    def run(self, args: argparse.Namespace, out: Output) -> int:
        scoring = proxy_request(args)  # --proxy and its data flags, before anything is read
        if scoring is not None:
            target, budgets = resolve_target(args, out)
            row = scored_row(args, out, scoring, target, budgets)
        elif is_tflite_path(args.baseline):
            if args.genome or args.num_classes is not None:
                raise UsageError("a .tflite file is estimated as it is: drop --genome and "
                                 "--num-classes")
            target, budgets = resolve_target(args, out)
            row = tflite_row(args.baseline, target, budgets)
        else:
            arch = resolve_model(args.baseline, args.genome, args.num_classes)
            target, budgets = resolve_target(args, out)
            row = model_row(arch, target, budgets)
        if out.as_json:
            out.emit(row)
        else:
            out.console.print(render.estimate_panel(row, target))
        return EXIT_OK if row["fits"] else EXIT_DOES_NOT_FIT


COMMANDS: dict[str, type[Command]] = {
    cmd.name: cmd for cmd in (TargetsCommand, BaselinesCommand, EstimateCommand, DataCommand,
                              TrainCommand, EvaluateCommand, ExportCommand, CalibrateCommand,
                              SearchCommand, ParetoCommand, ShowCommand)
}


# A dash then a digit: a (possibly bad) value such as "-1KiB" or "-3", never an option name.
_DASH_VALUE = re.compile(r"-\d")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message names what was wrong.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def _parse_optional(self, arg_string: str) -> tuple[Any, ...] | None:
        # argparse takes "-1KiB" for an unknown option and reports "--flash: expected one
        # argument"; read it as --flash's value, so the budget parser names what is wrong.
        if _DASH_VALUE.match(arg_string):
            return None
        return super()._parse_optional(arg_string)  # type: ignore[misc]


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tinynas",
                     description="Find object detectors that fit a microcontroller.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    for name, cls in COMMANDS.items():
        cmd_parser = sub.add_parser(name, help=cls.help, description=cls.help, parents=[common])
        command = cls()
        command.add_arguments(cmd_parser)
        cmd_parser.set_defaults(handler=command, command_parser=cmd_parser)
    return parser


def _refuse_unknown(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    unknown: list[str]) -> NoReturn:
    """Unknown arguments, reported by the command's own parser (``tinynas estimate: error:``,
    not ``tinynas: error:``) with the closest option when one is near."""
    own = getattr(args, "command_parser", parser)
    first = unknown[0].split("=", 1)[0]
    near = difflib.get_close_matches(first, list(own._option_string_actions), n=1)
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


if __name__ == "__main__":
    sys.exit(main())
