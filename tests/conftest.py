"""Fixtures every test directory may use."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

import pytest

# linux/prctl.h and linux/capability.h
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_permission_override() -> None:
    """In a child between fork and exec: drop from the bounding set the two capabilities by
    which root ignores file permissions; the program exec'd then holds neither (root gets only
    what the bounding set allows at exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(errno)}")


@pytest.fixture
def as_ordinary_user() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.run`` whose child meets file permissions as an
    ordinary user does, so that a directory without write permission really cannot be written
    (CI runs as root, and root writes anywhere). As root it drops the permission-override
    capabilities rather than switching to another user: the child stays root, so it can still
    read the interpreter and the test's files, all owned by root, but a mode like 0o500 now
    applies to it. Not root: None, permissions already apply."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    return _drop_permission_override
