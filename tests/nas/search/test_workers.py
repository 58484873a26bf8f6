"""Many workers on one storage: ``tinynas search --workers 4`` (and two such commands started at
once) against SQLite, a journal file and a real PostgreSQL server give exactly N trials, each
evaluated once, every fitting baseline evaluated once, and no lock errors; Ctrl-C during a
4-worker run leaves no trial RUNNING; a worker whose trial was replaced goes on; baselines a
dead creator did not queue are queued by the next run; processes opening a new database at
once all succeed.

The command runs as a subprocess through a thin wrapper that logs every trial evaluation
(study, number, process) to a file, so work done twice on one trial is counted, not guessed.
The PostgreSQL server is started by the tests on loopback when its binaries are installed
(``.ci/run`` installs them); without them the test is skipped, or fails under CI.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from nas.errors import UsageError
from nas.search import driver, queue
from nas.search.optuna_private import storage_of, study_id_of, trial_id_of
from nas.search.storage import engine_url, interrupts_deferred, resolve_storage
from objectives.data.demo import DEMO_SIZES, write_demo
from search_space.baselines import list_baselines
from search_space.model import DETECTION

REPO = Path(__file__).resolve().parents[3]
TRIALS = 12
EVAL_LOG_ENV = "TINYNAS_TEST_EVAL_LOG"
# `tinynas` with every TrialRunner.run logged. Spawned workers import this file as their main
# module, so the patch holds in them too; the line is written before the trial is evaluated.
WRAPPER = f'''
import os
import sys

from nas.search import objective

_run = objective.TrialRunner.run


def logged_run(self, trial):
    line = f"{{trial.study.study_name}}\\t{{trial.number}}\\t{{os.getpid()}}\\n"
    fd = os.open(os.environ["{EVAL_LOG_ENV}"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return _run(self, trial)


objective.TrialRunner.run = logged_run

if __name__ == "__main__":
    from nas.cli import main

    sys.exit(main())
'''


# -- a throwaway PostgreSQL server ----------------------------------------------------------------

PG_USER = "tinynas"
PG_START_TIMEOUT_S = 60


def postgres_bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``: from PATH, else Debian's
    versioned ``/usr/lib/postgresql/N/bin`` (not on PATH there), newest first."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(d) for d in sorted(versions, key=_major, reverse=True)]
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _major(bin_dir: str) -> int:
    name = Path(bin_dir).parent.name
    return int(name) if name.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A cluster in a temporary directory, served on 127.0.0.1 only, trusting local users."""

    bin_dir: Path
    root: Path
    port: int
    account: pwd.struct_passwd | None   # whom to run as (initdb and postgres refuse root)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        as_user: dict[str, Any] = {}
        if self.account is not None:
            as_user = {"user": self.account.pw_uid, "group": self.account.pw_gid,
                       "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        return subprocess.run([str(self.bin_dir / argv[0]), *argv[1:]], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=120, check=check,
                              **as_user)

    def start(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "--no-sync",
                 "--locale=C", "-E", "UTF8")
        # Loopback TCP only, the socket in our directory (not /var/run/postgresql, which
        # may not exist or belong to another user), and no durability: it is a test.
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        done = self.run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                        "-w", "-t", str(PG_START_TIMEOUT_S), "-o", options, "start",
                        check=False)
        if done.returncode != 0:
            log = (self.root / "server.log")
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{tail}")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "stop", "-m", "immediate", "-w", check=False)

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER,
                                dbname="postgres", connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


