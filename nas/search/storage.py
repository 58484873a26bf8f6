"""Where a search lives: an Optuna storage named by a URL, and opening its studies.

Accepted forms (``--storage``):

* none: ``sqlite:///<runs-dir>/tinynas.db`` (the runs directory is created);
* ``sqlite:///PATH`` (relative) or ``sqlite:////abs/PATH``: one file, several local workers;
* ``postgresql://...``, ``postgresql+psycopg2://...``, ``mysql...://...``: a database server,
  for workers on several machines;
* ``journal:PATH``, or a path ending in ``.log`` / ``.journal``: Optuna's journal file, for a
  shared (e.g. NFS) directory where SQLite's locks are unreliable.

Every failure to open a storage is a :class:`UsageError` naming the URL (password hidden):
the user typed it.

Ctrl-C never cuts a storage call short: it takes effect when the call returns (see
:func:`interrupts_deferred`).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from nas.errors import UsageError
from nas.search.optuna_private import rdb_cache_calls

DEFAULT_DB = "tinynas.db"
SQLITE_PREFIX = "sqlite:///"
JOURNAL_PREFIX = "journal:"
JOURNAL_SUFFIXES = (".log", ".journal")
_RDB_PREFIXES = ("sqlite:", "postgresql:", "postgresql+", "postgres:", "mysql:", "mysql+")
# Studies tinynas keeps next to a search study; views list only the main ones.
LOCK_SUFFIX = ":lock"
SIDE_SUFFIXES = (":baselines", ":prune", LOCK_SUFFIX)
CLAIM_INFIX = ":claim:"  # NAME:claim:TRIAL_ID exists while a worker claims that trial
VALID_FORMS = ("sqlite:///PATH, postgresql://USER:PASS@HOST/DB, mysql://USER:PASS@HOST/DB, "
               "journal:PATH or a PATH ending in .log/.journal")
# Several worker processes write one SQLite file; wait for its lock rather than fail.
SQLITE_TIMEOUT_S = 120.0
# A server that does not answer should fail the command quickly, not after minutes.
CONNECT_TIMEOUT_S = 10
# The PostgreSQL driver tinynas installs. SQLAlchemy 2.1 maps a bare postgresql:// to psycopg
# (version 3), which is not installed, and no longer accepts postgres:// at all.
POSTGRES_DRIVER = "postgresql+psycopg2://"
_BARE_POSTGRES = ("postgresql://", "postgres://")
# Opening a new database retries this often when another process created the tables meanwhile.
SCHEMA_ATTEMPTS = 5
_SCHEMA_RACE_SIGNS = ("already exists", "duplicate key", "UNIQUE constraint failed",
                      "Duplicate entry")


def default_url(runs_dir: Path) -> str:
    return f"{SQLITE_PREFIX}{runs_dir / DEFAULT_DB}"


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (it ends up in logs and JSON)."""
    if "://" not in url or "@" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as the user typed it
        return url


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL_PREFIX) or url.endswith(JOURNAL_SUFFIXES)


def resolve_storage(url: str | None, runs_dir: Path, *, create: bool = True) -> BaseStorage:
    """The storage ``url`` names (the runs directory's SQLite file when None). With
    ``create=False`` (read-only commands) a file that does not exist is refused instead of
    created empty."""
    if url is None and create:
        _make_dir(runs_dir, "--runs-dir")
    url = check_url(url, runs_dir, create=create)
    if is_journal(url):
        return _opened(url, lambda: DeferringJournalStorage(
            JournalFileBackend(str(_journal_path(url)))))
    return _rdb(url)


def check_url(url: str | None, runs_dir: Path, *, create: bool = True) -> str:
    """``url`` (or the default) checked without touching anything: a command can refuse a bad
    URL before it reads data or writes a file."""
    if url is None:
        path = runs_dir / DEFAULT_DB
        if not create and not path.is_file():
            raise UsageError(f"no search in --runs-dir '{runs_dir}' ('{path}' does not "
                             "exist); give --storage URL or --runs-dir DIR of a search")
        return default_url(runs_dir)
    url = url.strip()
    if is_journal(url):
        path = _journal_path(url)
        if not str(path) or str(path) == ".":
            raise UsageError(f"--storage {url!r}: names no file; e.g. journal:runs/search.log")
        _need_file(path, url, create)
    elif url.startswith("sqlite:"):
        path = _sqlite_path(url)
        if path is not None:
            _need_file(path, url, create)
    elif not url.startswith(_RDB_PREFIXES):
        raise UsageError(f"--storage {url!r}: not a storage URL; use {VALID_FORMS}")
    return url


def _journal_path(url: str) -> Path:
    return Path(url[len(JOURNAL_PREFIX):] if url.startswith(JOURNAL_PREFIX) else url)


def _make_dir(path: Path, flag: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} '{path}': cannot create it ({exc.strerror})") from None


def _need_file(path: Path, url: str, create: bool) -> None:
    if path.is_dir():
        raise UsageError(f"--storage {url!r}: '{path}' is a directory; name a file")
    if not create and not path.is_file():
        raise UsageError(f"--storage {url!r}: '{path}' does not exist (no search has "
                         "written there yet)")
    if create and not path.parent.is_dir():
        raise UsageError(f"--storage {url!r}: directory '{path.parent}' does not exist")


def _rdb(url: str) -> BaseStorage:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        path = _sqlite_path(url)
        if path is not None:
            _check_sqlite(path, url)
        kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return _opened(url, lambda: _new_rdb(url, kwargs))


