"""Exact trial counts across processes and machines: slots, claiming, heartbeats, a lock.

``--trials N`` means N trials in the study. The driver enqueues the missing ones as WAITING
"slot" trials (under :func:`study_lock`); workers only ever *claim* a WAITING trial, never
create one, so K workers on any number of machines run exactly N. A claim is exclusive in
every storage because only the process that creates the trial's claim study (an atomic
insert of a unique name) may move the trial from WAITING to RUNNING (see :func:`_take`).

A trial that was interrupted (Ctrl-C, a killed worker) is FAIL with user attr
``tinynas_interrupted``; it does not count towards N, so the next run adds a slot in its place.
While a trial runs, a thread stamps system attr ``tinynas_heartbeat`` every
:data:`HEARTBEAT_S`; a RUNNING trial whose stamp is older than :func:`stale_after_s` belongs to
a dead worker and is failed, so it cannot stay RUNNING forever.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

import optuna
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from nas.search.optuna_private import storage_of, study_id_of, trial_id_of
from nas.search.storage import CLAIM_INFIX, LOCK_SUFFIX, interrupts_deferred

SLOT_ATTR = "tinynas_slot"
INTERRUPTED_ATTR = "tinynas_interrupted"
HEARTBEAT_ATTR = "tinynas_heartbeat"
FAIL_REASON = "fail_reason"
HEARTBEAT_S = 10.0
# Six missed beats: a busy machine may delay one, never six.
STALE_AFTER_S = 60.0
# Tests kill workers and cannot wait a minute; nothing else should set this.
STALE_ENV = "TINYNAS_STALE_AFTER_S"


def stale_after_s() -> float:
    return float(os.environ.get(STALE_ENV, STALE_AFTER_S))


def heartbeat_s() -> float:
    return min(HEARTBEAT_S, stale_after_s() / 6)


def counts(trial: FrozenTrial) -> bool:
    """Whether ``trial`` counts towards the requested number (interrupted ones do not)."""
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED_ATTR))


def counted(study: optuna.Study) -> int:
    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def enqueue_slots(study: optuna.Study, n_trials: int) -> int:
    """Add WAITING slots until ``study`` counts ``n_trials``; returns how many were added.
    Call under :func:`study_lock` so two drivers cannot both top up."""
    missing = n_trials - counted(study)
    for _ in range(max(0, missing)):
        study.enqueue_trial({}, user_attrs={SLOT_ATTR: True})
    return max(0, missing)


def claim(study: optuna.Study, limit: int | None = None) -> int | None:
    """The id of a WAITING trial of ``study`` now RUNNING for us, or None if none is left.
    With ``limit``, only slots among the first ``limit`` counted trials are claimed: slots a
    longer earlier run left behind stay WAITING when a rerun asks for fewer trials."""
    storage = storage_of(study)
    trials = storage.get_all_trials(study_id_of(study), deepcopy=False)
    if limit is not None:
        trials = sorted((t for t in trials if counts(t)), key=lambda t: t.number)[:limit]
    for trial in trials:
        if trial.state == TrialState.WAITING and _take(storage, study.study_name,
                                                       trial_id_of(trial)):
            return trial_id_of(trial)
    return None


def _take(storage: BaseStorage, study_name: str, trial_id: int) -> bool:
    """Move ``trial_id`` from WAITING to RUNNING if no other process did.

    ``set_trial_state_values(RUNNING)`` alone is not a compare-and-set on SQLite: SQLite has
    no ``SELECT ... FOR UPDATE``, so two processes can both read WAITING and both "win" (CI
    saw two workers run one trial). Creating a uniquely named study is atomic in every
    storage, so only the creator of the trial's claim study may move it, and it re-reads the
    state first: a process that read WAITING before the winner moved it then sees RUNNING."""
    with try_lock(storage, f"{study_name}{CLAIM_INFIX}{trial_id}") as held:
        if not held or storage.get_trial(trial_id).state != TrialState.WAITING:
            return False
        try:
            return storage.set_trial_state_values(trial_id, state=TrialState.RUNNING)
        except UpdateFinishedTrialError:
            return False


def mark_interrupted(storage: BaseStorage, trial_id: int, reason: str) -> None:
    """FAIL ``trial_id`` as interrupted (it will be replaced), unless it already ended."""
    try:
        storage.set_trial_user_attr(trial_id, FAIL_REASON, reason)
        storage.set_trial_user_attr(trial_id, INTERRUPTED_ATTR, True)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        pass


def last_sign_of_life(trial: FrozenTrial) -> float:
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    if isinstance(beat, int | float):
        return float(beat)
    start = trial.datetime_start or datetime.now()
    return start.timestamp()


def fail_stale(studies: Iterable[optuna.Study], now: float | None = None) -> list[FrozenTrial]:
    """FAIL every RUNNING trial with no heartbeat for :func:`stale_after_s`; returns them."""
    now = time.time() if now is None else now
    limit = stale_after_s()
    failed = []
    for study in studies:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            seen = last_sign_of_life(trial)
            if now - seen <= limit:
                continue
            since = datetime.fromtimestamp(seen).strftime("%Y-%m-%d %H:%M:%S")
            mark_interrupted(storage_of(study), trial_id_of(trial),
                             f"worker stopped (no heartbeat since {since})")
            failed.append(trial)
    return failed


class Heartbeat:
    """A daemon thread stamping the trials it watches every :func:`heartbeat_s` seconds."""

    def __init__(self, storage: BaseStorage) -> None:
        self._storage = storage
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tinynas-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def watch(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)
        self._beat({trial_id})

    def forget(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(heartbeat_s()):
            with self._lock:
                ids = set(self._ids)
            self._beat(ids)

    def _beat(self, ids: set[int]) -> None:
        for trial_id in ids:
            # A trial may end between the copy and the write; a missed beat is harmless.
            with contextlib.suppress(UpdateFinishedTrialError, KeyError):
                self._storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())


_LOCK_TIME = "time"
# When this process first saw a lock without a stamp (its holder may have died between
# creating and stamping it): such a lock is stale that long after the first sighting.
_unstamped_since: dict[str, float] = {}


@contextlib.contextmanager
def study_lock(storage: BaseStorage, name: str, poll_s: float = 0.2) -> Iterator[None]:
    """A mutex over every process using ``storage``, held while the block runs; waits for
    it, breaking a lock left by a dead process (see :func:`try_lock`)."""
    while True:
        with try_lock(storage, name + LOCK_SUFFIX) as held:
            if held:
                yield
                return
        time.sleep(poll_s)


@contextlib.contextmanager
def try_lock(storage: BaseStorage, lock_name: str) -> Iterator[bool]:
    """Take the lock ``lock_name`` if it is free: yields whether this process holds it.

    Creating a study is atomic in every Optuna storage (names are unique), so the holder is
    whoever created the study ``lock_name``; releasing deletes it. A lock older than
    :func:`stale_after_s` was left by a dead process and is broken (not taken: the caller
    tries again). Ctrl-C waits while the lock is taken or released, so an interrupted
    process never leaves it behind for the others to wait on."""
    study_id: int | None = None
    try:
        with interrupts_deferred():
            study_id = _create_lock(storage, lock_name)
        if study_id is None:
            _break_if_stale(storage, lock_name)
        yield study_id is not None
    finally:
        if study_id is not None:
            with interrupts_deferred(), contextlib.suppress(KeyError):
                storage.delete_study(study_id)


def _create_lock(storage: BaseStorage, lock_name: str) -> int | None:
    try:
        study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], lock_name)
    except DuplicatedStudyError:
        return None
    storage.set_study_user_attr(study_id, _LOCK_TIME, time.time())
    return study_id


def _break_if_stale(storage: BaseStorage, lock_name: str) -> None:
    try:
        study_id = storage.get_study_id_from_name(lock_name)
        stamp = storage.get_study_user_attrs(study_id).get(_LOCK_TIME)
    except KeyError:
        return  # released meanwhile
    now = time.time()
    if not isinstance(stamp, int | float):
        stamp = _unstamped_since.setdefault(lock_name, now)
    if now - stamp > stale_after_s():
        _unstamped_since.pop(lock_name, None)
        with contextlib.suppress(KeyError):
            storage.delete_study(study_id)
