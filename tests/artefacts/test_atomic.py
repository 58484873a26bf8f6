"""artefacts.atomic: every write appears whole or not at all, and leaves no temporary behind."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artefacts import atomic
from artefacts.atomic import (
    atomic_open,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    is_temporary,
    remove_stale,
    staged_dir,
)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _age(path: Path, seconds: float = 3600) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_new_file_whole_with_parents_and_the_umask_permissions(tmp_path, umask_022):
    path = atomic_write_bytes(tmp_path / "a" / "b" / "x.bin", b"\x00\x01" * 1000)
    assert path.read_bytes() == b"\x00\x01" * 1000
    assert _mode(path) == 0o644  # like open(path, "w") under umask 022 (mkstemp gives 0600)
    os.umask(0o077)
    assert _mode(atomic_write_text(tmp_path / "private.txt", "x")) == 0o600


def test_existing_file_is_replaced_and_keeps_its_permissions(tmp_path, umask_022):
    path = tmp_path / "x.json"
    path.write_text("old")
    path.chmod(0o640)
    old_inode = path.stat().st_ino
    atomic_write_json(path, {"a": [1, 2]}, indent=1)
    assert path.read_text() == '{\n "a": [\n  1,\n  2\n ]\n}\n'
    assert _mode(path) == 0o640 and path.stat().st_ino != old_inode  # a new file, renamed
    atomic_write_text(path, "y", permissions=0o600)
    assert _mode(path) == 0o600 and _names(tmp_path) == ["x.json"]


@pytest.mark.parametrize("error", [ValueError("bad data"), KeyboardInterrupt(),
                                   OSError(28, "No space left on device")])
def test_writer_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path, error):
    path = tmp_path / "last.pt"
    path.write_bytes(b"old checkpoint")

    def half_then_fail(handle):
        handle.write(b"half of the new")
        handle.flush()
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old checkpoint" and _names(tmp_path) == ["last.pt"]


def test_failure_on_a_new_path_leaves_nothing(tmp_path):
    def fail(handle):
        handle.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "new.png", fail)
    assert _names(tmp_path) == []


def test_unencodable_json_never_touches_the_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{}\n")
    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": object()})
    assert path.read_text() == "{}\n" and _names(tmp_path) == ["s.json"]


def test_readers_see_the_old_file_until_the_rename(tmp_path):
    path = tmp_path / "card.md"
    path.write_text("old")
    seen = {}

    def write(handle):
        handle.write(b"new")
        handle.flush()
        seen["during"] = path.read_text()
        seen["temporaries"] = [n for n in _names(tmp_path) if n != "card.md"]

    atomic_write(path, write)
    assert seen["during"] == "old" and path.read_text() == "new"
    # The temporary is a hidden sibling named after the file, and never looks like one.
    [tmp] = seen["temporaries"]
    assert tmp.startswith(".card.md.") and tmp.endswith(".tmp") and is_temporary(tmp)
    assert not is_temporary("card.md") and not is_temporary(".card.md.tmp")


def test_text_handle_for_csv(tmp_path):
    path = tmp_path / "runs.csv"
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "latency_ms"])
        writer.writerow(["a,b", "1.5"])
        assert not path.exists()
    assert path.read_bytes() == b'model,latency_ms\r\n"a,b",1.5\r\n'  # csv's own line ends
    with pytest.raises(ValueError, match="'a'"), atomic_open(path, "a"):
        pass


def test_a_symlink_is_followed(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_long_names_fit(tmp_path):
    path = tmp_path / ("n" * 250)
    atomic_write_bytes(path, b"ok")
    assert path.read_bytes() == b"ok" and _names(tmp_path) == [path.name]


# ---- leftovers of killed writers ----------------------------------------------------------

_KILLED_WRITER = """
import os, sys
from artefacts.atomic import atomic_write
def write(handle):
    handle.write(b"partial")
    handle.flush()
    print("writing", flush=True)
    if sys.argv[2] == "die":
        os._exit(9)  # no cleanup runs, like SIGKILL
    sys.stdin.readline()  # hold the write open until told
    handle.write(b" and the rest")
