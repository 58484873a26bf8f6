"""Files and directories that appear whole or not at all.

Every artefact tinynas writes (checkpoints, summaries, exports, plots, latency profiles,
measurement CSVs, demo data) goes through this module. The recipe is the classic one:

1. write into a hidden temporary sibling, ``.NAME.<12 hex>.tmp`` (same directory, so the
   same filesystem and the rename below cannot turn into a copy);
2. flush and ``fsync`` it (for a directory: every file and folder in it);
3. ``os.replace`` it onto ``NAME`` (one atomic step on POSIX: a reader sees the old file or
   the new one, never a mix), then ``fsync`` the parent directory so the rename itself is
   durable.

What callers can rely on:

* An **exception of any kind** in the writer (including ``KeyboardInterrupt`` from Ctrl-C, and
  ``OSError`` such as a full disk) removes the temporary and re-raises; ``NAME`` keeps its old
  content, or stays absent if it did not exist.
* An **existing file is replaced** atomically and keeps its permission bits; a new file gets
  ``0o666`` minus the umask, like ``open(path, "w")`` (``mkstemp``'s ``0o600`` is not used).
  Owner and group are the writer's. A symlink at ``NAME`` is followed: its target is replaced.
* A **directory** staged with :func:`staged_dir` is renamed into place only when the ``with``
  block ends normally. An existing empty directory is replaced in the same atomic rename; a
  non-empty one only with ``replace=True`` (moved aside, the new one renamed in, the old one
  deleted: between the two renames ``NAME`` is briefly absent, the old content is never lost).
* A process killed outright (SIGKILL, the OOM killer) or a power cut cannot run any cleanup:
  the hidden ``.NAME.<hex>.tmp`` may be left next to ``NAME``, which itself is old or new,
  never partial. Tinynas never reads those names (:func:`is_temporary` tells them apart) and
  the next write of ``NAME`` deletes the ones whose writer is gone: every writer holds an
  advisory lock (``flock``) on its temporary while it writes, and the kernel drops the lock
  when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no flock, so leftovers are never judged stale (kept)
    fcntl = None  # type: ignore[assignment]

# A leftover younger than this is left alone even when unlocked: a writer takes its lock
# right after creating the temporary, and this covers that instant with a wide margin.
STALE_AFTER_S = 60.0
_TOKEN_HEX = 12
_TEMPORARY = re.compile(rf"\..+\.[0-9a-f]{{{_TOKEN_HEX}}}\.tmp", re.DOTALL)
_NAME_MAX_BYTES = 200  # leaves room for the dot, token and suffix under the usual 255


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is named like one of our temporaries (``.NAME.<hex>.tmp``): a write in
    progress, or the leftover of a killed one. Never an artefact."""
    return _TEMPORARY.fullmatch(Path(path).name) is not None


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None], *,
                 permissions: int | None = None) -> Path:
    """Create or replace the file ``path`` with what ``write`` writes to a binary handle.

    ``write`` gets an open binary file; it must not close it (most libraries don't:
    ``torch.save``, ``Figure.savefig``, ``Image.save`` all leave it open). Missing parent
    directories are created. ``permissions`` overrides the mode bits described in the module
    docstring. Returns ``path``.
    """
    with atomic_open(path, "wb", permissions=permissions) as handle:
        write(handle)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes, *, permissions: int | None = None
                       ) -> Path:
    """``path`` holds exactly ``data`` afterwards, or is unchanged if the write failed."""
    return atomic_write(path, lambda handle: handle.write(data), permissions=permissions)


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8",
                      permissions: int | None = None) -> Path:
    """``text`` encoded with ``encoding``; newlines are written as they are in ``text``."""
    return atomic_write_bytes(path, text.encode(encoding), permissions=permissions)


def atomic_write_json(path: str | Path, data: Any, *, indent: int | None = 2,
                      permissions: int | None = None, **dumps: Any) -> Path:
    """``json.dumps(data, indent=indent, **dumps)`` and a final newline. The text is built
    before the file is touched, so data that JSON cannot encode leaves the old file as it was."""
    text = json.dumps(data, indent=indent, **dumps) + "\n"
    return atomic_write_text(path, text, permissions=permissions)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, encoding: str = "utf-8",
                newline: str | None = None, permissions: int | None = None
                ) -> Iterator[IO[Any]]:
    """A handle on the temporary sibling of ``path``; the file is put in place when the
    ``with`` block ends without an exception, and removed otherwise. ``mode`` is ``"wb"``
    or ``"w"`` (text, with ``encoding`` and ``newline`` as for :func:`open`: pass
    ``newline=""`` to :mod:`csv`)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode {mode!r}: atomic_open writes a new file, use 'w' or 'wb'")
    path = _follow(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    keep = permissions if permissions is not None else _mode_of(path)
    fd, tmp = _create(path, lambda p: os.open(p, _CREATE_FLAGS, 0o666))
    try:
        if keep is not None:
            os.chmod(tmp, keep)
        raw = os.fdopen(fd, "wb", closefd=False)
        handle: IO[Any] = raw if mode == "wb" else _text(raw, encoding, newline)
        with handle:
            yield handle
            handle.flush()
        os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)  # drops the lock, after the rename
    _sync_dir(path.parent)


@contextlib.contextmanager
def staged_dir(final: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """An empty hidden directory next to ``final`` to fill; renamed to ``final`` when the
    ``with`` block ends normally, deleted (with everything in it) when it raises.

    ``final`` may be absent or an empty directory; anything else raises
    :class:`FileExistsError`, before the block runs and again at the end if it appeared
    meanwhile (say, another process finished first), unless ``replace`` is true. Every
    file and folder in the stage is fsynced before the rename, so after a power cut
    ``final`` is complete or absent. New directories get ``0o777`` minus the umask, like
    :func:`os.mkdir` (``mkdtemp`` would give ``0o700``).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if not replace and _occupied(final):
        raise FileExistsError(errno.EEXIST, "exists and is not an empty directory", str(final))
    remove_stale(final)
    fd, stage = _create(final, _make_dir)
    try:
        yield Path(stage)
        _sync_tree(Path(stage))
        _put_in_place(Path(stage), final, replace)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        os.close(fd)
    _sync_dir(final.parent)


