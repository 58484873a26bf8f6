"""What every ``tinynas`` command shares: the :class:`Command` interface, :class:`Output`,
exit codes, and which exceptions count as the user's mistake (one line, exit code 2)."""

from __future__ import annotations

import argparse
import json
import sys
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from rich.console import Console

from estimators.budgets import BudgetError
from estimators.targets import TargetError
from nas.models import UsageError
from search_space.baselines import BaselineError
from search_space.genome import GenomeError

EXIT_OK, EXIT_DOES_NOT_FIT, EXIT_USAGE = 0, 1, 2
# Errors that mean "the user asked for something invalid", never a bug of ours.
USER_ERRORS = (UsageError, BudgetError, TargetError, BaselineError, GenomeError)


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
        self.notes = Console(stderr=True)

    def emit(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")

    def note(self, text: str) -> None:
        self.notes.print(f"[yellow]note:[/] {text}", highlight=False)
