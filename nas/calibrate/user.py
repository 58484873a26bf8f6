"""A user's own board runs, read for ``tinynas calibrate --target T --measurements runs.csv``.

Format: UTF-8 CSV, one model per line (quote a value holding a comma; a value cannot span
lines). Blank lines and lines starting with ``#`` are skipped anywhere. The first other line is
the header; column names are case-insensitive and may come in any order:

* ``model`` (required): what was measured, one of

  - a ``.tflite`` file (any single-subgraph int8 model, not only ours),
  - an export directory written by ``tinynas export`` (its ``model_int8.tflite`` is read),
  - ``study:NAME/trial:N``, a search trial exported by ``tinynas search --export`` (its
    export directory is looked up in the study; ``--storage``/``--runs-dir`` say where).

  Relative paths resolve against the CSV's folder, not the working directory, so the CSV and
  its models can move together.
* ``latency_ms`` (required): the milliseconds measured on the board, a positive number.
* ``note`` (optional): free text, kept with the row.

Example::

    # STM32H743 at 480 MHz, X-CUBE-AI 9.1
    model,latency_ms,note
    exports/etn-0.35,41.2,median of 50
    other/mobilenet_int8.tflite,118.0

The same model may appear on several rows (repeated runs). Every problem raises
:class:`MeasurementsError` with a one-line message naming the file and line, the bad value and
what would be valid.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from estimators.latency.features import Kernel
from nas.export.files import LAYOUT
from nas.export.inspect import kernels_from_tflite

REQUIRED = ("model", "latency_ms")
OPTIONAL = ("note",)
COLUMNS = REQUIRED + OPTIONAL
FORMAT_HINT = "model,latency_ms[,note]"
STUDY_PREFIX = "study:"
_STUDY_TRIAL = re.compile(r"study:(?P<study>[^/]+)/trial:(?P<trial>\d+)")

# (study name, trial number) -> the trial's export directory; raises ValueError saying why not.
TrialExports = Callable[[str, int], Path]


class MeasurementsError(ValueError):
    """The measurements CSV cannot be used; the message says where and why."""


@dataclass(frozen=True)
class MeasuredModel:
    """One row: ``model`` as written in the CSV, ``source`` the ``.tflite`` file read."""

    line: int
    model: str
    kernels: tuple[Kernel, ...]
    latency_ms: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each line that is not blank or a comment."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often prepend a BOM
    except FileNotFoundError:
        raise MeasurementsError(f"{path}: no such file; give the CSV of your board runs "
                                f"({FORMAT_HINT})") from None
    except IsADirectoryError:
        raise MeasurementsError(f"{path}: is a directory; give the CSV file of your board "
                                f"runs ({FORMAT_HINT})") from None
    except UnicodeDecodeError:
        raise MeasurementsError(f"{path}: not UTF-8 text; save it as a UTF-8 CSV") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, [cell.strip() for cell in next(csv.reader([line]))]


def _header(path: Path, number: int, cells: list[str]) -> list[str]:
    where = f"{path} line {number}"
    columns = [c.lower() for c in cells]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise MeasurementsError(
            f"{where}: the header {','.join(cells)!r} lacks {', '.join(missing)}; the first "
            f"row must name the columns, e.g. {FORMAT_HINT}")
    for column in columns:
        if column not in COLUMNS:
            raise MeasurementsError(
                f"{where}: unknown column {column!r} in the header; valid columns are "
                f"{', '.join(REQUIRED)} (required) and {', '.join(OPTIONAL)} (optional)")
        if columns.count(column) > 1:
            raise MeasurementsError(f"{where}: column {column!r} appears twice in the header")
    return columns


def _rows(path: Path) -> Iterator[_Row]:
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise MeasurementsError(f"{path}: empty; expected a header ({FORMAT_HINT}) and one "
                                "row per measured model")
    columns = _header(path, *first)
    found = False
    for number, cells in lines:
        if len(cells) > len(columns):
            raise MeasurementsError(
                f"{path} line {number}: {len(cells)} values but the header has "
                f"{len(columns)} columns ({','.join(columns)}); quote a value that holds a comma")
        found = True
        padded = cells + [""] * (len(columns) - len(cells))
        yield _Row(number, dict(zip(columns, padded, strict=True)))
    if not found:
        raise MeasurementsError(f"{path}: no measurements after the header (line "
                                f"{first[0]}); add one row per model ({FORMAT_HINT})")


def _latency(where: str, value: str) -> float:
    try:
        ms = float(value)
    except ValueError:
        ms = math.nan
    if not (math.isfinite(ms) and ms > 0):
        raise MeasurementsError(f"{where}: latency_ms {value!r} is not a positive number of "
                                "milliseconds (e.g. 41.2)")
    return ms


def _check_reference(where: str, model: str) -> None:
    if not model:
        raise MeasurementsError(f"{where}: model is empty; give a .tflite file or an export "
                                "directory")


def _trial_export(where: str, model: str, exports: TrialExports | None) -> str:
    """A ``study:NAME/trial:N`` reference as the path of that trial's export directory."""
    match = _STUDY_TRIAL.fullmatch(model)
    if match is None:
        raise MeasurementsError(f"{where}: model {model!r} is not a search trial reference; "
                                "write study:NAME/trial:N, e.g. study:search/trial:12")
    if exports is None:
        raise MeasurementsError(f"{where}: model {model!r} names a search trial, but no "
                                "study storage was given")
    try:
        return str(exports(match["study"], int(match["trial"])))
    except ValueError as exc:
        raise MeasurementsError(f"{where}: model {model!r}: {exc}") from None