def _new_rdb(url: str, kwargs: dict[str, Any]) -> BaseStorage:
    """Optuna's storage on ``url``, creating its tables if needed. Commands started together
    on a new database all create them: the losers' CREATE or INSERT fails on the winner's
    rows (seen on PostgreSQL: duplicate key in pg_type). A retry finds the tables made."""
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return DeferringRDBStorage(engine_url(url), engine_kwargs=kwargs)
        except Exception as exc:
            if attempt + 1 == SCHEMA_ATTEMPTS or not _lost_schema_race(exc):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _lost_schema_race(exc: BaseException | None) -> bool:
    while exc is not None:
        if any(sign in str(exc) for sign in _SCHEMA_RACE_SIGNS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def engine_url(url: str) -> str:
    """``url`` as SQLAlchemy should open it: a PostgreSQL URL without a driver gets the
    installed one (psycopg2); any other URL is unchanged."""
    for bare in _BARE_POSTGRES:
        if url.startswith(bare):
            return POSTGRES_DRIVER + url[len(bare):]
    return url


def _sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for an in-memory database."""
    if not url.startswith(SQLITE_PREFIX):
        raise UsageError(f"--storage {url!r}: a SQLite URL has three slashes, e.g. "
                         "sqlite:///runs/tinynas.db (four for an absolute path)")
    rest = url[len(SQLITE_PREFIX):].split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def _check_sqlite(path: Path, url: str) -> None:
    """Refuse a file that is not a SQLite database before SQLAlchemy writes into it."""
    # The default rollback journal, not WAL: with WAL, a process that kept connections open
    # while another (the last writer) closed and removed the -wal/-shm files read the file
    # as "malformed" afterwards (seen here after a killed-and-rerun search).
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as f:
            if not f.read(16).startswith(b"SQLite format 3"):
                raise UsageError(f"--storage {url!r}: '{path}' is not a SQLite database")


def _opened(url: str, make: Callable[[], BaseStorage]) -> BaseStorage:
    try:
        return make()
    except UsageError:
        raise
    except Exception as exc:  # driver, network and schema errors alike
        raise UsageError(f"--storage {display_url(url)!r}: cannot open it: "
                         f"{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    # SQLAlchemy wraps the driver's error as "(module.Error) message".
    if line.startswith("(") and ") " in line:
        line = line.split(") ", 1)[1]
    return line[:300]


def study_names(storage: BaseStorage) -> list[str]:
    """The search studies ``storage`` holds (not the baselines/prune/lock side studies)."""
    names = (s.study_name for s in storage.get_all_studies())
    return sorted(n for n in names if not n.endswith(SIDE_SUFFIXES) and CLAIM_INFIX not in n)


def open_study(name: str, url: str | None, runs_dir: Path) -> optuna.Study:
    """An existing study, for commands that only read (``pareto``, ``show``, top-k)."""
    storage = resolve_storage(url, runs_dir, create=False)
    return load_study(name, storage, url or default_url(runs_dir))


def load_study(name: str, storage: BaseStorage, url: str) -> optuna.Study:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        names = study_names(storage)
        held = ", ".join(names) if names else "none"
        raise UsageError(f"--study {name!r}: no such study in {display_url(url)}; studies "
                         f"there: {held}") from None
    return optuna.load_study(study_name=name, storage=storage)


# -- Ctrl-C between storage calls, never inside one ----------------------------------------------

_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Ctrl-C pressed this often during one deferred block takes effect at once: a storage call
# that hangs (a server that stopped answering) must not make the command unstoppable.
FORCE_AFTER = 3


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM arriving during the block take effect when it ends.

    A KeyboardInterrupt raised inside SQLAlchemy or a journal write can leave a SQLite read
    lock held by a half-used connection (the other processes then wait for the 2-minute busy
    timeout: seen with four workers and Ctrl-C), a half-written journal line, a trial claimed
    but unknown to its claimer, or a lock study behind. Signals reach only the main thread,
    so elsewhere there is nothing to defer."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def note(signum: int, frame: object) -> None:
        caught.append(signum)
        if len(caught) >= FORCE_AFTER:
            raise KeyboardInterrupt

    # An ignored signal stays ignored (e.g. SIGINT of a job started with `&`).
    watched = [s for s in _DEFERRED_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, note) for sig in watched}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # None: a handler installed outside Python, which cannot be put back.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if len(caught) < FORCE_AFTER:
            # Delivered again, now to the restored handler: Ctrl-C raises KeyboardInterrupt.
            for sig in dict.fromkeys(caught):
                signal.raise_signal(sig)


_Storage = TypeVar("_Storage", bound=type[BaseStorage])


def _deferring(cls: _Storage, internals: tuple[str, ...] = ()) -> _Storage:
    """A subclass of the storage class ``cls`` whose storage methods run under
    :func:`interrupts_deferred`; still a ``cls`` (Optuna puts its cache in front of any
    RDBStorage)."""
    names = [n for n, m in vars(BaseStorage).items() if not n.startswith("_") and callable(m)]
    namespace: dict[str, Any] = {"__module__": __name__,
                                 "__qualname__": f"Deferring{cls.__name__}"}
    for name in (*names, *internals):
        namespace[name] = _deferred_method(getattr(cls, name))
    return type(f"Deferring{cls.__name__}", (cls,), namespace)  # type: ignore[return-value]


def _deferred_method(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def deferred(self: BaseStorage, *args: Any, **kwargs: Any) -> Any:
        with interrupts_deferred():
            return method(self, *args, **kwargs)

    return deferred


# Optuna's cache in front of an RDB storage also calls some of its private methods.
DeferringRDBStorage = _deferring(RDBStorage, rdb_cache_calls())
DeferringJournalStorage = _deferring(JournalStorage)