atomic_write(sys.argv[1], write)
"""


def _writer(path: Path, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    return proc


def test_a_dead_writers_temporary_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("old")
    _writer(path, "die").wait(timeout=30)
    [left] = [p for p in tmp_path.iterdir() if p != path]
    assert is_temporary(left) and left.read_bytes() == b"partial" and path.read_text() == "old"
    # Too fresh to judge (the instant between creating and locking a temporary): kept.
    assert remove_stale(path) == [] and left.exists()
    _age(left)
    atomic_write_text(path, "new")
    assert _names(tmp_path) == ["p.json"] and path.read_text() == "new"


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    path = tmp_path / "p.json"
    proc = _writer(path, "hold")
    try:
        [tmp] = list(tmp_path.iterdir())
        _age(tmp)  # old, but its writer holds the lock
        assert remove_stale(path) == []
        atomic_write_text(path, "ours")  # a concurrent writer does not disturb it
        assert tmp.exists()
    finally:
        proc.communicate("go\n", timeout=30)
    assert proc.returncode == 0 and path.read_bytes() == b"partial and the rest"
    assert _names(tmp_path) == ["p.json"]


def test_only_this_files_temporaries_are_cleaned(tmp_path):
    other = tmp_path / ".q.json.0123456789ab.tmp"
    mine = tmp_path / ".p.json.0123456789ab.tmp"
    user = tmp_path / ".p.json.mine.tmp"  # not our pattern: a user's file
    for p in (other, mine, user):
        p.write_text("x")
        _age(p)
    assert remove_stale(tmp_path / "p.json") == [mine]
    assert _names(tmp_path) == sorted([other.name, user.name])


# ---- directories ---------------------------------------------------------------------------

def test_staged_dir_appears_whole(tmp_path, umask_022):
    final = tmp_path / "export"
    with staged_dir(final) as stage:
        assert stage.parent == tmp_path and is_temporary(stage) and not final.exists()
        (stage / "model.tflite").write_bytes(b"tfl3")
        (stage / "sub").mkdir()
        (stage / "sub" / "x").write_text("y")
    assert _names(final) == ["model.tflite", "sub"] and _names(tmp_path) == ["export"]
    assert _mode(final) == 0o755  # mkdtemp would give 0700


@pytest.mark.parametrize("error", [RuntimeError("parity"), KeyboardInterrupt(),
                                   OSError(28, "No space left on device")])
def test_staged_dir_failure_leaves_nothing(tmp_path, error):
    with pytest.raises(type(error)), staged_dir(tmp_path / "export") as stage:
        (stage / "model.tflite").write_bytes(b"half")
        raise error
    assert _names(tmp_path) == []


def test_staged_dir_replaces_an_empty_dir_and_refuses_a_full_one(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    with staged_dir(final) as stage:
        (stage / "a").write_text("1")
    assert _names(final) == ["a"]
    with pytest.raises(FileExistsError), staged_dir(final):
        pytest.fail("the block must not run")
    assert _names(final) == ["a"] and _names(tmp_path) == ["out"]


def test_staged_dir_refuses_a_dir_that_appeared_meanwhile(tmp_path):
    final = tmp_path / "demo"
    with pytest.raises(FileExistsError, match="appeared"), staged_dir(final) as stage:
        (stage / "mine").write_text("1")
        final.mkdir()
        (final / "theirs").write_text("2")  # another process finished first
    assert _names(final) == ["theirs"] and _names(tmp_path) == ["demo"]


def test_staged_dir_replace_swaps_a_full_dir(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old").write_text("1")
    with staged_dir(final, replace=True) as stage:
        (stage / "new").write_text("2")
        assert _names(final) == ["old"]  # untouched until the block ends
    assert _names(final) == ["new"] and _names(tmp_path) == ["out"]


def test_staged_dir_removes_a_dead_stage(tmp_path):
    final = tmp_path / "out"
    dead = tmp_path / ".out.0123456789ab.tmp"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "f").write_text("x")
    _age(dead)
    with staged_dir(final) as stage:
        (stage / "f").write_text("y")
    assert _names(tmp_path) == ["out"]


def test_staged_dir_syncs_every_file(tmp_path, monkeypatch):
    synced = []
    real = atomic._fsync_path
    monkeypatch.setattr(atomic, "_fsync_path", lambda p: (synced.append(p.name), real(p)))
    with staged_dir(tmp_path / "d") as stage:
        for i in range(12):  # enough for the thread pool
            (stage / f"{i}.jpg").write_bytes(b"x")
    assert {f"{i}.jpg" for i in range(12)} <= set(synced)
