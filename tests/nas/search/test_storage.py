"""Storage URLs: every accepted form opens, every bad one is one UsageError and creates
nothing; read-only opening never creates a file and lists the studies it holds."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage

from nas.errors import UsageError
from nas.search import storage as st


@pytest.mark.parametrize("form, kind", [
    (None, RDBStorage),
    ("sqlite:///{tmp}/other.db", RDBStorage),
    ("journal:{tmp}/search.log", JournalStorage),
    ("{tmp}/search.log", JournalStorage),
    ("{tmp}/search.journal", JournalStorage),
])
def test_good_urls_open(tmp_path: Path, form: str | None, kind: type) -> None:
    runs = tmp_path / "runs"
    url = None if form is None else form.format(tmp=tmp_path)
    storage = st.resolve_storage(url, runs)
    assert isinstance(storage, kind)
    optuna.create_study(storage=storage, study_name="s")
    assert st.study_names(storage) == ["s"]
    if form is None:
        assert (runs / "tinynas.db").is_file()


@pytest.mark.parametrize("url, words", [
    ("foo://x", "not a storage URL"),
    ("runs/tinynas.txt", "not a storage URL"),
    ("sqlite://x.db", "three slashes"),
    ("sqlite:///{tmp}/missing/x.db", "does not exist"),
    ("journal:{tmp}/missing/x.log", "does not exist"),
    ("journal:", "names no file"),
    ("sqlite:///{tmp}", "is a directory"),
    ("sqlite:///{tmp}/notes.txt", "not a SQLite database"),
    ("postgresql://user:secret@127.0.0.1:1/db", "cannot open it"),
])
def test_bad_urls_are_one_line_and_create_nothing(tmp_path: Path, url: str,
                                                  words: str) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UsageError) as err:
        st.resolve_storage(url.format(tmp=tmp_path), tmp_path / "runs")
    message = str(err.value)
    assert words in message and "\n" not in message
    assert "secret" not in message  # passwords never reach logs
    assert sorted(tmp_path.rglob("*")) == before


def test_open_study_lists_what_the_storage_holds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    storage = st.resolve_storage(url, tmp_path)
    for name in ("alpha", "alpha:baselines", "beta", "beta:prune"):
        optuna.create_study(storage=storage, study_name=name)
    assert st.open_study("beta", url, tmp_path).study_name == "beta"
    with pytest.raises(UsageError, match=r"no such study .*studies there: alpha, beta$"):
        st.open_study("gamma", url, tmp_path)


def test_read_only_open_creates_no_file(tmp_path: Path) -> None:
    for url in (None, f"sqlite:///{tmp_path / 'x.db'}", f"journal:{tmp_path / 'x.log'}"):
        with pytest.raises(UsageError, match="does not exist"):
            st.open_study("search", url, tmp_path / "runs")
    assert list(tmp_path.iterdir()) == []


def test_display_url_hides_the_password() -> None:
    assert st.display_url("postgresql://u:pw@host/db") == "postgresql://u:***@host/db"
    assert st.display_url("sqlite:///runs/tinynas.db") == "sqlite:///runs/tinynas.db"
