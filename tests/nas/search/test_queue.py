"""The queue: slots give exact counts, claims are exclusive, stale trials are failed and
replaced, the storage-wide lock excludes and breaks when its holder died."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.search import queue
from nas.search.optuna_private import trial_id_of
from nas.search.storage import resolve_storage


@pytest.fixture
def storage(tmp_path: Path) -> optuna.storages.BaseStorage:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return resolve_storage(f"sqlite:///{tmp_path / 'q.db'}", tmp_path)


def test_slots_top_up_to_the_count_and_claims_are_exclusive(storage) -> None:
    study = optuna.create_study(storage=storage, study_name="s")
    assert queue.enqueue_slots(study, 3) == 3
    assert queue.enqueue_slots(study, 3) == 0
    ids = [queue.claim(study) for _ in range(4)]
    assert ids[3] is None and len(set(ids[:3])) == 3
    # An interrupted trial does not count: a slot replaces it.
    queue.mark_interrupted(storage, ids[0], "interrupted")
    assert queue.counted(study) == 2
    assert queue.enqueue_slots(study, 3) == 1
    assert queue.claim(study) is not None


def test_a_smaller_count_leaves_later_slots_waiting(storage) -> None:
    study = optuna.create_study(storage=storage, study_name="s")
    queue.enqueue_slots(study, 5)
    first = queue.claim(study, limit=2)
    queue.mark_interrupted(storage, first, "interrupted")  # replaced by the next slot in line
    claimed = [queue.claim(study, limit=2) for _ in range(3)]
    assert claimed[2] is None
    assert [storage.get_trial(i).number for i in claimed[:2]] == [1, 2]


def test_stale_running_trial_is_failed(storage, monkeypatch) -> None:
    monkeypatch.setenv(queue.STALE_ENV, "30")
    study = optuna.create_study(storage=storage, study_name="s")
    dead, alive = study.ask(), study.ask()
    storage.set_trial_system_attr(trial_id_of(dead), queue.HEARTBEAT_ATTR, time.time() - 100)
    storage.set_trial_system_attr(trial_id_of(alive), queue.HEARTBEAT_ATTR, time.time())
    failed = queue.fail_stale([study])
    assert [t.number for t in failed] == [dead.number]
    frozen = study.trials[dead.number]
    assert frozen.state == TrialState.FAIL
    assert frozen.user_attrs["fail_reason"].startswith("worker stopped (no heartbeat since")
    assert frozen.user_attrs[queue.INTERRUPTED_ATTR] is True
    assert study.trials[alive.number].state == TrialState.RUNNING


def test_heartbeat_stamps_while_watched(storage, monkeypatch) -> None:
    monkeypatch.setenv(queue.STALE_ENV, "0.3")  # beats every 0.05 s
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    with queue.Heartbeat(storage) as beat:
        beat.watch(trial_id_of(trial))
        first = storage.get_trial(trial_id_of(trial)).system_attrs[queue.HEARTBEAT_ATTR]
        time.sleep(0.3)
        later = storage.get_trial(trial_id_of(trial)).system_attrs[queue.HEARTBEAT_ATTR]
    assert later > first


def test_lock_excludes_and_is_released(storage) -> None:
    inside, overlaps = [], []

    def hold() -> None:
        with queue.study_lock(storage, "s", poll_s=0.01):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [1, 1, 1]
    assert [s.study_name for s in storage.get_all_studies()] == []


def test_lock_left_by_a_dead_process_is_broken(storage, monkeypatch) -> None:
    monkeypatch.setenv(queue.STALE_ENV, "0.2")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s:lock")
    storage.set_study_user_attr(study_id, "time", time.time() - 10)
    started = time.monotonic()
    with queue.study_lock(storage, "s", poll_s=0.01):
        pass
    assert time.monotonic() - started < 5



# A separate process: claims slots of study ``s`` until none is left, prints their ids.
CLAIM_ALL = """
import sys
from pathlib import Path
import optuna
from nas.search import queue
from nas.search.storage import resolve_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
url, runs_dir = sys.argv[1:]
study = optuna.load_study(study_name="s", storage=resolve_storage(url, Path(runs_dir)))
while (trial_id := queue.claim(study)) is not None:
    print(trial_id)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_four_processes_never_claim_one_slot_twice(tmp_path: Path, kind: str) -> None:
    # Without the claim study, SQLite let two processes both move one WAITING trial to
    # RUNNING (no SELECT ... FOR UPDATE): CI saw two workers evaluate trial 2.
    url = f"sqlite:///{tmp_path / 'q.db'}" if kind == "sqlite" else str(tmp_path / "q.log")
    study = optuna.create_study(storage=resolve_storage(url, tmp_path), study_name="s")
    queue.enqueue_slots(study, 40)
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM_ALL, url, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [p.returncode for p in procs] == [0] * 4
    claimed = [int(i) for out in outs for i in out.split()]
    assert len(claimed) == 40 and len(set(claimed)) == 40
    assert {t.state for t in study.get_trials()} == {TrialState.RUNNING}
    assert queue.claim(study) is None