def _tflite_path(where: str, model: str, folder: Path) -> Path:
    path = Path(model).expanduser()
    path = (path if path.is_absolute() else folder / path).resolve()
    if path.is_dir():
        inside = path / LAYOUT.model
        if not inside.is_file():
            raise MeasurementsError(
                f"{where}: directory {model!r} ({path}) holds no {LAYOUT.model}; give an "
                "export directory written by `tinynas export` or the .tflite file itself")
        return inside
    if not path.is_file():
        raise MeasurementsError(
            f"{where}: model {model!r} not found (looked for {path}); relative paths start "
            "from the CSV's folder")
    return path


def _kernels(where: str, model: str, tflite: Path) -> tuple[Kernel, ...]:
    try:
        return tuple(kernels_from_tflite(tflite.read_bytes()))
    except ValueError as exc:
        raise MeasurementsError(f"{where}: model {model!r} ({tflite}): {exc}; give an int8 "
                                ".tflite file or an export directory") from None
    except OSError as exc:
        raise MeasurementsError(f"{where}: model {model!r} ({tflite}) cannot be read "
                                f"({exc.strerror})") from None


def read_measurements(path: str | Path, trial_exports: TrialExports | None = None
                      ) -> list[MeasuredModel]:
    """The rows of a measurements CSV (format in the module docstring), in file order.
    ``trial_exports`` resolves ``study:NAME/trial:N`` rows to export directories."""
    path = Path(path)
    read: dict[Path, tuple[Kernel, ...]] = {}  # a model measured several times is read once
    measured = []
    for row in _rows(path):
        where = f"{path} line {row.line}"
        model = row.values["model"]
        _check_reference(where, model)
        latency = _latency(where, row.values["latency_ms"])
        target = (_trial_export(where, model, trial_exports) if model.startswith(STUDY_PREFIX)
                  else model)
        tflite = _tflite_path(where, target, path.parent)
        if tflite not in read:
            read[tflite] = _kernels(where, model, tflite)
        measured.append(MeasuredModel(row.line, model, read[tflite], latency, str(tflite),
                                      row.values.get("note", "")))
    return measured