def _server_account() -> pwd.struct_passwd | None:
    """None when not root (run as ourselves); as root, Debian's ``postgres`` user, else
    ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root and neither user 'postgres' nor 'nobody' exists to run "
                "the PostgreSQL server")


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        reason = ("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
                  "/usr/lib/postgresql/*/bin; install Debian's `postgresql` package (.ci/run does)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    account = _server_account()
    # Not tmp_path: pytest's temporary root is private to us, and the server's user (as
    # root: another one) must own its directory.
    root = Path(tempfile.mkdtemp(prefix="tinynas-pg-"))
    if account is not None:
        os.chown(root, account.pw_uid, account.pw_gid)
    server = None
    try:
        for _attempt in range(3):  # the free port may be taken before the server binds it
            candidate = PostgresServer(bin_dir, root, _free_port(), account)
            shutil.rmtree(candidate.data, ignore_errors=True)
            try:
                candidate.start()
            except RuntimeError as exc:
                error = exc
                candidate.stop()
                continue
            server = candidate
            break
        if server is None:
            pytest.fail(f"could not start PostgreSQL from {bin_dir}: {error}")
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the test server."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())
    return postgres_server.create_database(name[:60])


# -- running tinynas ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo(tmp_path_factory.mktemp("workers") / "data", DEMO_SIZES["small"])


@pytest.fixture
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'search.db'}"
    if kind == "journal":
        return f"journal:{tmp_path / 'search.log'}"
    return str(request.getfixturevalue("postgres_url"))


STORAGES = pytest.mark.parametrize("storage_url", ["sqlite", "journal", "postgresql"],
                                   indirect=True)


@dataclass
class Search:
    """One ``tinynas search`` subprocess."""

    proc: subprocess.Popen[str]

    def wait(self) -> tuple[int, dict[str, Any] | None, str]:
        try:
            out, err = self.proc.communicate(timeout=600)
        finally:
            self.kill()
        return self.proc.returncode, (json.loads(out) if out.strip() else None), err

    def kill(self) -> None:
        """SIGKILL whatever is left of its process group (workers included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def start_search(tmp_path: Path, demo_data: Path) -> Iterator[Callable[[str, int], Search]]:
    """Starts ``tinynas search`` subprocesses; kills any left when the test ends."""
    started: list[Search] = []

    def start(url: str, workers: int) -> Search:
        started.append(_start_search(tmp_path, demo_data, url, workers))
        return started[-1]

    yield start
    for search in started:
        search.kill()


def _start_search(tmp_path: Path, demo_data: Path, url: str, workers: int) -> Search:
    """``tinynas search`` in its own process group (a Ctrl-C sent to it reaches its workers,
    as in a terminal, and nothing else)."""
    wrapper = tmp_path / "tinynas_logged.py"
    if not wrapper.is_file():
        wrapper.write_text(WRAPPER)
    # Generous budgets: most genomes and baselines fit, so most trials reach the proxy.
    argv = [sys.executable, str(wrapper), "search", "--target", "stm32h7", "--flash", "2MiB",
            "--ram", "900KiB", "--data", str(demo_data), "--runs-dir", str(tmp_path / "runs"),
            "--storage", url, "--trials", str(TRIALS), "--proxy", "params",
            "--workers", str(workers), "--quiet", "--json"]
    env = {**os.environ, EVAL_LOG_ENV: str(tmp_path / "evaluations.log"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    return Search(proc)


def evaluations(tmp_path: Path) -> tuple[Counter[tuple[str, int]], set[int]]:
    """How often each (study, trial number) was evaluated, and by which processes."""
    log = tmp_path / "evaluations.log"
    rows = [line.split("\t") for line in log.read_text().splitlines()] if log.is_file() else []
    return Counter((study, int(number)) for study, number, _ in rows), {int(r[2]) for r in rows}


def assert_clean_stderr(err: str) -> None:
    for bad in ("Traceback", "locked", "lock", "Error", "worker"):
        assert bad.lower() not in err.lower(), err


def load(tmp_path: Path, url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name,
                             storage=resolve_storage(url, tmp_path / "runs", create=False))


def assert_exactly_once(tmp_path: Path, url: str) -> set[int]:
    """The study counts exactly TRIALS trials, all finished, every fitting baseline ran once,
    no trial was evaluated twice and no lock or claim study is left; returns the evaluating
    processes. Interrupted trials (replaced, not counted) may be there too."""
    main = load(tmp_path, url, "search").trials
    baselines = load(tmp_path, url, "search:baselines")
    assert sorted(t.number for t in main) == list(range(len(main)))
    assert len([t for t in main if queue.counts(t)]) == TRIALS
    assert_complete_or_interrupted(main + baselines.trials)
    names = Counter(t.user_attrs["baseline"] for t in baselines.trials if queue.counts(t))
    assert names and set(names.values()) == {1}, names
    not_fitting = set(baselines.user_attrs["not_fitting"])
    assert not_fitting.isdisjoint(names)
    assert set(names) | not_fitting == {b.name for b in list_baselines(DETECTION)}
    counted, pids = evaluations(tmp_path)
    runs = [("search", t) for t in main] + [("search:baselines", t) for t in baselines.trials]
    for study, trial in runs:  # an interrupt may come before the evaluation starts
        allowed = {1} if queue.counts(trial) else {0, 1}
        assert counted.pop((study, trial.number), 0) in allowed, (study, trial.number)
    assert not counted  # nothing else was evaluated
    # Claim and lock studies are gone: each was released by its holder.
    storage = resolve_storage(url, tmp_path / "runs", create=False)
    assert sorted(s.study_name for s in storage.get_all_studies()) == [
        "search", "search:baselines"]
    return pids


def assert_complete_or_interrupted(trials: list[FrozenTrial]) -> None:
    """COMPLETE with no failure recorded (a second worker on a finished trial would have left
    an UpdateFinishedTrialError, or failed the trial), or FAIL as interrupted by Ctrl-C."""
    for trial in trials:
        if queue.counts(trial):
            assert trial.state == TrialState.COMPLETE, (trial.number, trial.state,
                                                        trial.user_attrs)
            assert "fail_reason" not in trial.user_attrs, trial.user_attrs
        else:
            assert trial.user_attrs["fail_reason"] == "interrupted", trial.user_attrs


# -- the tests ------------------------------------------------------------------------------------

@pytest.mark.slow
@STORAGES
def test_four_workers_run_each_trial_exactly_once(storage_url: str, start_search,
                                                  tmp_path: Path) -> None:
    code, row, err = start_search(storage_url, 4).wait()
    assert code == 0, err
    assert_clean_stderr(err)
    assert row is not None and row["trials"] == TRIALS and row["interrupted"] is False
    pids = assert_exactly_once(tmp_path, storage_url)
    assert len(pids) >= 2  # the work was shared, so claims really raced


@pytest.mark.slow
@STORAGES
def test_two_commands_started_at_once_share_the_count(storage_url: str, start_search,
                                                      tmp_path: Path) -> None:
    # Two machines starting the same search: both create-or-load the studies, both top up
    # the queue, and only one enqueues the baselines.
    searches = [start_search(storage_url, 2) for _ in range(2)]
    results = [s.wait() for s in searches]
    for code, row, err in results:
        assert code == 0, err
        assert_clean_stderr(err)
        assert row is not None and row["trials"] == TRIALS
    assert_exactly_once(tmp_path, storage_url)


@pytest.mark.slow
def test_ctrl_c_leaves_no_trial_running_and_the_rerun_gives_the_count(start_search,
                                                                      tmp_path: Path) -> None:
    # Ctrl-C used to reach a worker inside a SQLite call now and then: a read lock stayed
    # with the half-used connection, the other workers waited out the 2-minute busy timeout
    # and were killed, and their trials stayed RUNNING until their heartbeats went stale.
    url = f"sqlite:///{tmp_path / 'search.db'}"
    search = start_search(url, 4)
    _wait_until_complete(tmp_path, url, search, 3)
    os.killpg(search.proc.pid, signal.SIGINT)
    code, row, err = search.wait()
    assert code == 130 and row is not None and row["interrupted"] is True, err
    assert "Traceback" not in err and "locked" not in err and "worker" not in err, err
    trials = load(tmp_path, url, "search").trials + load(tmp_path, url, "search:baselines").trials
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert_complete_or_interrupted([t for t in trials if t.state != TrialState.WAITING])
    code, row, err = start_search(url, 4).wait()
    assert code == 0, err
    assert_clean_stderr(err)
    assert row is not None and row["trials"] == TRIALS
    assert_exactly_once(tmp_path, url)


def _wait_until_complete(tmp_path: Path, url: str, search: Search, n: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert search.proc.poll() is None, search.wait()
        with contextlib.suppress(Exception):  # the file or the study does not exist yet
            if len(load(tmp_path, url, "search").get_trials(
                    deepcopy=False, states=(TrialState.COMPLETE,))) >= n:
                return
        time.sleep(0.2)
    raise AssertionError(f"{n} trials never completed")


def test_a_worker_whose_trial_was_replaced_moves_on(tmp_path: Path) -> None:
    # A suspended machine wakes up after another process failed its trial as stale and
    # queued a replacement: its next write to the trial raises UpdateFinishedTrialError,
    # which used to end the worker ("worker N: UpdateFinishedTrialError").
    storage = resolve_storage(f"sqlite:///{tmp_path / 'q.db'}", tmp_path)
    study = optuna.create_study(storage=storage, study_name="s")
    queue.enqueue_slots(study, 2)
    taken = queue.claim(study)
    assert taken is not None
    queue.mark_interrupted(storage, taken, "worker stopped (no heartbeat since then)")

    class LateRunner:
        def run(self, trial: optuna.Trial) -> None:
            trial.set_user_attr("estimate", {})

    driver._evaluate(study, taken, LateRunner())  # type: ignore[arg-type]
    trial = storage.get_trial(taken)
    assert trial.state == TrialState.FAIL and "estimate" not in trial.user_attrs
    assert queue.claim(study) is not None  # the other slot is still there to run


@pytest.mark.slow
def test_baselines_left_unqueued_by_a_dead_creator_are_queued_by_the_next_run(
        cli, demo_data: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'search.db'}"
    args = ["search", "--target", "stm32h7", "--flash", "2MiB", "--ram", "900KiB", "--data",
            str(demo_data), "--runs-dir", str(tmp_path / "runs"), "--storage", url,
            "--proxy", "params", "--quiet", "--json"]
    code, _, err = cli(*args, "--trials", "1")
    assert code == 0, err
    storage = resolve_storage(url, tmp_path)
    # Rebuild the baselines study as a creator killed after queueing one baseline left it:
    # its config is stored, the `not_fitting` attr (written last) is not.
    old = load(tmp_path, url, "search:baselines")
    fitting = sorted(t.user_attrs["baseline"] for t in old.trials)
    storage.delete_study(study_id_of(old))
    main = load(tmp_path, url, "search")
    partial = optuna.create_study(storage=storage, study_name="search:baselines",
                                  directions=main.directions)
    partial.set_metric_names(main.metric_names)
    partial.set_user_attr("tinynas", main.user_attrs["tinynas"])
    partial.enqueue_trial({}, user_attrs={"baseline": fitting[0], queue.SLOT_ATTR: True})
    code, _, err = cli(*args, "--trials", "2")
    assert code == 0, err
    baselines = load(tmp_path, url, "search:baselines")
    assert sorted(t.user_attrs["baseline"] for t in baselines.trials) == fitting
    assert all(t.state == TrialState.COMPLETE for t in baselines.trials)
    assert "not_fitting" in baselines.user_attrs


def test_a_postgresql_url_without_a_driver_uses_psycopg2(tmp_path: Path) -> None:
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3, which is not installed: the URL the
    # README shows failed with "Failed to import DB access module".
    assert engine_url("postgresql://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"
    assert engine_url("postgres://u@h:5433/db") == "postgresql+psycopg2://u@h:5433/db"
    assert engine_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(UsageError) as caught:  # nothing listens on port 1
        resolve_storage(f"postgresql://u:secret@127.0.0.1:{_free_port()}/db", tmp_path)
    message = str(caught.value)
    assert "cannot open it" in message and "secret" not in message
    assert "DB access module" not in message


def test_ctrl_c_waits_until_the_deferred_block_ends_unless_pressed_three_times() -> None:
    inside = []
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # a handler would have run by now
        inside.append("finished")
    assert inside == ["finished"]
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        for _ in range(3):  # a hung storage call stays stoppable
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        inside.append("not reached")
    assert inside == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# Imports first, then waits for the go file, so that every process opens the storage at once.
OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from nas.search.storage import resolve_storage
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.001)
resolve_storage(url, Path("."))
"""


@pytest.mark.slow
@pytest.mark.parametrize("storage_url", ["sqlite", "postgresql"], indirect=True)
def test_processes_opening_a_new_database_at_once_all_succeed(storage_url: str,
                                                              tmp_path: Path) -> None:
    # Each creates Optuna's tables; the losers failed with "table studies already exists",
    # "UNIQUE constraint failed: alembic_version" or, on PostgreSQL, a duplicate key in pg_type.
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, storage_url, str(r), str(go)],
                              cwd=REPO, stderr=subprocess.PIPE, text=True) for r in ready]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        errors = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [p.returncode for p in procs] == [0] * len(procs), "\n".join(errors)


def _nsga2_with_stale_search_space(sampler: optuna.samplers.NSGAIISampler) -> dict[str, Any]:
    """What a worker's NSGA-II sees when two parents complete between Optuna working out the
    search space and reading the parents: a space with ``extra`` and parents without it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def add(value: float, with_extra: bool) -> None:
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        if with_extra:
            trial.suggest_categorical("extra", [64, 128])
        study.tell(trial, value)

    add(0.1, True)
    add(0.2, True)  # generation 0, both with `extra`
    space = sampler.infer_relative_search_space(study, study.trials[-1])
    assert "extra" in space
    add(0.8, False)
    add(0.9, False)  # generation 1: the best, so the parents of generation 2
    trial = study.ask()
    frozen = storage_of(study).get_trial(trial_id_of(trial))
    return sampler.sample_relative(study, frozen, space)


def test_nsga2_parents_without_a_parameter_of_the_space_do_not_fail_the_trial() -> None:
    # Plain NSGAIISampler raises KeyError('extra') here; four workers hit it now and then
    # ("KeyError: 'extra0_ch'" as a trial's fail_reason).
    for seed in range(5):  # crossover or copying a parent: both read every parameter
        sampled = _nsga2_with_stale_search_space(
            driver.SharedParamsNSGAIISampler(population_size=2, seed=seed))
        assert set(sampled) <= {"x"}
