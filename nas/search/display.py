"""What a running search shows on stderr: a rich live panel on a terminal, one plain line per
finished trial otherwise (logs, CI), nothing with ``--quiet``.

The display is fed :class:`Tally` snapshots read from the storage, so it shows the same thing
whether this process, its worker processes or other machines ran the trials.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.live import Live
from rich.table import Table

from nas.search.optuna_private import trial_id_of
from nas.search.queue import FAIL_REASON, counts
from nas.search.trials import feasible, front_trials


@dataclass(frozen=True)
class Tally:
    """A snapshot of the main study (and its baselines) for the display and the summary."""

    n_trials: int | None
    done: int                     # finished main trials that count towards N
    complete: int
    feasible: int
    rejected: int
    pruned: int
    failed: int
    running: int
    front: tuple[int, ...]
    best_proxy: float | None
    best_latency_ms: float | None
    baselines_done: int
    baselines_total: int
    elapsed: float
    eta: float | None
    finished: tuple[FrozenTrial, ...]   # main then baselines, for per-trial lines

    @classmethod
    def of(cls, main_study: optuna.Study, baselines_study: optuna.Study, *,
           n_trials: int | None, deadline: float | None, elapsed: float,
           done_before: int) -> Tally:
        # The front first: a trial on it stays complete and feasible, so it is among the
        # trials read after it (read the other way round, a trial finishing in between could
        # be on the front but not yet counted).
        front = sorted(t.number for t in front_trials(main_study))
        main = main_study.get_trials(deepcopy=False)
        baselines = baselines_study.get_trials(deepcopy=False)
        live = [t for t in main if counts(t)]
        ended = [t for t in live if t.state.is_finished()]
        ok = [t for t in ended if feasible(t)]
        done = len(ended)
        return cls(
            n_trials=n_trials, done=done,
            complete=sum(t.state == TrialState.COMPLETE for t in ended), feasible=len(ok),
            rejected=sum("rejected" in t.user_attrs for t in ended),
            pruned=sum(t.state == TrialState.PRUNED for t in ended),
            failed=sum(t.state == TrialState.FAIL for t in ended),
            running=sum(t.state == TrialState.RUNNING for t in main),
            front=tuple(front),
            best_proxy=max((t.values[0] for t in ok), default=None),
            best_latency_ms=min((t.values[1] for t in ok), default=None),
            baselines_done=sum(t.state.is_finished() and counts(t) for t in baselines),
            baselines_total=sum(counts(t) for t in baselines),
            elapsed=elapsed, eta=_eta(done, done_before, n_trials, deadline, elapsed),
            finished=tuple(t for t in [*main, *baselines] if t.state.is_finished()))


def _eta(done: int, done_before: int, n_trials: int | None, deadline: float | None,
         elapsed: float) -> float | None:
    left_by_time = max(0.0, deadline - time.time()) if deadline is not None else None
    ran = done - done_before
    if n_trials is None or ran <= 0:
        return left_by_time
    by_count = elapsed / ran * max(0, n_trials - done)
    return by_count if left_by_time is None else min(by_count, left_by_time)


class SearchProgress(ABC):
    @abstractmethod
    def refresh(self, tally: Tally) -> None: ...

    def __enter__(self) -> SearchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None  # nothing to tear down unless a subclass draws something


class QuietProgress(SearchProgress):
    def refresh(self, tally: Tally) -> None:
        pass


class PlainProgress(SearchProgress):
    """One line per trial as it finishes (each trial once, in the order they are seen)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._seen: set[int] = set()

    def refresh(self, tally: Tally) -> None:
        run_start = time.time() - tally.elapsed
        # By storage id: the main study's and the baselines' trial numbers overlap.
        fresh = [t for t in tally.finished if trial_id_of(t) not in self._seen]
        self._seen.update(trial_id_of(t) for t in fresh)
        # A continued study: what ended before this run was printed by earlier runs.
        fresh = [t for t in fresh if _ended_at(t) >= run_start]
        for trial in sorted(fresh, key=lambda t: (_ended_at(t), t.number)):
            self.console.print(f"{trial_line(trial)}  [{_count(tally)}]", highlight=False,
                               soft_wrap=True)


def _ended_at(trial: FrozenTrial) -> float:
    end = trial.datetime_complete
    return end.timestamp() if end is not None else 0.0


def _count(tally: Tally) -> str:
    of = f"/{tally.n_trials}" if tally.n_trials is not None else ""
    return f"{tally.done}{of} done, {tally.feasible} feasible"


def trial_line(trial: FrozenTrial) -> str:
    """``trial 7: proxy 0.412, 23.1 ms`` / ``rejected (...)`` / ``pruned (...)``."""
    who = (f"baseline {trial.user_attrs['baseline']}" if "baseline" in trial.user_attrs
           else f"trial {trial.number}")
    attrs = trial.user_attrs
    if trial.state == TrialState.COMPLETE and "rejected" in attrs:
        return f"{who}: rejected ({attrs['rejected']})"
    if trial.state == TrialState.COMPLETE and trial.values:
        return f"{who}: proxy {_num(trial.values[0])}, {trial.values[1]:.1f} ms"
    reason = attrs.get(FAIL_REASON, "")
    return f"{who}: {trial.state.name.lower()}" + (f" ({reason})" if reason else "")


def _num(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


class LiveProgress(SearchProgress):
    """A rich panel redrawn in place: counts, front size, best values, elapsed and ETA."""

    def __init__(self, console: Console, title: str) -> None:
        self.title = title
        self._live = Live(console=console, refresh_per_second=4, transient=False)
        self._tally: Tally | None = None

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def refresh(self, tally: Tally) -> None:
        self._live.update(self.render(tally))

    def render(self, tally: Tally) -> Table:
        table = Table(title=self.title, show_header=False, box=None, padding=(0, 2))
        table.add_column("what", style="bold")
        table.add_column("value")
        for what, value in progress_rows(tally):
            table.add_row(what, value)
        return table


def progress_rows(tally: Tally) -> list[tuple[str, str]]:
    of = f" of {tally.n_trials}" if tally.n_trials is not None else ""
    rows = [
        ("trials", f"{tally.done}{of} done, {tally.running} running"),
        ("outcome", f"{tally.feasible} feasible, {tally.rejected} rejected by budget, "
                    f"{tally.pruned} pruned, {tally.failed} failed"),
        ("front", f"{len(tally.front)} trials"),
        ("best", _best(tally)),
        ("time", f"{_clock(tally.elapsed)} elapsed"
                 + (f", ETA {_clock(tally.eta)}" if tally.eta is not None else "")),
    ]
    if tally.baselines_total:
        rows.insert(1, ("baselines", f"{tally.baselines_done} of {tally.baselines_total}"))
    return rows


def _best(tally: Tally) -> str:
    if tally.best_proxy is None or tally.best_latency_ms is None:
        return "no feasible trial yet"
    return f"proxy {_num(tally.best_proxy)}, latency {tally.best_latency_ms:.1f} ms"


def _clock(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def make_progress(console: Console, quiet: bool, title: str) -> SearchProgress:
    if quiet:
        return QuietProgress()
    if console.is_terminal:
        return LiveProgress(console, title)
    return PlainProgress(console)


def summary_rows(tally: Tally) -> dict[str, Any]:
    return {"trials": tally.done, "complete": tally.complete, "feasible": tally.feasible,
            "rejected": tally.rejected, "pruned": tally.pruned, "failed": tally.failed,
            "front": list(tally.front)}
