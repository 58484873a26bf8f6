"""Class maps: which class names a model predicts, and in which order (id = position)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from objectives.data.dataset import DatasetError


def check_class_names(names: Iterable[str], where: str) -> tuple[str, ...]:
    """Names as a tuple, refusing an empty list, blank names and duplicates."""
    names = tuple(str(n).strip() for n in names)
    if not names:
        raise DatasetError(f"{where}: the class list is empty")
    for i, name in enumerate(names):
        if not name:
            raise DatasetError(f"{where}: class {i} has an empty name")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DatasetError(f"{where}: class name {name!r} appears twice (entries "
                               f"{seen[name]} and {i})")
        seen[name] = i
    return names


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """A class-map file: one name per line, in id order; blank lines and ``#`` comments are
    ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"class map '{path}' not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"class map '{path}' cannot be read: {exc}") from None
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return check_class_names([n for n in names if n], str(path))


def class_list_argument(value: str, flag: str = "--classes") -> tuple[str, ...]:
    """``--classes``: a file of names (one per line) when ``value`` names an existing file, or
    looks like a path; else names separated by commas (``person,car``)."""
    path = Path(value)
    if path.is_file() or "/" in value or "\\" in value or path.suffix.lower() in (".txt",
                                                                                   ".names"):
        return read_class_names(path)
    return check_class_names([n for n in value.split(",")], f"{flag} {value!r}")