def remove_stale(path: str | Path) -> list[Path]:
    """Delete the temporaries of ``path`` whose writer is gone (unlocked and older than
    :data:`STALE_AFTER_S`); returns what was deleted. Live writers' files are never touched,
    and without ``flock`` (Windows) nothing is deleted."""
    path = Path(path)
    if fcntl is None or not path.parent.is_dir():
        return []
    mine = re.compile(rf"\.{re.escape(_stem(path.name))}\.[0-9a-f]{{{_TOKEN_HEX}}}\.tmp",
                      re.DOTALL)
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []  # best effort: cleaning never stands in the way of a write
    return [entry for entry in entries if mine.fullmatch(entry.name) and _remove_if_stale(entry)]


# ---- internals ------------------------------------------------------------------------------

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _follow(path: Path) -> Path:
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _mode_of(path: Path) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def _text(raw: IO[bytes], encoding: str, newline: str | None) -> IO[str]:
    import io

    return io.TextIOWrapper(raw, encoding=encoding, newline=newline)  # type: ignore[arg-type]


def _stem(name: str) -> str:
    """``name`` cut to fit a temporary's name within the filesystem's limit (in bytes)."""
    return name.encode()[:_NAME_MAX_BYTES].decode(errors="ignore")


def _temp_name(final: Path) -> Path:
    return final.with_name(f".{_stem(final.name)}.{secrets.token_hex(_TOKEN_HEX // 2)}.tmp")


def _make_dir(path: str) -> int:
    os.mkdir(path, 0o777)
    return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))


def _create(final: Path, make: Callable[[str], int]) -> tuple[int, str]:
    """A new temporary for ``final`` made by ``make`` (which returns an fd), locked."""
    while True:
        tmp = str(_temp_name(final))
        try:
            fd = make(tmp)
        except FileExistsError:
            continue  # 48 random bits collided: draw again
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        return fd, tmp


def _remove_if_stale(entry: Path) -> bool:
    assert fcntl is not None
    try:
        if time.time() - entry.lstat().st_mtime < STALE_AFTER_S:
            return False
        fd = os.open(entry, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # renamed or deleted meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        try:
            _remove(entry)
        except OSError:
            return False  # say, another user's file in a shared directory
        return True
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _occupied(final: Path) -> bool:
    if not final.exists() and not final.is_symlink():
        return False
    return not final.is_dir() or any(final.iterdir())


def _put_in_place(stage: Path, final: Path, replace: bool) -> None:
    try:
        os.replace(stage, final)  # atomic, also over an empty directory
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        if not replace:
            raise FileExistsError(errno.EEXIST, "appeared while it was being written; "
                                  "not replaced", str(final)) from None
    aside = _temp_name(final)
    os.replace(final, aside)
    try:
        os.replace(stage, final)
    except BaseException:
        os.replace(aside, final)  # put the old content back
        raise
    _remove(aside)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(directory: Path) -> None:
    # Makes a rename in ``directory`` durable; some filesystems refuse fsync on a directory
    # (and Windows cannot open one), where there is nothing more to do.
    with contextlib.suppress(OSError):
        _fsync_path(directory)


def _sync_tree(root: Path) -> None:
    """fsync every file, then every directory, under ``root``. Many threads: the filesystem
    commits their flushes together (1800 demo images: 3 s one by one, 0.4 s with 16)."""
    files, dirs = [], [root]
    for folder, subdirs, names in os.walk(root):
        files += [Path(folder, n) for n in names if not os.path.islink(os.path.join(folder, n))]
        dirs += [Path(folder, d) for d in subdirs]
    if len(files) > 8:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(_fsync_path, files))
    else:
        for file in files:
            _fsync_path(file)
    for directory in dirs:
        _sync_dir(directory)
