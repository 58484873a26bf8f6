"""Progress reporting for long work (training, evaluation), decoupled from the loops.

The loops call a :class:`TrainProgress`; :class:`RichProgress` draws a rich progress bar with the
loss, learning rate, images/s and ETA (on the console it is given, the CLI's stderr, so JSON on
stdout stays clean); :class:`NoProgress` is silent.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainProgress(Protocol):
    def start(self, description: str, total: int | None, completed: int = 0) -> None: ...

    def update(self, completed: int, total: int | None = None, **stats: float) -> None: ...

    def log(self, text: str) -> None: ...

    def stop(self) -> None: ...


class NoProgress:
    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        pass

    def update(self, completed: int, total: int | None = None, **stats: float) -> None:
        pass

    def log(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


_STATS = "[cyan]{task.fields[stats]}"


class RichProgress:
    """One bar at a time; ``stats`` (loss=..., lr=..., img_s=...) shown next to it. When the
    console is not a terminal (a log file, CI), a plain line every ``log_every`` seconds
    instead, since a bar would only be drawn once, at the end."""

    def __init__(self, console: Console | None = None, log_every: float = 30.0) -> None:
        self.console = console or Console(stderr=True)
        self.log_every = log_every
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._description = ""
        self._total: int | None = None
        self._last_line = 0.0

    def start(self, description: str, total: int | None, completed: int = 0) -> None:
        self.stop()
        self._description, self._total = description, total
        self._last_line = time.monotonic()
        if not self.console.is_terminal:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn(_STATS), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=completed,
                                             stats="")

    def update(self, completed: int, total: int | None = None, **stats: float) -> None:
        text = "  ".join(_format(k, v) for k, v in stats.items())
        self._total = total if total is not None else self._total
        if self._progress is None or self._task is None:
            if self._description and time.monotonic() - self._last_line >= self.log_every:
                self._last_line = time.monotonic()
                of = f"/{self._total}" if self._total else ""
                self.console.print(f"{self._description}: {completed}{of}  {text}",
                                   highlight=False)
            return
        if total is not None:
            self._progress.update(self._task, completed=completed, total=total, stats=text)
        else:
            self._progress.update(self._task, completed=completed, stats=text)

    def log(self, text: str) -> None:
        (self._progress.console if self._progress else self.console).print(text, highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress, self._task, self._description = None, None, ""

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _format(key: str, value: float) -> str:
    if key == "lr":
        return f"lr {value:.2e}"
    if key == "img_s":
        return f"{value:.0f} img/s"
    return f"{key} {value:.3f}"
