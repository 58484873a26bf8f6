"""What every ``tinynas`` command shares: the :class:`Command` interface, :class:`Output`
(and its one JSON-or-table choice, :meth:`Output.show`), exit codes, which exceptions count
as the user's mistake (one line, exit code 2), and the flags several commands take (target
and budgets, study, model, ``--proxy``, durations, output directories)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from rich.console import Console, RenderableType

from estimators.budgets import BudgetError, parse_budget
from estimators.estimate import Budgets
from estimators.latency import (
    OTHER_MACHINE_FACTOR,
    LatencyModelError,
    environment_check,
    models_for,
)
from estimators.latency.environment import describe
from estimators.latency.profiles import matching_host_profile
from estimators.targets import Target, TargetError, get_target, list_targets
from nas.detector import DetectorError
from nas.errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from nas.errors import UsageError
from nas.export.representative import CalibrationError
from objectives.checkpoint import CheckpointError
from objectives.data.dataset import DatasetError
from objectives.train import TrainError
from search_space.baselines import BaselineError
from search_space.genome import GenomeError

if TYPE_CHECKING:

    from nas.search.trials import TrialModel

# EXIT_INTERRUPTED (Ctrl-C, 130) is imported from nas.errors above: search workers exit
# with it too, and the library never imports the command layer.
EXIT_OK, EXIT_DOES_NOT_FIT, EXIT_USAGE = 0, 1, 2
# Errors that mean "the user asked for something invalid", never a bug of ours.
USER_ERRORS = (UsageError, BudgetError, TargetError, BaselineError, GenomeError, DatasetError,
               CheckpointError, TrainError, CalibrationError, LatencyModelError, DetectorError)


T = TypeVar("T")


class Command(ABC):
    name: ClassVar[str]
    help: ClassVar[str]

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    @abstractmethod
    def run(self, args: argparse.Namespace, out: Output) -> int: ...


class Output:
    """Where a command's result goes: JSON on stdout, or rich tables."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # Piped or redirected output has no width: don't squeeze tables into 80 columns.
        self.console = Console(width=None if sys.stdout.isatty() else 140)
        # Notes stay one line in logs too (a pipe has no width to wrap at).
        self.notes = Console(stderr=True, soft_wrap=True)

    def emit(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")

    def show(self, data: T, table: Callable[[T], RenderableType | None]) -> None:
        """A command's result: ``data`` as JSON with ``--json``, else ``table(data)`` on the
        console. A ``table`` that prints several pieces itself (e.g. lines without
        highlighting) returns None."""
        if self.as_json:
            self.emit(data)
            return
        shown = table(data)
        if shown is not None:
            self.console.print(shown)

    def note(self, text: str) -> None:
        self.notes.print(f"[yellow]note:[/] {text}", highlight=False)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``1.5h``, ``1h30m`` -> seconds. A bare number is refused: minutes and
    seconds are both plausible, and guessing wrong ruins a run."""
    compact = text.strip().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(f"{n}{u}" for n, u in parts).lower() != compact.lower():
        raise UsageError(f"--time-budget {text!r}: give a duration with units, e.g. 90s, 10m, "
                         "1.5h or 1h30m")
    seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"--time-budget {text!r}: must be longer than zero")
    return seconds


def target_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--target", required=required, default=None if required else "stm32h7",
                        help="board: " + ", ".join(t.name for t in list_targets())
                        + ("" if required else " (default stm32h7)")
                        + "; TARGET@PROFILE uses a latency profile from `tinynas calibrate`")
    parser.add_argument("--runtime", help="one of the target's runtimes (default: its first)")
    parser.add_argument("--clock", type=int, metavar="MHZ",
                        help="core clock for latency (default: the target's, e.g. 400 for "
                             "stm32h7)")
    parser.add_argument("--flash", help="flash budget, e.g. 512KiB, 0.5MiB, 524288")
    parser.add_argument("--ram", help="RAM budget, e.g. 256KiB")


def target_from_args(args: argparse.Namespace) -> Target:
    """--target (with any @profile), --runtime and --clock, not yet checked for a profile."""
    target = get_target(args.target)
    if args.runtime:
        target = target.with_runtime(args.runtime)
    if getattr(args, "clock", None) is not None:
        target = target.with_clock(args.clock)
    return target


def resolve_target(args: argparse.Namespace, out: Output) -> tuple[Target, Budgets]:
    target = target_from_args(args)
    _, model = models_for(target)  # an unknown profile or uncalibrated runtime fails here
    if target.profile and getattr(args, "clock", None) is None and model.clock_scaling:
        target = target.with_clock(model.clock_mhz)  # the clock the profile was measured at
    machine_note(target, out)
    sizes = {}
    for key in ("flash", "ram"):
        text = getattr(args, key)
        if text is None:
            continue
        budget = parse_budget(text)
        if budget.note:
            out.note(f"--{key} {budget.note}")
        sizes[key] = budget.bytes
    return target, Budgets.for_target(target, sizes.get("flash"), sizes.get("ram"))


def machine_note(target: Target, out: Output) -> None:
    """One note when a host target's latency model was measured on another machine."""
    found = environment_check(target)
    if found is None or found.match:
        return
    runtime = target.runtime.name
    saved = matching_host_profile(target.name, runtime)
    use = (f"a saved calibration of this machine exists: --target {target.name}@{saved}"
           if saved else f"measure this one with `tinynas calibrate --measure host --quick` "
           f"(minutes; without --quick the full refit), then use --target {target.name}@local")
    out.note(f"{target.label}'s latency was measured on another machine "
             f"({describe(found.fitted, runtime)}); this is {describe(found.here, runtime)} "
             f"({'; '.join(found.differences)}). Its figures are that machine's, the band is "
             f"widened {OTHER_MACHINE_FACTOR:g}x each way; {use}")


def resolve_proxy(name: str | None) -> tuple[str, bool]:
    """``--proxy``: the proxy's full name (the default when None) and whether it trains."""
    # Imported here: the proxies (scikit-learn among them) load only for commands that score.
    from objectives.proxies import DEFAULT_PROXY, ProxyError, get_proxy

    name = name or DEFAULT_PROXY
    try:
        proxy = get_proxy(name)
        proxy.ready()
    except ProxyError as exc:
        raise UsageError(f"--proxy: {exc}") from None
    return name, not proxy.training_free


def proxy_help(lead: str) -> str:
    """``--proxy`` help: ``lead``, then every proxy with its measured held-out ranking."""
    from objectives.proxies import DEFAULT_PROXY, list_proxies
    from objectives.proxies.measured import measured_summary

    return f"{lead}. {measured_summary(list_proxies(), DEFAULT_PROXY)}"


def study_arguments(parser: argparse.ArgumentParser, default_study: str | None) -> None:
    """--study, --storage, --runs-dir: where a search study lives (see `tinynas search`)."""
    parser.add_argument("--study", default=default_study,
                        help="a search study" + (f" (default {default_study})" if default_study
                                                 else " (with --trial)"))
    parser.add_argument("--storage", metavar="URL",
                        help="Optuna storage URL: sqlite:///F.db, postgresql://..., or a "
                        "journal file (default sqlite:///RUNS_DIR/tinynas.db)")
    parser.add_argument("--runs-dir", default="runs", metavar="DIR",
                        help="the search's runs directory (default ./runs)")


def model_arguments(parser: argparse.ArgumentParser, what: str = "a baseline name") -> None:
    """BASELINE | --genome FILE | --study S --trial N: how a command names its model."""
    parser.add_argument("baseline", nargs="?", help=f"{what} (see `baselines`)")
    parser.add_argument("--genome", metavar="FILE", help="a genome JSON file instead")
    parser.add_argument("--trial", type=int, metavar="N", help="a trial number of --study")
    study_arguments(parser, default_study=None)


def study_model(args: argparse.Namespace, need_checkpoint: bool,
                need_fit: bool = False) -> TrialModel | None:
    """The model ``--study S --trial N`` names (its checkpoint too, once trained); None when
    neither is given. ``need_checkpoint``: a trial never trained is refused (exit 2);
    ``need_fit``: so is a trial the search rejected for breaking its budget."""
    if args.study is None and args.trial is None:
        return None
    if args.study is None or args.trial is None:
        raise UsageError("--study and --trial go together: --study NAME --trial N (trial "
                         "numbers: `tinynas pareto --study NAME --all`)")
    if getattr(args, "baseline", None) is not None or getattr(args, "genome", None):
        raise UsageError("name one model: a BASELINE, --genome FILE or --study/--trial, not "
                         "several")
    # Imported here: Optuna and SQLAlchemy load only for commands that name a study.
    from nas.search.storage import open_study
    from nas.search.trials import trial_model

    study = open_study(args.study, args.storage, Path(args.runs_dir))
    return trial_model(study, args.trial, need_checkpoint, need_fit)


def check_new_dir(flag: str, path: Path) -> None:
    """Refuse, before any work, an output directory that cannot be created: one below a
    regular file, or in a directory this user cannot write. (Whether it may already exist
    is each command's own rule.)"""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise UsageError(f"{flag} '{path}': '{existing}' is a file, not a directory; choose "
                         "a path in a directory")
    if not os.access(existing if existing.is_dir() else existing.parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} '{path}': '{existing}' is not writable; choose a directory "
                         "you can write to")
