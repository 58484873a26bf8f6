"""The format tag of tinynas's own files, and its one check.

Every file tinynas writes to read back later (a model spec, a search space, a checkpoint, a
study config, an export's ``genome.json``, the proxies' data) is a dict with a ``"format"`` key
such as ``"tinynas-export/1"``; the number changes when the layout does, so a file from another
version is refused by name rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def check_format(data: object, expected: str | tuple[str, ...],
                 refuse: Callable[[object], Exception]) -> dict[str, Any]:
    """``data`` itself if it is a dict tagged ``expected`` (or one of them); otherwise raises
    ``refuse(found)``, ``found`` being the tag it has (None without one) or, for anything but
    a dict, its type's name, so that the caller's message names what was found."""
    accepted = (expected,) if isinstance(expected, str) else expected
    if not isinstance(data, dict):
        raise refuse(type(data).__name__)
    if data.get("format") not in accepted:
        raise refuse(data.get("format"))
    return data
